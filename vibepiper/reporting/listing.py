"""Rows for `list`: plain dicts, rendered as tables or JSON by the CLI (the rows of
`history`, `runs` and `logs` are read by `vibepiper.catalog.reads`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vibepiper.graph.graph import Graph


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
    if defn.time_column:
        names.append(f"time_column({defn.time_column})")
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
                "partitions": defn.partitions.describe() if defn.partitions else None,
            }
        )
    return rows
