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
import datetime as dt
import itertools
import math
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    PYTHON,
    VIBEPIPER,
    CommandFailed,
    Measure,
    OtherCpu,
    environment,
    git_state,
    interleaved,
    package_dir,
    query_catalog,
    report_disturbances,
    run_process,
    save_report,
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

ROWS = 1_000
MODULES = 10
LARGE = 10_000  # from this size on, the cold run and the floor are timed --cold-repeat times
TIMEOUT_S = 3600.0  # one process (a cold run of 20,000 assets takes minutes)
FIGURES = ("cold", "noop", "status", "list", "edit")  # what --only chooses from
# The edited asset's last literal: `df["x"] = df["x"] * 1.2 + 1` (an "arith" asset).
EDIT_LITERAL = re.compile(r'(df\["x"\] \* [0-9.]+ \+ )[0-9.]+')
ATTEMPTED_SQL = (
    "select status, count(*) n from materializations "
    "where status in ('succeeded', 'failed', 'check_failed') group by status"
)
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
SUPERLINEAR_EXCESS = 0.15  # above the first interval's line by more than this share ...
SUPERLINEAR_MIN = {"s": 0.05, "MiB": 5.0}  # ... and more than this much: faster than linear


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


@dataclass
class Attempts:
    """What each run attempted (succeeded, failed, check_failed), read from the catalog as
    the change in the counts of those states since the previous reading; however a run
    records its skipped assets, a no-op attempts nothing."""

    root: Path
    seen: dict[str, int] = field(default_factory=dict)

    def read(self) -> dict[str, int]:
        return {r["status"]: int(r["n"]) for r in query_catalog(self.root, ATTEMPTED_SQL)}

    def since_last(self) -> dict[str, int]:
        now = self.read()
        delta = {k: now.get(k, 0) - self.seen.get(k, 0) for k in now.keys() | self.seen.keys()}
        self.seen = now
        return {k: v for k, v in sorted(delta.items()) if v}

    def from_scratch(self) -> dict[str, int]:
        self.seen = {}
        return self.since_last()


def bench_size(project: ScaleProject, args: argparse.Namespace, log: Path) -> dict[str, Any]:
    n, root = project.n, project.root
    only = set(args.only or FIGURES)
    attempts = Attempts(root)
    measures: dict[str, Measure] = {}

    def clear_home() -> None:
        shutil.rmtree(project.home, ignore_errors=True)

    def clear_floor() -> None:
        shutil.rmtree(project.floor_out, ignore_errors=True)

    large = n >= LARGE
    cold_repeat = args.cold_repeat if large else args.repeat
    patient = not args.no_wait
    if "cold" in only:
        floor = Measure(
            f"floor@{n}", [PYTHON, "floor.py", "floor-out"], root, clear_floor, timeout_s=TIMEOUT_S
        )
        cold = Measure(
            f"cold@{n}",
            [VIBEPIPER, "materialize"],
            root,
            clear_home,
            attempts.from_scratch,
            timeout_s=TIMEOUT_S,
        )
        if large:  # a warm-up run would take minutes: compile and cache the modules instead
            print("  import floor_work, vibepiper list (warm-up) ...", file=sys.stderr)
            run_process([PYTHON, "-c", "import floor_work"], root, log, timeout_s=TIMEOUT_S)
            run_process([VIBEPIPER, "list"], root, log, timeout_s=TIMEOUT_S)
        interleaved([floor, cold], cold_repeat, log, args.quick, patient=patient, warm_up=not large)
        measures.update({m.name: m for m in (floor, cold)})
    else:  # the other figures need everything materialized
        print("  materialize (untimed set-up) ...", file=sys.stderr, flush=True)
        clear_home()
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

    results = {name: m.summary() for name, m in measures.items()}
    for name, m in measures.items():
        if m.after is not None:
            results[name]["attempted"] = m.extras
    derived = derive(project, results, cold_repeat)
    for problem in derived["problems"]:
        print(f"WARNING: {problem}", file=sys.stderr)
    return {"results": results, "derived": derived}


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def derive(project: ScaleProject, results: dict[str, Any], cold_repeat: int) -> dict[str, Any]:
    """Per size: each figure's median, min and max, in seconds and (`rss_<figure>`) in MiB of
    peak RSS, and whether the runs did what they should."""
    n = project.n
    figures = {}
    for name, r in results.items():
        figure = name.split("@")[0]
        figures[figure] = spread(r["times_s"])
        figures[f"rss_{figure}"] = spread(r["peak_rss_mib_runs"])
    expected = {"cold": {"succeeded": n}, "noop": {}, "edit": {"succeeded": 1}}
    problems = []
    for figure, want in expected.items():
        got = results.get(f"{figure}@{n}", {}).get("attempted", [])
        if any(a != want for a in got):
            problems.append(
                f"{n} assets: {figure} runs attempted {got}, expected {want or 'nothing'} each"
            )
    return {
        "assets": n,
        "modules": len(project.modules),
        "layers": project.nodes[-1].layer + 1,
        "edges": sum(len(node.inputs) for node in project.nodes),
        "edited": project.edited,
        "edited_module": project.module_of[project.edited],
        "cold_repeat": cold_repeat if f"cold@{n}" in results else None,
        "figures": figures,
        "disturbed": sorted(name for name, r in results.items() if r["disturbed_runs"]),
        "problems": problems,
    }


# -- growth with N -----------------------------------------------------------------------


