"""Benchmark: `vibepiper` at scale: 1,000 to 20,000 assets over 10 modules (issue 17).

    .venv/bin/python bench/scale.py [--assets 1000,4000,20000] [--repeat 3] [--json PATH]
    .venv/bin/python bench/scale.py --only noop --only status --assets 4000
    .venv/bin/python bench/scale.py --quick              # a smoke test: 100 and 200 assets

For each N it writes a project of N assets split over 10 modules (graph.py's layered graph,
with 1,000-row frames) and a plain pandas + pyarrow script doing the same work (the floor),
then times whole processes (wall time and peak RSS; median, min and max of K runs after one
untimed warm-up): a cold `materialize` against the floor; a no-op `materialize`, `status`
and `list` with everything fresh, and `materialize` after one asset's code was edited,
against the import floor. Then, per figure, how it grows with N: the least-squares slope in
ms (or KiB) per asset, and whether the growth is linear or better. See bench/README.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    PYTHON,
    VIBEPIPER,
    Measure,
    Session,
    add_run_options,
    failure_noted,
    finish,
    interleaved,
    run_process,
    size_list,
    workspace,
)
from figures import render, scale_notes, scale_rows
from graph import (
    IMPORT_FLOOR,
    PACKAGES,
    Node,
    assets_module,
    edit_function,
    function_source,
    layout,
    write_floor,
)
from sizes import (
    Attempts,
    Growth,
    attempted_problems,
    cold_and_floor,
    disturbed,
    figures_of,
    growths,
    summaries,
)

ROWS = 1_000
MODULES = 10
LARGE = 10_000  # from this size on, the cold run and the floor are timed --cold-repeat times
TIMEOUT_S = 3600.0  # one process (a cold run of 20,000 assets takes minutes)
FIGURES = ("cold", "noop", "status", "list", "edit")  # what --only chooses from
# The edited asset's last literal: `df["x"] = df["x"] * 1.2 + 1` (an "arith" asset).
EDIT_LITERAL = re.compile(r'(df\["x"\] \* [0-9.]+ \+ )[0-9.]+')
# figure -> (its unit, what its size grows: its median per run of each size)
SLOPE_FIGURES = {
    "floor": "s",
    "cold": "s",
    "import": "s",
    "noop": "s",
    "status": "s",
    "list": "s",
    "edit": "s",
    "rss_noop": "MiB",
    "rss_cold": "MiB",
    "rss_floor": "MiB",
}


# -- the project -------------------------------------------------------------------------


@dataclass
class ScaleProject:
    n: int
    root: Path
    nodes: list[Node]
    module_of: dict[str, str]  # asset -> the module defining it
    edited: str  # the asset whose code the "edit" figure changes: a leaf, so 1 is recomputed
    edits: int = 0

    @property
    def home(self) -> Path:
        return self.root / ".vibepiper"

    @property
    def floor_out(self) -> Path:
        return self.root / "floor-out"

    @property
    def modules(self) -> list[str]:
        return sorted(set(self.module_of.values()))

    def edit(self) -> None:
        """Change the last literal of the edited asset, so its output changes."""
        self.edits += 1
        edit_function(
            self.root / f"{self.module_of[self.edited]}.py",
            self.edited,
            EDIT_LITERAL,
            rf"\g<1>{10 + self.edits / 1000:.3f}",
        )


def write_project(root: Path, n: int) -> ScaleProject:
    """N assets of graph.py's layout, split over up to 10 modules by position in the layer
    (each module a vertical slice of the graph, as a domain would be); and the floor."""
    nodes = layout(n)
    width = 1 + max(node.position for node in nodes)
    count = min(MODULES, width)
    module_of = {node.name: f"scale_assets_{node.position * count // width}" for node in nodes}
    sources = [function_source(node, i, ROWS) for i, node in enumerate(nodes)]
    root.mkdir(parents=True)
    by_module: dict[str, list[str]] = {}
    for node, source in zip(nodes, sources, strict=True):
        by_module.setdefault(module_of[node.name], []).append(source)
    for module, module_sources in by_module.items():
        (root / f"{module}.py").write_text(assets_module(module_sources))
    listed = ", ".join(f'"{m}"' for m in sorted(by_module))
    (root / "pyproject.toml").write_text(
        '[project]\nname = "scale-bench"\nversion = "0"\n\n'
        f"[tool.vibepiper]\nmodules = [{listed}]\n"
    )
    write_floor(root, nodes, sources)
    consumed = {i for node in nodes for i in node.inputs}
    leaves = [node.name for node in nodes if node.name not in consumed and node.op == "arith"]
    if not leaves:
        raise SystemExit(f"{n} assets: no leaf asset to edit; use a larger --assets")
    return ScaleProject(n, root, nodes, module_of, leaves[-1])


# -- one size ----------------------------------------------------------------------------


def bench_size(project: ScaleProject, args: argparse.Namespace, log: Path) -> dict[str, Any]:
    n, root = project.n, project.root
    only = set(args.only or FIGURES)
    attempts = Attempts(root)
    measures: dict[str, Measure] = {}
    large = n >= LARGE
    cold_repeat = args.cold_repeat if large else args.repeat
    patient = not args.no_wait
    if "cold" in only:
        floor, cold = cold_and_floor(root, str(n), attempts, TIMEOUT_S)
        if large:  # a warm-up run would take minutes: compile and cache the modules instead
            print("  import floor_work, vibepiper list (warm-up) ...", file=sys.stderr)
            run_process([PYTHON, "-c", "import floor_work"], root, log, timeout_s=TIMEOUT_S)
            run_process([VIBEPIPER, "list"], root, log, timeout_s=TIMEOUT_S)
        interleaved([floor, cold], cold_repeat, log, args.quick, patient=patient, warm_up=not large)
        measures.update({m.name: m for m in (floor, cold)})
    else:  # the other figures need everything materialized
        print("  materialize (untimed set-up) ...", file=sys.stderr, flush=True)
        shutil.rmtree(project.home, ignore_errors=True)
        run_process([VIBEPIPER, "materialize"], root, log, timeout_s=TIMEOUT_S)
        attempts.from_scratch()

    fresh = [Measure(f"import@{n}", [PYTHON, "-c", IMPORT_FLOOR], root)]
    if "noop" in only:
        fresh.append(
            Measure(f"noop@{n}", [VIBEPIPER, "materialize"], root, after=attempts.since_last)
        )
    fresh += [
        Measure(f"{name}@{n}", [VIBEPIPER, name], root)
        for name in ("status", "list")
        if name in only
    ]
    interleaved(fresh, args.repeat, log, args.quick, patient=patient)
    measures.update({m.name: m for m in fresh})

    if "edit" in only:
        edit = Measure(
            f"edit@{n}", [VIBEPIPER, "materialize"], root, project.edit, attempts.since_last
        )
        interleaved([edit], args.repeat, log, args.quick, patient=patient)
        measures[edit.name] = edit

    results = summaries(list(measures.values()))
    derived = derive(project, results, cold_repeat)
    for problem in derived["problems"]:
        print(f"WARNING: {problem}", file=sys.stderr)
    return {"results": results, "derived": derived}


def derive(project: ScaleProject, results: dict[str, Any], cold_repeat: int) -> dict[str, Any]:
    """Per size: each figure's median, min and max, in seconds and (`rss_<figure>`) in MiB of
    peak RSS, and whether the runs did what they should."""
    n = project.n
    expected = {"cold": {"succeeded": n}, "noop": {}, "edit": {"succeeded": 1}}
    problems = attempted_problems(results, expected, str(n), f"{n} assets")
    return {
        "assets": n,
        "modules": len(project.modules),
        "layers": project.nodes[-1].layer + 1,
        "edges": sum(len(node.inputs) for node in project.nodes),
        "edited": project.edited,
        "edited_module": project.module_of[project.edited],
        "cold_repeat": cold_repeat if f"cold@{n}" in results else None,
        "figures": figures_of(results),
        "disturbed": disturbed(results),
        "problems": problems,
    }


# -- growth with N -----------------------------------------------------------------------


def growth_json(g: Growth) -> dict[str, Any]:
    """A figure's growth with N (see common.growth), per asset in ms or KiB."""
    return {
        "sizes": g.sizes,
        "unit": g.unit,
        "slope_per_asset": g.slope,
        "intercept": g.intercept,
        "intervals": g.intervals,
        "per_asset_smallest": g.per_smallest,
        "per_asset_largest": g.per_largest,
        "exponent": g.exponent,
        "first_interval_line_at_largest": g.line,
        "excess_at_largest": g.excess,
        "verdict": g.verdict,
    }


