"""Benchmark: `vibepiper materialize --executor` on a CPU-bound graph, and each executor's
per-asset overhead.

    .venv/bin/python bench/executors.py [--runs 3] [--workers 2] [--json PATH] [--dir DIR]
    .venv/bin/python bench/executors.py --quick          # a smoke test for CI, under ~20 s

Two synthetic projects, each timed as whole processes (wall time; median, min and max of
`--runs` runs after an untimed warm-up), every run with `--force` so that every asset is
computed again while the catalog and the store stay (what is measured is computing, not
creating the catalog):

- `cpu`: 40 assets in 4 layers of 10; every asset spends about 0.3 s of one core, most of
  it holding the GIL (`DataFrame.apply` of a Python function over 30,000 rows, about
  0.22 s, then two sorts and group-bys over 200,000 rows), reads 1 or 2 small frames of
  the layer above and returns a 10-row frame. Each executor (`inprocess`, `threads`,
  `processes` and `dask`, the last three with `--workers N`) against `inprocess`:
  speed-up = median of `inprocess` / median of the executor. Goal: `processes` with 2
  workers at least 1.6x faster than `inprocess` on 2 cores (judged on the default
  graph only, not with --quick).
- `trivial`: 200 assets in 20 layers of 10, each returning a 1-row frame (a non-root
  reads the asset above it). **Per-asset overhead** of an executor = (median of its
  `--force` run - median of the floor) / 200, where the floor is a plain Python script
  that makes the same 200 frames with the same function bodies and writes each with
  `pyarrow.parquet.write_table` (as `graph.py` defines it). It is everything VibePiper and
  the executor add, start-up included, spread over the assets. To tell the two apart,
  the same command for one root asset (`materialize --force l0_0`: the start-up, plus
  one asset) is timed too (not with --quick).

See bench/README.md ("executors.py") for the figures and what they mean.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import importlib.metadata
import importlib.util
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    PYTHON,
    VIBEPIPER,
    Measure,
    Session,
    cpu_count,
    environment,
    interleaved,
    query_catalog,
    workspace,
)
from graph import FLOOR_MAIN

EXECUTORS = ("inprocess", "threads", "processes", "dask")
ONE_ASSET = "(1 asset)"  # the start-up measure: `--force` of one root of the trivial project
GOAL_EXECUTOR = "processes"
GOAL_SPEEDUP = 1.6  # processes with 2 workers against inprocess, on 2 cores
LATEST_RUN_SQL = (
    "select status, count(*) n, "
    "sum(date_diff('microsecond', started_at, finished_at)) / 1e6 s "
    "from materializations where run_id = "
    "(select max(run_id) from runs where kind = 'materialize') group by status"
)
PACKAGES = (
    "vibepiper",
    "numpy",
    "pandas",
    "pyarrow",
    "duckdb",
    "dask",
    "distributed",
    "click",
    "rich",
)


@dataclass(frozen=True)
class Shape:
    """The sizes of one run of the benchmark (the defaults, or --quick)."""

    cpu_layers: int = 4
    cpu_width: int = 10
    apply_rows: int = 30_000  # rows of the per-row Python function, per asset
    sort_rows: int = 200_000  # rows of the sorts and the group-by, per asset
    trivial_layers: int = 20
    trivial_width: int = 10


QUICK = Shape(
    cpu_layers=2, cpu_width=4, apply_rows=2_000, sort_rows=20_000, trivial_layers=4, trivial_width=5
)


# -- the synthetic projects --------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    name: str
    index: int
    inputs: tuple[str, ...]


def layered(layers: int, width: int, fan_in: int) -> list[Node]:
    """`layers` x `width` assets in topological order. An asset of layer k > 0 reads the
    asset at its position in layer k - 1 and, with `fan_in` 2, at even positions also the
    next one: every layer is `width` wide, but there are dependencies across positions."""
    nodes = []
    for layer in range(layers):
        for pos in range(width):
            inputs: tuple[str, ...] = ()
            if layer:
                picks = [pos]
                if fan_in == 2 and pos % 2 == 0 and width > 1:
                    picks.append((pos + 1) % width)
                inputs = tuple(f"l{layer - 1}_{p}" for p in picks)
            nodes.append(Node(f"l{layer}_{pos}", layer * width + pos, inputs))
    return nodes


CPU_HELPERS = '''
APPLY_ROWS = {apply_rows}
SORT_ROWS = {sort_rows}


def _row(r: pd.Series) -> float:
    return math.sin(r["x"]) * r["y"] if r["k"] % 2 else math.cos(r["x"]) + r["y"]


def burn(seed: int, inputs: list[pd.DataFrame]) -> pd.DataFrame:
    """CPU work, mostly holding the GIL: a Python function applied to every row, then
    sorts and group-bys over a larger frame. Returns 10 rows."""
    rng = np.random.default_rng(seed)
    shift = sum(float(i["z"].sum()) for i in inputs) % 1.0
    df = pd.DataFrame(
        {{
            "k": rng.integers(0, 10, APPLY_ROWS),
            "x": rng.normal(shift, 1.0, APPLY_ROWS),
            "y": rng.random(APPLY_ROWS),
        }}
    )
    df["z"] = df.apply(_row, axis=1)
    big = pd.DataFrame(
        {{"k": rng.integers(0, 1000, SORT_ROWS), "x": rng.normal(0.0, 1.0, SORT_ROWS)}}
    )
    for _ in range(2):
        big = big.sort_values(["k", "x"], ignore_index=True)
        big["x"] = big["x"] - big.groupby("k")["x"].transform("mean")
    df["z"] = df["z"] + float(big["x"].abs().mean())
    return df.groupby("k", as_index=False).agg(x=("x", "mean"), z=("z", "sum"), n=("z", "size"))
'''


def cpu_source(node: Node) -> str:
    args = ", ".join(f"{i}: pd.DataFrame" for i in node.inputs)
    return (
        f"def {node.name}({args}) -> pd.DataFrame:\n"
        f"    return burn({node.index}, [{', '.join(node.inputs)}])\n"
    )


def trivial_source(node: Node) -> str:
    args = ", ".join(f"{i}: pd.DataFrame" for i in node.inputs)
    x = f'float({node.inputs[0]}["x"].iloc[0]) + 1.0' if node.inputs else f"{node.index}.0"
    return (
        f"def {node.name}({args}) -> pd.DataFrame:\n"
        f'    return pd.DataFrame({{"id": [{node.index}], "x": [{x}]}})\n'
    )


@dataclass
class Project:
    kind: str  # "cpu" or "trivial"
    root: Path
    nodes: list[Node]

    @property
    def n(self) -> int:
        return len(self.nodes)

    @property
    def home(self) -> Path:
        return self.root / ".vibepiper"


def write_project(root: Path, kind: str, nodes: list[Node], helpers: str) -> Project:
    """The assets module (`<kind>_assets.py`, listed in pyproject.toml) and a floor script
    (`floor.py` importing `floor_work.py`: the same function bodies, in topological order,
    each output written with `pq.write_table`, as in graph.py)."""
    root.mkdir(parents=True)
    write = cpu_source if kind == "cpu" else trivial_source
    sources = [write(node) for node in nodes]
    module = f"{kind}_assets"
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "executors-bench-{kind}"\nversion = "0"\n\n'
        f'[tool.vibepiper]\nmodules = ["{module}"]\n'
    )
    head = "import math\n\nimport numpy as np\nimport pandas as pd\n"
    (root / f"{module}.py").write_text(
        head
        + "\nfrom vibepiper import asset\n"
        + helpers
        + "".join(f"\n\n@asset\n{src}" for src in sources)
    )
    order = ",\n".join(f"    ({node.name!r}, {node.inputs!r})" for node in nodes)
    (root / "floor_work.py").write_text(
        "import os\nfrom pathlib import Path\n\n"
        + head
        + "import pyarrow as pa\nimport pyarrow.parquet as pq\n"
        + helpers
        + "".join(f"\n\n{src}" for src in sources)
        + f"\n\nORDER = [\n{order},\n]\n"
        + FLOOR_MAIN
    )
    (root / "floor.py").write_text(
        "import sys\n\nimport floor_work\n\nfloor_work.main(sys.argv[1:])\n"
    )
    return Project(kind, root, nodes)


def write_projects(base: Path, shape: Shape) -> tuple[Project, Project]:
    helpers = CPU_HELPERS.format(apply_rows=shape.apply_rows, sort_rows=shape.sort_rows)
    cpu = write_project(
        base / "cpu", "cpu", layered(shape.cpu_layers, shape.cpu_width, fan_in=2), helpers
    )
    trivial = write_project(
        base / "trivial", "trivial", layered(shape.trivial_layers, shape.trivial_width, 1), ""
    )
    return cpu, trivial


# -- running -----------------------------------------------------------------------------

PR_SET_CHILD_SUBREAPER = 36
ORPHAN_WAIT_S = 10.0


def adopt_orphans() -> bool:
    """Make this process the Linux "child subreaper" of what it starts.

    The `processes` executor forks its workers from a multiprocessing fork server that
    `vibepiper` never waits for: without this, their CPU time would count neither as the
    command's nor (by /proc/stat) as ours, so every such run would look disturbed by other
    processes. Reparented to us instead, they are reaped (and counted) by `reap_orphans`.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def reap_orphans() -> float:
    """Wait for the processes reparented to us (see `adopt_orphans`): their CPU seconds
    (with their own waited-for children's), which count as the command's."""
    cpu = 0.0
    deadline = time.monotonic() + ORPHAN_WAIT_S
    while True:
        try:
            pid, _, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return cpu
        if pid:
            cpu += usage.ru_utime + usage.ru_stime
        elif time.monotonic() > deadline:
            print("WARNING: a process the command started is still running", file=sys.stderr)
            return cpu
        else:
            time.sleep(0.005)


