"""What the commands share: the selection, --exclude, --set, --json and --limit options, and
JSON output (exact: floats as Python writes them, so they read back the same)."""

from __future__ import annotations

import json
from typing import Any

import click

select_argument = click.argument("select", nargs=-1, metavar="[SELECT]...")
exclude_option = click.option(
    "--exclude", multiple=True, metavar="SELECT", help="Leave these out (applied last)."
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON on stdout (messages go to stderr)."
)


def limit_option(what: str) -> Any:
    """`--limit`: how many `what` to show (default 20)."""
    return click.option(
        "--limit",
        default=20,
        show_default=True,
        type=click.IntRange(min=1, max=1_000_000),
        help=f"How many {what} to show.",
    )


def emit_json(value: Any) -> None:
    """Print `value` as indented JSON (dates in ISO format, bytes in hex)."""
    click.echo(json.dumps(value, default=json_default, indent=2))


def json_default(value: Any) -> Any:
    """What JSON cannot hold natively, as something it can."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def json_value(value: Any) -> Any:
    """`value` with what JSON has no literal for as a string: NaN, Infinity, -Infinity."""
    if isinstance(value, float) and (value != value or value in (_INF, -_INF)):
        return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value


_INF = float("inf")


def frame_records(frame: Any) -> list[dict[str, Any]]:
    """A DataFrame's rows as JSON-ready objects, as `query --json` gives them: every
    value exact, a missing one (NaN in a float column, None, NA, NaT) null."""
    values = frame.astype(object).where(frame.notna(), None)
    return [
        {str(name): json_value(value) for name, value in zip(frame.columns, row, strict=True)}
        for row in values.itertuples(index=False, name=None)
    ]


set_option = click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="ASSET.PARAM=VALUE",
    help="Give a configuration parameter (one with a default) of ASSET this value, over "
    "[tool.vibepiper.config] (repeatable). VALUE is read as TOML (10, 2.5, true, "
    "'\"10\"', [1, 2]); anything else is a string (eu).",
)


def overrides(settings: tuple[str, ...]) -> dict[str, dict[str, Any]] | None:
    """The configuration the `--set` options give (None: none given)."""
    from vibepiper.definitions.config import from_sets

    return from_sets(settings) if settings else None