# -- report ------------------------------------------------------------------------------


def print_report(report: dict[str, Any]) -> None:
    """run.py's table and notes for this benchmark alone, then what it ran."""
    print(render(scale_rows(report)))
    print()
    for line in scale_notes(report):
        print(line)
    for n, d in report["derived"].items():
        disturbed = f"; disturbed: {', '.join(d['disturbed'])}" if d["disturbed"] else ""
        print(
            f"{int(n):,} assets: {d['modules']} modules, {d['layers']} layers, {d['edges']} "
            f"edges; edited {d['edited']} in {d['edited_module']}{disturbed}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--assets",
        type=size_list,
        help="comma-separated sizes (default 1000,4000,20000; 100,200 with --quick)",
    )
    parser.add_argument("--repeat", type=int, help="timed runs of each (default 3; 1 with --quick)")
    parser.add_argument(
        "--cold-repeat",
        type=int,
        default=1,
        help=f"timed cold runs (and floor runs) at sizes >= {LARGE:,}, after a lighter warm-up "
        "(default 1: one takes minutes there)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=FIGURES,
        help="measure only this figure (repeatable; the import floor always, the floor with cold)",
    )
    add_run_options(
        parser,
        "scale",
        "a smoke test: one warm-up per group, no waiting for a quiet machine, no second try of "
        "a disturbed run",
    )
    args = parser.parse_args()
    args.assets = sorted(set(args.assets or ([100, 200] if args.quick else [1000, 4000, 20000])))
    args.repeat = args.repeat or (1 if args.quick else 3)
    if args.repeat < 1 or args.cold_repeat < 1 or not args.assets or min(args.assets) < 20:
        parser.error("need --repeat >= 1, --cold-repeat >= 1 and --assets sizes >= 20")
    return args


