"""Rows for `list` and `history`: plain dicts, rendered as tables or JSON by the CLI."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from vibepiper.graph.graph import Graph

if TYPE_CHECKING:
    from vibepiper.project import Project


def schema_name(schema: Any) -> str | None:
    if schema is None:
        return None
    return (
        getattr(schema, "__name__", None) or getattr(schema, "name", None) or type(schema).__name__
    )


def check_names(graph: Graph, name: str) -> list[str]:
    """The asset's checks: its schema (if any), its expectations, its @check functions."""
    defn = graph.assets[name]
    names = [f"schema:{schema_name(defn.schema)}"] if defn.schema is not None else []
    names += [c.name for c in defn.checks]
    names += [c.name for c in graph.checks.get(name, ())]
    return names


def asset_rows(graph: Graph, names: Iterable[str]) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        defn = graph.assets[name]
        rows.append(
            {
                "name": name,
                "deps": list(graph.upstream[name]),
                "tags": list(defn.tags),
                "group": defn.group,
                "description": defn.description,
                "checks": check_names(graph, name),
                "schema": schema_name(defn.schema),
                "source": defn.source_path,
            }
        )
    return rows


def history_rows(project: Project, asset: str, limit: int) -> list[dict[str, Any]]:
    """Materializations of `asset`, newest first, each with its inputs and check results."""
    project.require_asset(asset)
    from vibepiper.catalog.catalog import rows as fetch

    with project.catalog.connect() as con:
        rows = fetch(
            con,
            "SELECT * FROM materializations WHERE asset = ? "
            "ORDER BY finished_at DESC, materialization_id DESC LIMIT ?",
            [asset, limit],
        )
        ids = [r["materialization_id"] for r in rows]
        lineage = fetch(
            con,
            "SELECT materialization_id, upstream_asset, upstream_data_version "
            "FROM lineage WHERE list_contains(?, materialization_id) "
            "ORDER BY upstream_asset",
            [ids],
        )
        checks = fetch(
            con,
            "SELECT * FROM check_results WHERE list_contains(?, "
            "materialization_id) ORDER BY check_name",
            [ids],
        )
    for row in rows:
        mid = row["materialization_id"]
        row["inputs"] = [
            {"asset": r["upstream_asset"], "data_version": r["upstream_data_version"]}
            for r in lineage
            if r["materialization_id"] == mid
        ]
        row["checks"] = [r for r in checks if r["materialization_id"] == mid]
    return rows
