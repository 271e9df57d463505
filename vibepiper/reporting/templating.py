"""The templates of the docs site and of the web UI (`vibepiper/templates`), rendered by
one Jinja2 environment with autoescape: a value is shown as text unless a template says
it is markup (`|safe`, used only for what we render ourselves: the graph's SVG)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = TEMPLATES / "static"


@functools.cache
def environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["when"] = lambda v: "" if v is None else str(v)[:19]  # a catalog time (UTC)
    env.filters["short"] = lambda v: "" if v is None else str(v)[:12]  # a version
    return env


def render(template: str, **values: Any) -> str:
    return str(environment().get_template(template).render(**values))


def style() -> str:
    """The styles the site and the UI share (status colours, the graph, tables)."""
    return (STATIC / "ui.css").read_text(encoding="utf-8")