@dataclass
class AssetsMeasure(Measure):
    """A `materialize` command; `after` reads the states of its run from the catalog."""

    expected: int = 0  # how many assets each run must compute


def latest_run(project: Project) -> dict[str, dict[str, float]]:
    """Per state of the latest materialize run: how many assets, and their total seconds
    from started_at to finished_at (from the catalog, with `vibepiper query`)."""
    return {
        row["status"]: {"assets": int(row["n"]), "seconds": float(row["s"] or 0.0)}
        for row in query_catalog(project.root, LATEST_RUN_SQL)
    }


def label(executor: str, workers: int) -> str:
    return executor if executor == "inprocess" else f"{executor}/{workers}"


def materialize(
    project: Project, executor: str, workers: int, one: str | None = None
) -> AssetsMeasure:
    """`vibepiper materialize --force` of every asset, or of the asset `one` only."""
    cmd = [VIBEPIPER, "materialize", "--force", "--executor", executor]
    if executor != "inprocess":
        cmd += ["--workers", str(workers)]
    name = label(executor, workers)
    if one is not None:
        cmd.append(one)
        name = f"{name} {ONE_ASSET}"
    return AssetsMeasure(
        name,
        cmd,
        project.root,
        after=lambda: latest_run(project),
        reap=reap_orphans,
        expected=1 if one else project.n,
    )