def growth(points: list[tuple[int, float]], unit: str) -> dict[str, Any]:
    """How a figure grows with N: the least-squares slope per asset (ms or KiB), the slope
    of each interval between sizes, the cost per asset at the smallest and largest N, the
    exponent of a power law through those two, and a verdict.

    Faster than linear: the largest size's figure lies above the line through the first
    interval (flat if that falls) by more than SUPERLINEAR_EXCESS of it (and more than
    SUPERLINEAR_MIN), or, with two sizes only, the cost per asset grows by more than 5%.
    Else linear or better.
    """
    points = sorted(points)
    scale = 1000 if unit == "s" else 1024  # s -> ms, MiB -> KiB
    per = "ms" if unit == "s" else "KiB"
    ns = [p[0] for p in points]
    vs = [p[1] for p in points]
    mean_n, mean_v = statistics.fmean(ns), statistics.fmean(vs)
    var = sum((x - mean_n) ** 2 for x in ns)
    slope = sum((x - mean_n) * (v - mean_v) for x, v in points) / var
    intervals = [
        {"from": a, "to": b, "slope": (vb - va) / (b - a) * scale}
        for (a, va), (b, vb) in itertools.pairwise(points)
    ]
    (n0, v0), (n1, v1) = points[0], points[-1]
    exponent = math.log(v1 / v0) / math.log(n1 / n0) if v0 > 0 and v1 > 0 else None
    if len(points) >= 3:
        line = v0 + max(0.0, intervals[0]["slope"]) / scale * (n1 - n0)
        excess = v1 - line
        faster = excess > SUPERLINEAR_EXCESS * line and excess > SUPERLINEAR_MIN[unit]
    else:
        line, excess = None, None
        faster = v1 / n1 > 1.05 * v0 / n0
    return {
        "unit": per,
        "slope_per_asset": slope * scale,
        "intercept": mean_v - slope * mean_n,
        "intervals": intervals,
        "per_asset_smallest": v0 / n0 * scale,
        "per_asset_largest": v1 / n1 * scale,
        "exponent": exponent,
        "first_interval_line_at_largest": line,
        "excess_at_largest": excess,
        "verdict": "faster than linear" if faster else "linear or better",
    }


def growths(derived: list[dict[str, Any]]) -> dict[str, Any]:
    found = {}
    for figure, unit in SLOPE_FIGURES.items():
        points = [
            (d["assets"], d["figures"][figure]["median"]) for d in derived if figure in d["figures"]
        ]
        if len(points) >= 2:
            found[figure] = {"sizes": [p[0] for p in points], **growth(points, unit)}
    return found


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
        type=lambda s: [int(v) for v in s.split(",") if v.strip()],
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
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="on a busy machine: no waiting for a quiet one, no second try of a disturbed run "
        "(such runs are kept and flagged)",
    )
    parser.add_argument("--json", type=Path, help="default: bench/results/scale-<time>.json")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="write the projects in DIR and keep them"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: one warm-up per group, no waiting for a quiet machine, no second "
        "try of a disturbed run",
    )
    args = parser.parse_args()
    args.assets = sorted(set(args.assets or ([100, 200] if args.quick else [1000, 4000, 20000])))
    args.repeat = args.repeat or (1 if args.quick else 3)
    if args.repeat < 1 or args.cold_repeat < 1 or not args.assets or min(args.assets) < 20:
        parser.error("need --repeat >= 1, --cold-repeat >= 1 and --assets sizes >= 20")
    return args


def main() -> None:
    args = parse_args()
    started = dt.datetime.now(dt.UTC)
    git_before = git_state(package_dir())
    cpu = OtherCpu()  # the children waited for count as ours
    wall = time.perf_counter()
    results: dict[str, Any] = {}
    derived: list[dict[str, Any]] = []
    failed: dict[str, str] = {}  # size -> the command that failed, and its output's end
    with tempfile.TemporaryDirectory(prefix="vp-scale-") as tmp:
        base = args.keep or Path(tmp)
        log = Path(tmp) / "last-command.log"
        for n in args.assets:
            print(f"{n} assets:", file=sys.stderr, flush=True)
            folder = base / f"scale-{n}"
            if args.keep:
                shutil.rmtree(folder, ignore_errors=True)
            project = write_project(folder, n)
            try:
                done = bench_size(project, args, log)
            except CommandFailed as exc:  # keep the other sizes' figures
                print(f"WARNING: {n} assets: {exc}", file=sys.stderr)
                failed[str(n)] = str(exc)[-3000:]
                continue
            results.update(done["results"])
            derived.append(done["derived"])
    others = cpu.share()
    elapsed = time.perf_counter() - wall
    git_after = git_state(package_dir())
    # Linux starts a child's peak RSS at its parent's (vfork, then exec): ours must stay
    # below every peak measured.
    own_peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "benchmark": "scale",
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": elapsed,
        "assets": args.assets,
        "repeat": args.repeat,
        "cold_repeat_large": args.cold_repeat,
        "large": LARGE,
        "only": args.only,
        "quick": args.quick,
        "no_wait": args.no_wait,
        "rows_per_frame": ROWS,
        "environment": environment(
            PACKAGES,
            pythonpath=os.environ.get("PYTHONPATH"),
            children_cache_bytecode=True,
            script_peak_rss_mib=own_peak_mib,
        ),
        "git": git_before,
        "git_after": git_after,
        "other_processes_cpu_share": others,
        "load_average_1_5_15min": os.getloadavg(),
        "results": results,
        "derived": {str(d["assets"]): d for d in derived},
        "growth": growths(derived),
        "failed": failed,
    }
    print_report(report)
    print(f"\nthis script's own peak RSS: {own_peak_mib:.0f} MiB; {elapsed:.0f} s in all")
    report_disturbances(others, git_before, git_after)
    out = save_report(report, "scale", args.json, started)
    print(f"saved {out}")
    if failed:
        sys.exit(f"FAILED at {', '.join(failed)} assets: a command failed (above)")


if __name__ == "__main__":
    main()
