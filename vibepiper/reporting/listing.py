"""Rows for `list` and `history`: plain dicts, rendered as tables or JSON by the CLI."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from vibepiper.graph.graph import Graph
from vibepiper.text import quoted

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


def run_rows(project: Project, limit: int) -> list[dict[str, Any]]:
    """The latest runs, newest first, each with how many of its assets ended in each state."""
    from vibepiper.catalog.catalog import rows as fetch

    with project.catalog.connect() as con:
        return fetch(
            con,
            "SELECT r.run_id, r.kind, r.status, r.started_at, r.finished_at, "
            "date_diff('millisecond', r.started_at, r.finished_at) / 1000.0 AS seconds, "
            "r.selection, count(m.asset) AS assets, "
            "count(*) FILTER (m.status = 'succeeded') AS succeeded, "
            "count(*) FILTER (m.status = 'skipped') AS skipped, "
            "count(*) FILTER (m.status IN ('failed', 'check_failed')) AS failed, "
            "count(*) FILTER (m.status = 'blocked') AS blocked, r.pid, r.host, r.command "
            "FROM runs r LEFT JOIN materializations m ON m.run_id = r.run_id "
            "GROUP BY ALL ORDER BY r.started_at DESC, r.run_id DESC LIMIT ?",
            [limit],
        )


def log_rows(project: Project, run_id: str, asset: str | None) -> tuple[str, list[dict[str, Any]]]:
    """The log lines of a run (a unique prefix of its id, or `latest`), optionally of one
    asset, in the order they were logged; with the run's full id."""
    from vibepiper.catalog.catalog import rows as fetch
    from vibepiper.errors import SelectionError

    if asset is not None:
        project.require_asset(asset)
    with project.catalog.connect() as con:
        if run_id == "latest":
            found = fetch(
                con, "SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1"
            )
        else:
            found = fetch(
                con,
                "SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id LIMIT 2",
                [run_id],
            )
        if len(found) != 1:
            what = "no run" if not found else "more than one run"  # noqa: RUF100
            raise SelectionError(
                f"{what} matches {quoted(run_id)}",
                "give a run id (or a unique prefix, or `latest`) from `vibepiper runs`",
            )
        full = found[0]["run_id"]
        lines = fetch(
            con,
            "SELECT logged_at, asset, level, logger, message FROM logs "
            "WHERE run_id = ? AND (? IS NULL OR asset = ?) "
            "ORDER BY logged_at, materialization_id, seq",
            [full, asset, asset],
        )
    return full, lines