def main() -> None:
    args = parse_args()
    session = Session("scale")
    results: dict[str, Any] = {}
    derived: list[dict[str, Any]] = []
    failed: dict[str, str] = {}  # size -> the command that failed, and its output's end
    with workspace("vp-scale-", args.keep) as (base, log):
        for n in args.assets:
            print(f"{n} assets:", file=sys.stderr, flush=True)
            folder = base / f"scale-{n}"
            if args.keep:
                shutil.rmtree(folder, ignore_errors=True)
            project = write_project(folder, n)
            with failure_noted(failed, str(n), f"{n} assets"):  # keep the other sizes' figures
                done = bench_size(project, args, log)
                results.update(done["results"])
                derived.append(done["derived"])
    settings = {
        "assets": args.assets,
        "repeat": args.repeat,
        "cold_repeat_large": args.cold_repeat,
        "large": LARGE,
        "only": args.only,
        "quick": args.quick,
        "no_wait": args.no_wait,
        "rows_per_frame": ROWS,
    }
    grown = growths(derived, "assets", SLOPE_FIGURES, "ms")
    measured = {
        "results": results,
        "derived": {str(d["assets"]): d for d in derived},
        "growth": {figure: growth_json(g) for figure, g in grown.items()},
        "failed": failed,
    }
    finish(session, settings, measured, PACKAGES, print_report, args.json)
    if failed:
        sys.exit(f"FAILED at {', '.join(failed)} assets: a command failed (above)")


if __name__ == "__main__":
    main()