def floor(project: Project) -> Measure:
    out = project.root / "floor-out"
    return Measure(
        "floor",
        [PYTHON, "floor.py", str(out)],
        project.root,
        prepare=lambda: shutil.rmtree(out, ignore_errors=True),
        reap=reap_orphans,
    )


def bench(
    project: Project, measures: list[Measure], runs: int, log: Path, quick: bool
) -> dict[str, dict[str, Any]]:
    """Time `measures` (the first one is inprocess: with --quick it is the only warm-up, the
    run that makes the catalog); check that every run computed what it should."""
    print(f"{project.kind}: {project.n} assets", file=sys.stderr, flush=True)
    interleaved(measures, runs, log, quick)
    found = {}
    for m in measures:
        s = m.summary()
        if isinstance(m, AssetsMeasure):
            n = m.expected
            s["states"] = m.extras
            s["all_succeeded"] = all(
                set(e) == {"succeeded"} and e["succeeded"]["assets"] == n for e in m.extras
            )
            s["asset_seconds_mean"] = statistics.median(
                e.get("succeeded", {}).get("seconds", 0.0) / n for e in m.extras
            )
            if not s["all_succeeded"]:
                print(
                    f"WARNING: {project.kind}, {m.name}: a run did not succeed for all "
                    f"{n} assets: {m.extras}",
                    file=sys.stderr,
                )
        found[m.name] = s
    return found


