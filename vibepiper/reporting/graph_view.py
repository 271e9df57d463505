"""The asset graph drawn as SVG: one renderer for the docs site and the web UI.

Layout: a column per longest path from a root; within a column, rows ordered by the
barycentre heuristic of Sugiyama's method (alternate sweeps ordering each column by the
mean row of each asset's neighbours). Each sweep is linear in assets and edges, so 2,000
assets lay out in milliseconds; bench/layout.py compares its edge crossings with
grandalf's Sugiyama layout (bench/README.md).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

from vibepiper.graph.graph import Graph

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 150, 34, 42, 16, 16
SWEEPS = 24  # ordering passes, alternately right and left (bench/layout.py measures them)


def layout(graph: Graph, names: Iterable[str] | None = None) -> dict[str, tuple[int, int]]:
    """Top-left corner of each asset's box (of `names` only, in the graph's order, with
    the edges among them)."""
    chosen = set(graph.order if names is None else names)
    order = [n for n in graph.order if n in chosen]
    ups = {n: [u for u in graph.upstream[n] if u in chosen] for n in order}
    downs: dict[str, list[str]] = {n: [] for n in order}
    for name in order:
        for up in ups[name]:
            downs[up].append(name)
    column: dict[str, int] = {}
    for name in order:
        column[name] = 1 + max((column[u] for u in ups[name]), default=-1)
    columns: dict[int, list[str]] = {}
    for name in order:
        columns.setdefault(column[name], []).append(name)
    row = {n: float(i) for members in columns.values() for i, n in enumerate(members)}
    # Crossing reduction, as in Sugiyama's method: sweep right then left, each time
    # ordering a column by the mean row of each asset's neighbours on the swept side.
    for sweep in range(SWEEPS):
        side = ups if sweep % 2 == 0 else downs
        keys = sorted(columns) if sweep % 2 == 0 else sorted(columns, reverse=True)
        for key in keys:
            members = columns[key]
            mean = {
                n: sum(row[m] for m in side[n]) / len(side[n]) if side[n] else row[n]
                for n in members
            }
            members.sort(key=lambda n: (mean[n], row[n]))
            for i, name in enumerate(members):
                row[name] = float(i)
    return {
        name: (MARGIN + key * (NODE_W + GAP_X), MARGIN + int(row[name]) * (NODE_H + GAP_Y))
        for key, members in columns.items()
        for name in members
    }


def graph_svg(
    graph: Graph,
    names: list[str],
    css: Mapping[str, str],
    titles: Mapping[str, str],
    link: str | None = None,
) -> str:
    """The SVG of `names` and the edges among them; each node has the class `css[name]`
    and the tooltip `titles[name]`, and, with `link` (`/assets/{name}`), is a link."""
    position = layout(graph, names)
    chosen = set(position)
    width = max((x for x, _ in position.values()), default=0) + NODE_W + MARGIN
    height = max((y for _, y in position.values()), default=0) + NODE_H + MARGIN
    parts = [
        f'<svg id="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for name in names:
        for up in graph.upstream[name]:
            if up not in chosen:
                continue
            x1, y1 = position[up][0] + NODE_W, position[up][1] + NODE_H // 2
            x2, y2 = position[name][0], position[name][1] + NODE_H // 2
            mid = (x1 + x2) // 2
            kind = "edge order" if graph.order_only(up, name) else "edge"
            parts.append(
                f'<path class="{kind}" data-from="{up}" data-to="{name}" '
                f'd="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"/>'
            )
    for name in names:
        x, y = position[name]
        label = html.escape(name if len(name) <= 19 else name[:18] + "…")
        node = (
            f'<g class="node {css.get(name, "never")}" data-asset="{name}" tabindex="0" '
            f'transform="translate({x},{y})"><title>{html.escape(titles.get(name, name))}'
            f'</title><rect width="{NODE_W}" height="{NODE_H}" rx="7"/>'
            f'<text x="{NODE_W // 2}" y="{NODE_H // 2 + 5}">{label}</text></g>'
        )
        if link is not None:
            node = f'<a href="{html.escape(link.format(name=name))}">{node}</a>'
        parts.append(node)
    parts.append("</svg>")
    return "".join(parts)
