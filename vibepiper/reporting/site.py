"""`vibepiper docs`: a self-contained static site of the project (works offline, no CDN).

`index.html` draws the lineage graph as an SVG, each asset coloured by its last state and
freshness; clicking one shows its description, schema, checks with their last results and
recent materializations. `assets/<name>.html` has the same for each asset, as a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vibepiper.catalog import reads
from vibepiper.graph.graph import Graph
from vibepiper.reporting.graph_view import graph_svg
from vibepiper.reporting.listing import check_names
from vibepiper.reporting.templating import render, style

if TYPE_CHECKING:
    from vibepiper.catalog.catalog import Catalog
    from vibepiper.versioning.freshness import Verdict

HISTORY = 5  # the latest materializations shown of each asset


def _svg(graph: Graph, assets: Mapping[str, dict[str, Any]]) -> str:
    return graph_svg(
        graph,
        list(graph.order),
        {n: a["css"] for n, a in assets.items()},
        {n: a["summary"] for n, a in assets.items()},
    )


def css_class(state: str | None, fresh: bool | None) -> str:
    if state in ("failed", "check_failed"):
        return "failed"
    if state == "blocked":
        return "blocked"
    if state is None:
        return "never"
    return "fresh" if fresh else "stale"


def asset_details(info: Mapping[str, Any], prefix: str = "assets/") -> str:
    """The details of one asset, as HTML (in the index's panel, and on its own page)."""
    return render("site/_details.html", info=info, prefix=prefix)


def site_assets(
    graph: Graph, catalog: Catalog, verdicts: Mapping[str, Verdict]
) -> dict[str, dict[str, Any]]:
    """Everything the site shows about each asset of a (fully loaded) project's `graph`,
    given every asset's verdict."""
    states = reads.last_states(catalog)
    results = reads.last_check_results(catalog)
    history = reads.recent_materializations(catalog, HISTORY)
    columns = reads.column_lineage_rows(catalog, [n for n in graph.order if graph.assets[n].is_sql])
    assets = {}
    for name in graph.order:
        defn, verdict, state = graph.assets[name], verdicts[name], states.get(name)
        css = css_class(state, verdict.fresh)
        summary = f"{name}: last {state or 'never run'}, {'fresh' if verdict.fresh else 'stale'}"
        assets[name] = {
            "name": name,
            "description": defn.description,
            "group": defn.group,
            "tags": list(defn.tags),
            "deps": list(graph.upstream[name]),
            "state": state,
            "fresh": verdict.fresh,
            "reasons": list(verdict.reasons),
            "css": css,
            "summary": summary,
            "schema": schema_columns(defn.schema),
            "checks": _checks(graph, name, [r for r in results if r["asset"] == name]),
            "history": [h for h in history if h["asset"] == name],
            "sql": defn.sql,
            "column_lineage": _column_lineage(columns.get(name, [])),
        }
    return assets


def _column_lineage(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A SQL asset's columns, each with the input columns it comes from."""
    columns: dict[str, list[dict[str, str]]] = {}
    for row in found:
        sources = columns.setdefault(row["column_name"], [])
        if row["upstream_asset"] is not None:
            sources.append({"asset": row["upstream_asset"], "column": row["upstream_column"]})
    return [{"name": name, "sources": sources} for name, sources in columns.items()]


def _checks(graph: Graph, name: str, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The asset's checks with their last results, then those that have none yet."""
    checks = [
        {
            "name": r["check_name"],
            "severity": r["severity"],
            "passed": r["passed"],
            "failing_rows": r["failing_rows"],
            "message": r["message"],
            "checked_at": r["checked_at"],
        }
        for r in results
    ]
    ran = {c["name"] for c in checks}
    checks += [
        {
            "name": c,
            "severity": "",
            "passed": None,
            "failing_rows": None,
            "message": "",
            "checked_at": None,
        }
        for c in check_names(graph, name)
        if c not in ran and not c.startswith("schema:")
    ]
    return checks


def schema_columns(schema: Any) -> list[dict[str, Any]]:
    """The columns a pandera schema declares, with their types and checks."""
    if schema is None:
        return []
    to_schema = getattr(schema, "to_schema", None)
    try:
        resolved = to_schema() if callable(to_schema) else schema
        columns = getattr(resolved, "columns", {}) or {}
        return [
            {
                "name": str(name),
                "type": str(getattr(col, "dtype", "")),
                "checks": [str(getattr(c, "name", c)) + _stats(c) for c in col.checks]
                + (["nullable"] if getattr(col, "nullable", False) else [])
                + (["unique"] if getattr(col, "unique", False) else []),
            }
            for name, col in columns.items()
        ]
    except Exception:  # a schema we cannot describe is still validated; just not shown
        return []


def _stats(check: Any) -> str:
    stats = getattr(check, "statistics", None) or {}
    return f"({', '.join(f'{v}' for v in stats.values())})" if stats else ""


def write_site(out: Path, title: str, graph: Graph, assets: Mapping[str, dict[str, Any]]) -> Path:
    """Write index.html and one page per asset into `out`; return the index's path."""
    (out / "assets").mkdir(parents=True, exist_ok=True)
    panels = {name: {"html": asset_details(info)} for name, info in assets.items()}
    index = render(
        "site/index.html",
        title=title,
        assets=assets,
        svg=_svg(graph, assets),
        panels=panels,
        style=style(),
    )
    (out / "index.html").write_text(index, encoding="utf-8")
    for name, info in assets.items():
        page = render("site/asset.html", info=info, style=style())
        (out / "assets" / f"{name}.html").write_text(page, encoding="utf-8")
    return out / "index.html"
