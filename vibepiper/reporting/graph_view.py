"""The asset graph drawn as SVG: one renderer for the docs site and the web UI.

Layout: a column per longest path from a root, and within a column, rows ordered by the
mean row of each asset's parents (which keeps most edges from crossing). It is linear in
the number of assets and edges (2,000 assets lay out in milliseconds).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

from vibepiper.graph.graph import Graph

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 150, 34, 42, 16, 16


def layout(graph: Graph, names: Iterable[str] | None = None) -> dict[str, tuple[int, int]]:
    """Top-left corner of each asset's box (of `names` only, in the graph's order, with
    the edges among them)."""
    chosen = set(graph.order if names is None else names)
    order = [n for n in graph.order if n in chosen]
    column: dict[str, int] = {}
    for name in order:
        ups = [column[u] for u in graph.upstream[name] if u in chosen]
        column[name] = 1 + max(ups, default=-1)
    rows: dict[str, float] = {}
    placed: dict[int, list[str]] = {}
    for name in order:
        parents = [rows[u] for u in graph.upstream[name] if u in chosen]
        rows[name] = sum(parents) / len(parents) if parents else len(placed.get(0, []))
        placed.setdefault(column[name], []).append(name)
    position = {}
    for col, members in placed.items():
        for row, name in enumerate(sorted(members, key=lambda n: (rows[n], n))):
            rows[name] = row
            position[name] = (MARGIN + col * (NODE_W + GAP_X), MARGIN + row * (NODE_H + GAP_Y))
    return position


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
