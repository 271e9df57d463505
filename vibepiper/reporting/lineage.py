"""Lineage: the asset graph around an asset (text, JSON, DOT, Mermaid), and data lineage:
the exact input versions, recursively, that produced one version of an asset's data."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vibepiper.catalog.reads import version_tree
from vibepiper.graph.graph import Graph
from vibepiper.versioning.freshness import Verdict

if TYPE_CHECKING:
    from vibepiper.catalog.catalog import Catalog

COLORS = {  # by last state, for DOT
    "succeeded": "#c8e6c9",
    "skipped": "#c8e6c9",
    "failed": "#ffcdd2",
    "check_failed": "#ffcdd2",
    "blocked": "#fff3c4",
    None: "#eeeeee",
}


@dataclass(frozen=True)
class Neighbourhood:
    """The assets around one asset, with their last state and freshness, and the edges."""

    asset: str
    nodes: dict[str, dict[str, Any]]
    edges: list[tuple[str, str]]
    upstream: bool
    downstream: bool
    order_only: frozenset[tuple[str, str]] = frozenset()  # edges of deps=, not data


def neighbourhood(
    graph: Graph,
    asset: str,
    *,
    upstream: bool,
    downstream: bool,
    depth: int | None,
    states: Mapping[str, str],
    verdicts: Mapping[str, Verdict],
) -> Neighbourhood:
    names = {asset}
    if upstream:
        names |= graph.ancestors(asset, depth)
    if downstream:
        names |= graph.descendants(asset, depth)
    nodes = {}
    for name in graph.sorted(names):
        defn = graph.assets[name]
        verdict = verdicts.get(name)
        nodes[name] = {
            "name": name,
            "group": defn.group,
            "tags": list(defn.tags),
            "state": states.get(name),
            "fresh": None if verdict is None else verdict.fresh,
            "reasons": [] if verdict is None else list(verdict.reasons),
        }
    edges = [(up, name) for name in nodes for up in graph.upstream[name] if up in nodes]
    order_only = frozenset(e for e in edges if graph.order_only(*e))
    return Neighbourhood(asset, nodes, edges, upstream, downstream, order_only)


def render(hood: Neighbourhood, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            {
                "asset": hood.asset,
                "nodes": list(hood.nodes.values()),
                "edges": [list(e) for e in hood.edges],
                "order_only_edges": [list(e) for e in hood.edges if e in hood.order_only],
            },
            indent=2,
        )
    if fmt == "dot":
        return _dot(hood)
    if fmt == "mermaid":
        return _mermaid(hood)
    return "\n".join(_text(hood))


def _label(node: dict[str, Any]) -> str:
    fresh = {True: "fresh", False: "stale", None: "?"}[node["fresh"]]
    return f"{node['name']}  [{node['state'] or 'never run'}, {fresh}]"


def _text(hood: Neighbourhood) -> list[str]:
    lines = [_label(hood.nodes[hood.asset])]
    parents: dict[str, list[str]] = {n: [] for n in hood.nodes}
    children: dict[str, list[str]] = {n: [] for n in hood.nodes}
    for up, down in hood.edges:
        parents[down].append(up)
        children[up].append(down)
    sections = [("upstream", parents, "<- "), ("downstream", children, "-> ")]
    for title, links, arrow in sections:
        if not getattr(hood, title):
            continue
        lines.append(f"{title}:")
        seen: set[str] = set()

        def walk(
            name: str,
            depth: int,
            links: dict[str, list[str]] = links,
            arrow: str = arrow,
            seen: set[str] = seen,
            up: bool = title == "upstream",
        ) -> None:
            for other in links[name]:
                again = " (see above)" if other in seen and links[other] else ""
                edge = (other, name) if up else (name, other)
                order = " (order only)" if edge in hood.order_only else ""
                lines.append(f"{'  ' * depth}{arrow}{_label(hood.nodes[other])}{order}{again}")
                if other not in seen:
                    seen.add(other)
                    walk(other, depth + 1)

        walk(hood.asset, 1)
        if len(lines) and lines[-1] == f"{title}:":
            lines.append("  (none)")
    return lines


def _dot(hood: Neighbourhood) -> str:
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled"];']
    for name, node in hood.nodes.items():
        color = COLORS.get(node["state"], COLORS[None])
        width = ", penwidth=2" if name == hood.asset else ""
        lines.append(f'  "{name}" [fillcolor="{color}"{width}];')
    for up, down in hood.edges:
        dashed = " [style=dashed]" if (up, down) in hood.order_only else ""
        lines.append(f'  "{up}" -> "{down}"{dashed};')
    return "\n".join([*lines, "}"])


def _mermaid(hood: Neighbourhood) -> str:
    lines = ["graph LR"]
    lines += [f"  {name}[{name}]" for name in hood.nodes]
    lines += [
        f"  {up} {'-.->' if (up, down) in hood.order_only else '-->'} {down}"
        for up, down in hood.edges
    ]
    lines.append(f"  style {hood.asset} stroke-width:3px")
    return "\n".join(lines)


# -- data lineage ---------------------------------------------------------------------


@dataclass
class Made:
    """One materialization and the materializations of the exact inputs it read."""

    asset: str
    data_version: str
    materialization_id: str | None
    run_id: str | None
    finished_at: Any
    inputs: list[Made] = field(default_factory=list)
    status: str | None = None  # check_failed: rejected by its checks, never published

    def as_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "data_version": self.data_version,
            "materialization_id": self.materialization_id,
            "run_id": self.run_id,
            "finished_at": self.finished_at,
            "status": self.status,
            "inputs": [m.as_dict() for m in self.inputs],
        }


def data_lineage(catalog: Catalog, asset: str, version: str) -> Made:
    """Which exact input versions, recursively, produced `version` of `asset` (a data
    version, a unique prefix of one, or a materialization id)."""
    return _made(version_tree(catalog, asset, version))


def _made(row: Mapping[str, Any]) -> Made:
    return Made(
        row["asset"],
        row["data_version"],
        row["materialization_id"],
        row["run_id"],
        row["finished_at"],
        [_made(r) for r in row["inputs"]],
        row.get("status"),
    )


def render_made(made: Made) -> list[str]:
    lines: list[str] = []

    def walk(node: Made, depth: int) -> None:
        when = f"{node.finished_at:%Y-%m-%d %H:%M:%S}" if node.finished_at else "unknown"
        run = f", run {node.run_id}" if node.run_id else ""
        rejected = (
            "rejected by its checks, never published; " if node.status == "check_failed" else ""
        )
        lines.append(
            f"{'  ' * depth}{'<- ' if depth else ''}{node.asset} "
            f"@ {node.data_version[:12]}  ({rejected}made {when}{run})"
        )
        for child in node.inputs:
            walk(child, depth + 1)

    walk(made, 0)
    return lines


# -- column lineage (SPEC §10) ---------------------------------------------------------


@dataclass(frozen=True)
class ColumnSource:
    """One upstream column an output column comes from, and (if that asset is traced
    too, being a SQL asset) the columns it comes from in turn."""

    asset: str
    column: str
    upstream: tuple[ColumnSource, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "column": self.column,
            "upstream": [u.as_dict() for u in self.upstream],
        }


def column_tree(
    asset: str, found: Mapping[str, list[dict[str, Any]]], depth: int | None = None
) -> list[tuple[str, tuple[ColumnSource, ...]]]:
    """Each column of `asset` with its sources, traced up through every asset whose
    column lineage is known (`found`: asset -> rows), at most `depth` levels."""

    def sources(owner: str, column: str, level: int) -> tuple[ColumnSource, ...]:
        rows = [
            r
            for r in found.get(owner, ())
            if r["column_name"] == column and r["upstream_asset"] is not None
        ]
        deeper = depth is None or level < depth
        return tuple(
            ColumnSource(
                r["upstream_asset"],
                r["upstream_column"],
                sources(r["upstream_asset"], r["upstream_column"], level + 1) if deeper else (),
            )
            for r in rows
        )

    columns = list(dict.fromkeys(r["column_name"] for r in found.get(asset, ())))
    return [(column, sources(asset, column, 1)) for column in columns]


def render_columns(asset: str, tree: list[tuple[str, tuple[ColumnSource, ...]]], fmt: str) -> str:
    """`lineage --columns` as text or JSON."""
    if fmt == "json":
        return json.dumps(
            {
                "asset": asset,
                "columns": [
                    {"name": name, "upstream": [s.as_dict() for s in sources]}
                    for name, sources in tree
                ],
            },
            indent=2,
        )
    lines = [f"{asset}: where each column comes from"]
    for name, sources in tree:
        if not sources:
            lines.append(f"  {name}  (no input column: computed from constants or a count)")
            continue
        lines.append(f"  {name}")
        lines += _source_lines(sources, 2)
    return "\n".join(lines)


def _source_lines(sources: tuple[ColumnSource, ...], indent: int) -> list[str]:
    lines = []
    for source in sources:
        lines.append(f"{'  ' * indent}<- {source.asset}.{source.column}")
        lines += _source_lines(source.upstream, indent + 2)
    return lines
