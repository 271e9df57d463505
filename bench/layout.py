"""Benchmark: the lineage graph's layout — ours (reporting/graph_view.py) against
grandalf's Sugiyama layout, on bench/scale.py's layered graph.

    .venv/bin/python bench/layout.py [--assets 200,500,2000] [--json PATH]

For each size: the time to lay the graph out and the number of edge crossings (each edge
drawn as a straight segment between its two boxes' facing sides; two edges that share an
end do not count). grandalf must be installed (pip install grandalf); it is not one of
VibePiper's dependencies, because this measure decided against it (bench/README.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import scale
from common import environment, git_state, package_dir, save_report

Point = tuple[float, float]


def ours(graph: Any) -> dict[str, Point]:
    from vibepiper.reporting.graph_view import NODE_H, NODE_W, layout

    placed = layout(graph)
    return {n: (x + NODE_W / 2, y + NODE_H / 2) for n, (x, y) in placed.items()}


def grandalf_layout(graph: Any) -> dict[str, Point]:
    """grandalf's layered layout, turned to run left to right as ours does."""
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    class Box:
        w, h = 34, 150  # (laid out top-down: width and height swapped)

    vertices = {n: Vertex(n) for n in graph.order}
    for v in vertices.values():
        v.view = Box()
    edges = [Edge(vertices[u], vertices[n]) for n in graph.order for u in graph.upstream[n]]
    found: dict[str, Point] = {}
    for component in Graph(list(vertices.values()), edges).C:
        layout = SugiyamaLayout(component)
        layout.init_all()
        layout.draw()
        for v in component.sV:
            x, y = v.view.xy
            found[v.data] = (y, x)
    return found


def crossings(graph: Any, at: dict[str, Point]) -> int:
    segments = [(u, n, at[u], at[n]) for n in graph.order for u in graph.upstream[n]]
    by_column: dict[tuple[float, float], list[Any]] = {}
    for seg in segments:  # only segments whose x ranges overlap can cross: bucket by span
        key = (min(seg[2][0], seg[3][0]), max(seg[2][0], seg[3][0]))
        by_column.setdefault(key, []).append(seg)
    spans = list(by_column.items())
    count = 0
    for i, ((a0, a1), first) in enumerate(spans):
        for (b0, b1), second in spans[i:]:
            if b1 <= a0 or a1 <= b0:
                continue
            same = (a0, a1) == (b0, b1)
            for j, s in enumerate(first):
                for t in second[j + 1 :] if same else second:
                    if {s[0], s[1]} & {t[0], t[1]}:
                        continue
                    if _cross(s[2], s[3], t[2], t[3]):
                        count += 1
    return count


def _cross(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    def side(a: Point, b: Point, c: Point) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    d1, d2 = side(q1, q2, p1), side(q1, q2, p2)
    d3, d4 = side(p1, p2, q1), side(p1, p2, q2)
    return d1 * d2 < 0 and d3 * d4 < 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", default="200,500,2000")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)
    from vibepiper.project import Project

    results = []
    for n in [int(x) for x in args.assets.split(",")]:
        root = Path(tempfile.mkdtemp(prefix="vp-bench-layout-")) / "project"
        scale.write_project(root, n)
        graph = Project(root).graph
        row: dict[str, Any] = {"assets": n, "edges": sum(len(u) for u in graph.upstream.values())}
        for name, lay in (("ours", ours), ("grandalf", grandalf_layout)):
            start = time.perf_counter()
            at = lay(graph)
            row[f"{name}_s"] = time.perf_counter() - start
            row[f"{name}_crossings"] = crossings(graph, at)
        results.append(row)
        print(
            f"{n:,} assets, {row['edges']:,} edges: ours {row['ours_s']:.3f} s, "
            f"{row['ours_crossings']:,} crossings; grandalf {row['grandalf_s']:.2f} s, "
            f"{row['grandalf_crossings']:,} crossings",
            file=sys.stderr,
        )
    report = {
        "benchmark": "layout",
        "results": results,
        "environment": environment(("vibepiper", "grandalf"), git=git_state(package_dir())),
        "started_at": started.isoformat(),
    }
    print(f"report: {save_report(report, 'layout', args.json, started)}")


if __name__ == "__main__":
    main()