def derive(
    cpu: dict[str, dict[str, Any]], trivial: dict[str, dict[str, Any]], n_trivial: int
) -> dict[str, dict[str, Any]]:
    """Per executor: speed-up on the CPU graph against inprocess, per-asset overhead."""
    base = cpu.get("inprocess", {}).get("median_s")
    floor_s = trivial["floor"]["median_s"]
    out = {}
    for name, c in cpu.items():
        if name == "floor":
            continue
        t = trivial[name]
        one = trivial.get(f"{name} {ONE_ASSET}")
        out[name] = {
            "cpu_median_s": c["median_s"],
            "cpu_min_s": c["min_s"],
            "cpu_max_s": c["max_s"],
            "speedup_vs_inprocess": base / c["median_s"] if base else None,
            "cpu_asset_seconds_mean": c["asset_seconds_mean"],
            "trivial_median_s": t["median_s"],
            "trivial_floor_s": floor_s,
            "overhead_per_asset_ms": (t["median_s"] - floor_s) / n_trivial * 1000,
            "one_asset_median_s": one["median_s"] if one else None,
        }
    return out


# -- report ------------------------------------------------------------------------------


def environment_here() -> dict[str, Any]:
    return environment(PACKAGES)


def print_tables(
    cpu: dict[str, dict[str, Any]],
    trivial: dict[str, dict[str, Any]],
    derived: dict[str, dict[str, Any]],
    cpu_project: Project,
    trivial_project: Project,
    shape: Shape,
    runs: int,
) -> None:
    print(
        f"\nCPU-bound graph: {cpu_project.n} assets ({shape.cpu_layers} layers of "
        f"{shape.cpu_width}), --force, {runs} run(s); per-asset overhead from "
        f"{trivial_project.n} trivial assets"
    )
    print(
        f"{'executor':<14} {'median s':>9} {'min-max s':>13} {'speed-up':>9} "
        f"{'s/asset':>8} {'overhead ms/asset':>18} {'1-asset run s':>14}"
    )
    for name, d in derived.items():
        speedup = "-" if d["speedup_vs_inprocess"] is None else f"{d['speedup_vs_inprocess']:.2f}x"
        one = "-" if d["one_asset_median_s"] is None else f"{d['one_asset_median_s']:.3f}"
        flag = "  (disturbed)" if cpu[name]["disturbed_runs"] else ""
        print(
            f"{name:<14} {d['cpu_median_s']:>9.3f} "
            f"{d['cpu_min_s']:>6.2f}-{d['cpu_max_s']:<6.2f} {speedup:>9} "
            f"{d['cpu_asset_seconds_mean']:>8.3f} {d['overhead_per_asset_ms']:>18.2f} "
            f"{one:>14}{flag}"
        )
    f = cpu["floor"]
    print(
        f"{'floor (script)':<14} {f['median_s']:>9.3f} {f['min_s']:>6.2f}-{f['max_s']:<6.2f}"
        f"             (the same {cpu_project.n} functions in a plain script, in turn)"
    )
    print(f"\nTrivial graph: {trivial_project.n} assets, each a 1-row frame, --force")
    print(f"{'name':<22} {'median s':>9} {'min-max s':>13} {'overhead ms/asset':>18}")
    for name, t in trivial.items():
        over = f"{derived[name]['overhead_per_asset_ms']:.2f}" if name in derived else "-"
        flag = "  (disturbed)" if t["disturbed_runs"] else ""
        print(
            f"{name:<22} {t['median_s']:>9.3f} {t['min_s']:>6.2f}-{t['max_s']:<6.2f} "
            f"{over:>18}{flag}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, help="timed runs of each command (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="for the parallel executors")
    parser.add_argument(
        "--executors",
        default=",".join(EXECUTORS),
        type=lambda s: [v.strip() for v in s.split(",") if v.strip()],
        help=f"comma-separated (default {','.join(EXECUTORS)})",
    )
    parser.add_argument("--json", type=Path, help="default: bench/results/executors-<time>.json")
    parser.add_argument(
        "--dir",
        type=Path,
        help="write the projects in DIR/cpu and DIR/trivial (replaced) and keep them",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: 8 light CPU assets and 20 trivial ones, 1 run, one warm-up",
    )
    args = parser.parse_args()
    args.runs = args.runs or (1 if args.quick else 3)
    unknown = [e for e in args.executors if e not in EXECUTORS]
    if args.runs < 1 or args.workers < 1 or unknown or not args.executors:
        parser.error(f"need --runs >= 1, --workers >= 1 and executors among {EXECUTORS}")
    return args


def main() -> None:
    args = parse_args()
    shape = QUICK if args.quick else Shape()
    executors = [e for e in EXECUTORS if e in args.executors]  # inprocess first
    skipped = {}
    if "dask" in executors and importlib.util.find_spec("distributed") is None:
        executors.remove("dask")
        skipped["dask"] = "distributed is not importable (pip install 'vibepiper[dask]')"
        print(f"note: dask skipped: {skipped['dask']}", file=sys.stderr)
    if not executors:
        sys.exit("no executor left to measure")
    adopted = adopt_orphans()
    if not adopted:
        print("note: cannot adopt orphaned workers: CPU figures miss them", file=sys.stderr)
    session = Session("executors")
    with workspace("vp-executors-", args.dir) as (base, log):
        for kind in ("cpu", "trivial"):
            shutil.rmtree(base / kind, ignore_errors=True)
        cpu_project, trivial_project = write_projects(base, shape)
        w = args.workers
        measures: list[Measure] = [materialize(cpu_project, e, w) for e in executors]
        cpu = bench(cpu_project, [*measures, floor(cpu_project)], args.runs, log, args.quick)
        measures = [materialize(trivial_project, e, w) for e in executors]
        if not args.quick:  # start-up: the same command for one root asset
            first = trivial_project.nodes[0].name
            measures += [materialize(trivial_project, e, w, one=first) for e in executors]
        measures.append(floor(trivial_project))
        trivial = bench(trivial_project, measures, args.runs, log, args.quick)
    session.end()
    derived = derive(cpu, trivial, trivial_project.n)
    print_tables(cpu, trivial, derived, cpu_project, trivial_project, shape, args.runs)
    goal_name = label(GOAL_EXECUTOR, args.workers)
    goal = None
    if goal_name in derived and derived[goal_name]["speedup_vs_inprocess"] is not None:
        speedup = derived[goal_name]["speedup_vs_inprocess"]
        verdict = "not judged with --quick"
        if not args.quick:
            goal = speedup >= GOAL_SPEEDUP
            verdict = "met" if goal else "NOT met"
        print(
            f"\n{goal_name} against inprocess: {speedup:.2f}x (goal >= {GOAL_SPEEDUP}x with 2 "
            f"workers on 2 cores; this machine has {cpu_count()} CPUs): {verdict}"
        )
    for name, why in skipped.items():
        print(f"{name}: skipped, {why}")
    print(f"\nbenchmark took {session.elapsed:.0f} s")
    settings = {
        "quick": args.quick,
        "runs": args.runs,
        "workers": args.workers,
        "force": True,
        "shape": dataclasses.asdict(shape),
        "cpu_assets": cpu_project.n,
        "trivial_assets": trivial_project.n,
        "skipped": skipped,
        "orphans_adopted": adopted,
        "environment": environment_here(),
    }
    measured = {
        "results": {
            **{f"cpu:{k}": v for k, v in cpu.items()},
            **{f"trivial:{k}": v for k, v in trivial.items()},
        },
        "derived": derived,
        "goal": {
            "executor": goal_name,
            "speedup_at_least": GOAL_SPEEDUP,
            "met": goal,
        },
    }
    session.save(session.report(settings, measured), args.json)
    failed = [
        f"{kind}:{name}"
        for kind, found in (("cpu", cpu), ("trivial", trivial))
        for name, s in found.items()
        if s.get("all_succeeded") is False
    ]
    if failed:
        sys.exit(f"FAILED: a run did not compute every asset: {', '.join(failed)}")


if __name__ == "__main__":
    main()
