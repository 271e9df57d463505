"""Benchmark: whole `vibepiper` processes on a synthetic layered graph, against plain scripts.

    .venv/bin/python bench/graph.py [--assets 50,200] [--repeat 5] [--json PATH] [--profile DIR]
    .venv/bin/python bench/graph.py --quick              # a smoke test: 50 assets, 1 run

For each N it writes a project of N assets (10,000-row frames merged and transformed layer
by layer) and a plain pandas + pyarrow "floor" script doing the same work, then times whole
processes (wall time; median, min and max of K runs after one untimed warm-up): a cold
`vibepiper materialize` against the floor, a no-op one against the import floor, one with a
root's code changed, and start-up (`--help`, `list`, `status`) against `python -c pass`.
See bench/README.md for what each figure means and the goals.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    PYTHON,
    VIBEPIPER,
    Measure,
    Session,
    environment,
    interleaved,
    package_dir,
    query_catalog,
    run_process,
    size_list,
    workspace,
)

ROWS = 10_000
ROOT_SHARE = 0.10  # the first layer's share of the assets; every layer has that width
CATEGORIES = ("north", "south", "east", "west", "centre")
CHANGED_ROOT = "l0_0"  # the root whose code the "changed" measurement edits
SCALE_LITERAL = re.compile(r"\* [0-9.]+,  # scale")
GOAL_NOOP_MINUS_IMPORT_S = 0.3  # for 200 assets
GOAL_NOOP_OVER_COLD = 0.1
IMPORT_FLOOR = "import pandas, pyarrow.parquet, duckdb"
STATUS_SQL = (
    "select status, count(*) n from materializations "
    "where run_id = (select max(run_id) from runs) group by status"
)
PACKAGES = ("vibepiper", "numpy", "pandas", "pyarrow", "duckdb", "pandera", "click", "rich")


# -- the synthetic project ---------------------------------------------------------------


@dataclass
class Node:
    name: str
    layer: int
    inputs: tuple[str, ...]
    op: str  # "root", "groupby" or "arith"
    position: int  # in its layer


def layout(n: int) -> list[Node]:
    """N assets in layers of width ~N/10, in topological order.

    An asset of layer k reads 1-3 assets of layer k-1 (its own position, then at random its
    neighbours), so a root's descendants form a cone rather than the whole graph.
    """
    width = max(1, round(n * ROOT_SHARE))
    nodes: list[Node] = []
    for index in range(n):
        layer, pos = divmod(index, width)
        if layer == 0:
            nodes.append(Node(f"l0_{pos}", 0, (), "root", pos))
            continue
        rng = random.Random(layer * 100_003 + pos)
        near = [(pos + d) % width for d in (-1, 1)]
        picks = [pos, *rng.sample(near, rng.randint(0, 2))]
        inputs = tuple(f"l{layer - 1}_{p}" for p in dict.fromkeys(picks))
        op = rng.choice(("groupby", "arith"))
        nodes.append(Node(f"l{layer}_{pos}", layer, inputs, op, pos))
    return nodes


def descendants(nodes: list[Node], name: str) -> set[str]:
    found = {name}
    for node in nodes:  # topological order: one pass is enough
        if any(i in found for i in node.inputs):
            found.add(node.name)
    return found - {name}


def function_source(node: Node, index: int, rows: int = ROWS) -> str:
    """The body shared by the asset and the floor: the same pandas work, to the letter (a
    root makes a frame of `rows` rows)."""
    args = ", ".join(f"{i}: pd.DataFrame" for i in node.inputs)
    head = f"def {node.name}({args}) -> pd.DataFrame:\n"
    if node.op == "root":
        body = f"""\
            rng = np.random.default_rng({index})
            return pd.DataFrame(
                {{
                    "id": rng.permutation({rows}),
                    "x": rng.normal(0.0, 1.0, {rows}) * 1.000,  # scale
                    "cat": rng.choice(CATEGORIES, {rows}),
                }}
            )
            """
        return head + textwrap.indent(textwrap.dedent(body), "    ")
    first, *others = node.inputs
    lines = [f'df = {first}[["id", "x", "cat"]]']
    weights = [f'df["x"] * {1 / len(node.inputs):.3f}']
    for k, other in enumerate(others, 1):
        lines.append(f'df = df.merge({other}[["id", "x"]], on="id", suffixes=("", "_{k}"))')
        weights.append(f'df["x_{k}"] * {1 / len(node.inputs):.3f}')
    lines.append(f'df["x"] = {" + ".join(weights)}')
    if node.op == "groupby":
        lines.append('df["x"] = df["x"] - df.groupby("cat")["x"].transform("mean")')
    else:
        lines.append(f'df["x"] = df["x"] * {1 + index % 5 / 10:.1f} + {index % 3}')
    lines.append('return df[["id", "x", "cat"]]')
    return head + "".join(f"    {line}\n" for line in lines)


HEADER = f"""\
import numpy as np
import pandas as pd
{{imports}}
CATEGORIES = np.array({list(CATEGORIES)!r}, dtype=object)
"""

FLOOR_MAIN = '''

def main(argv: list[str]) -> None:
    """Compute every asset in topological order, keep each frame in memory until its last
    consumer is done (as vibepiper does), and write each to OUT/<name>.parquet."""
    out = Path(argv[0])
    durable = "--durable" in argv
    out.mkdir(parents=True, exist_ok=True)
    waiting = {name: 0 for name, _ in ORDER}
    for _, inputs in ORDER:
        for i in inputs:
            waiting[i] += 1
    frames = {}
    for name, inputs in ORDER:
        frame = globals()[name](*(frames[i] for i in inputs))
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if durable:  # what vibepiper's store does: checksums, temp file, fsync, rename
            temp = out / f".{name}.tmp"
            with open(temp, "wb") as handle:
                pq.write_table(table, handle, write_page_checksum=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, out / f"{name}.parquet")
            fd = os.open(out, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        else:
            pq.write_table(table, out / f"{name}.parquet")
        if waiting[name]:
            frames[name] = frame
        for i in inputs:
            waiting[i] -= 1
            if not waiting[i]:
                del frames[i]
'''


@dataclass
class Project:
    n: int
    root: Path
    nodes: list[Node]
    scale: int = 0  # the changed root's current scale literal is 1 + scale / 1000

    @property
    def home(self) -> Path:
        return self.root / ".vibepiper"

    @property
    def floor_out(self) -> Path:
        return self.root / "floor-out"

    def change_root(self) -> None:
        """Change the scale literal of CHANGED_ROOT, so its output (and its cone's) change."""
        self.scale += 1
        edit_function(
            self.root / "graph_assets.py",
            CHANGED_ROOT,
            SCALE_LITERAL,
            f"* {1 + self.scale / 1000:.3f},  # scale",
        )


def edit_function(path: Path, name: str, pattern: re.Pattern[str], replacement: str) -> None:
    """Replace the one match of `pattern` in function `name` of the module at `path`.

    The module's cached bytecode is removed: a .pyc is validated by the source's size and
    its mtime in whole seconds, both of which an edit within a second may keep.
    """
    text = path.read_text()
    head, sep, rest = text.partition(f"def {name}(")
    body, sep2, tail = rest.partition("\n\n\n")
    body, count = pattern.subn(replacement, body)
    if not sep or count != 1:
        raise RuntimeError(f"{path.name}: no {pattern.pattern!r} found in {name}")
    path.write_text(head + sep + body + sep2 + tail)
    for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
        cached.unlink()


def assets_module(sources: list[str]) -> str:
    """A module defining each of `sources` as an asset."""
    return HEADER.format(imports="\nfrom vibepiper import asset\n") + "".join(
        f"\n\n@asset\n{src}" for src in sources
    )


def write_floor(root: Path, nodes: list[Node], sources: list[str]) -> None:
    """The plain script: `floor.py OUT [--durable]` runs `sources` in the order of `nodes`."""
    order = ",\n".join(f"    ({node.name!r}, {node.inputs!r})" for node in nodes)
    floor = (
        "import os\nfrom pathlib import Path\n\n"
        + HEADER.format(imports="import pyarrow as pa\nimport pyarrow.parquet as pq\n")
        + "".join(f"\n\n{src}" for src in sources)
        + f"\n\nORDER = [\n{order},\n]\n"
        + FLOOR_MAIN
    )
    (root / "floor_work.py").write_text(floor)
    write_floor_launcher(root)


def write_floor_launcher(root: Path) -> None:
    """`floor.py`, which runs `floor_work.main`: so the floor's module is compiled once and
    cached, as the assets' modules are."""
    (root / "floor.py").write_text(
        "import sys\n\nimport floor_work\n\nfloor_work.main(sys.argv[1:])\n"
    )


def write_project(root: Path, n: int) -> Project:
    nodes = layout(n)
    root.mkdir(parents=True)
    sources = [function_source(node, i) for i, node in enumerate(nodes)]
    (root / "pyproject.toml").write_text(
        '[project]\nname = "graph-bench"\nversion = "0"\n\n'
        '[tool.vibepiper]\nmodules = ["graph_assets"]\n'
    )
    (root / "graph_assets.py").write_text(assets_module(sources))
    write_floor(root, nodes, sources)
    return Project(n, root, nodes)


# -- one project -------------------------------------------------------------------------


def status_counts(root: Path) -> dict[str, int]:
    """How many assets of the latest run ended in each state, from the catalog."""
    return {row["status"]: int(row["n"]) for row in query_catalog(root, STATUS_SQL)}


def bench_project(project: Project, repeat: int, log: Path, quick: bool) -> dict[str, Any]:
    n, root = project.n, project.root
    results: dict[str, Measure] = {}

    def clear_home() -> None:
        shutil.rmtree(project.home, ignore_errors=True)

    def clear_floor() -> None:
        shutil.rmtree(project.floor_out, ignore_errors=True)

    floor = Measure(f"floor@{n}", [PYTHON, "floor.py", "floor-out"], root, clear_floor)
    durable = Measure(
        f"floor_durable@{n}", [PYTHON, "floor.py", "floor-out", "--durable"], root, clear_floor
    )
    cold = Measure(
        f"cold@{n}",
        [VIBEPIPER, "materialize"],
        root,
        prepare=clear_home,
        after=lambda: status_counts(root),
    )
    interleaved([floor, durable, cold], repeat, log, quick)
    results.update({m.name: m for m in (floor, durable, cold)})

    import_floor = Measure(f"import@{n}", [PYTHON, "-c", IMPORT_FLOOR], root)
    noop = Measure(f"noop@{n}", [VIBEPIPER, "materialize"], root, after=lambda: status_counts(root))
    interleaved([import_floor, noop], repeat, log, quick)
    results.update({m.name: m for m in (import_floor, noop)})

    changed = Measure(
        f"changed@{n}",
        [VIBEPIPER, "materialize"],
        root,
        prepare=project.change_root,
        after=lambda: status_counts(root),
    )
    interleaved([changed], repeat, log, quick)
    results[changed.name] = changed

    startup = [
        Measure(f"python_pass@{n}", [PYTHON, "-c", "pass"], root),
        Measure(f"help@{n}", [VIBEPIPER, "--help"], root),
        Measure(f"list@{n}", [VIBEPIPER, "list"], root),
        Measure(f"status@{n}", [VIBEPIPER, "status"], root),
    ]
    interleaved(startup, repeat, log, quick)
    results.update({m.name: m for m in startup})

    summaries = {name: m.summary() for name, m in results.items()}
    med = {name: s["median_s"] for name, s in summaries.items()}
    references = {
        f"cold@{n}": f"floor@{n}",
        f"floor_durable@{n}": f"floor@{n}",
        f"noop@{n}": f"import@{n}",
        f"changed@{n}": f"cold@{n}",
        f"help@{n}": f"python_pass@{n}",
        f"list@{n}": f"python_pass@{n}",
        f"status@{n}": f"python_pass@{n}",
    }
    for name, s in summaries.items():
        ref = references.get(name)
        s["floor"] = ref
        s["floor_median_s"] = med[ref] if ref else None
        s["ratio_to_floor"] = med[name] / med[ref] if ref else None

    expected_changed = 1 + len(descendants(project.nodes, CHANGED_ROOT))
    summaries[f"cold@{n}"]["states"] = cold.extras
    summaries[f"noop@{n}"]["states"] = noop.extras
    summaries[f"changed@{n}"]["states"] = changed.extras
    succeeded = [e.get("succeeded", 0) for e in changed.extras]
    derived = {
        "assets": n,
        "roots": sum(1 for node in project.nodes if node.op == "root"),
        "layers": project.nodes[-1].layer + 1,
        "edges": sum(len(node.inputs) for node in project.nodes),
        "cold_over_floor": med[f"cold@{n}"] / med[f"floor@{n}"],
        "per_asset_overhead_s": (med[f"cold@{n}"] - med[f"floor@{n}"]) / n,
        "per_asset_overhead_over_durable_floor_s": (med[f"cold@{n}"] - med[f"floor_durable@{n}"])
        / n,
        "noop_minus_import_s": med[f"noop@{n}"] - med[f"import@{n}"],
        "noop_over_cold": med[f"noop@{n}"] / med[f"cold@{n}"],
        "changed_root": CHANGED_ROOT,
        "changed_expected_succeeded": expected_changed,
        "changed_succeeded": succeeded,
        "changed_over_cold": med[f"changed@{n}"] / med[f"cold@{n}"],
        "cold_all_succeeded": all(e.get("succeeded") == n for e in cold.extras),
        "noop_all_skipped": all(e.get("skipped") == n and len(e) == 1 for e in noop.extras),
    }
    if n == 200:
        derived["goal_noop_minus_import_met"] = (
            derived["noop_minus_import_s"] <= GOAL_NOOP_MINUS_IMPORT_S
        )
    derived["goal_noop_over_cold_met"] = derived["noop_over_cold"] <= GOAL_NOOP_OVER_COLD
    for problem in sanity(derived):
        print(f"WARNING: {problem}", file=sys.stderr)
    return {"results": summaries, "derived": derived}


def sanity(d: dict[str, Any]) -> list[str]:
    problems = []
    n = d["assets"]
    if not d["cold_all_succeeded"]:
        problems.append(f"{n} assets: a cold run did not succeed for every asset")
    if not d["noop_all_skipped"]:
        problems.append(f"{n} assets: a no-op run recomputed something")
    if any(s != d["changed_expected_succeeded"] for s in d["changed_succeeded"]):
        problems.append(
            f"{n} assets: changing {d['changed_root']} recomputed {d['changed_succeeded']} "
            f"assets, expected {d['changed_expected_succeeded']} (it and its descendants)"
        )
    return problems


# -- profiling (optional) ----------------------------------------------------------------


def profile(project: Project, out: Path, log: Path) -> dict[str, Any]:
    """cProfile and -X importtime of one cold and one no-op materialize, saved in `out`."""
    import pstats

    out.mkdir(parents=True, exist_ok=True)
    found: dict[str, Any] = {}
    package = str(package_dir())
    for kind in ("cold", "noop"):
        if kind == "cold":
            shutil.rmtree(project.home, ignore_errors=True)
        prof = out / f"{kind}-{project.n}.prof"
        run_process(
            [PYTHON, "-m", "cProfile", "-o", str(prof), VIBEPIPER, "materialize"], project.root, log
        )
        if kind == "cold":
            shutil.rmtree(project.home, ignore_errors=True)
        imports = out / f"{kind}-{project.n}-importtime.txt"
        run = run_process(
            [PYTHON, "-X", "importtime", VIBEPIPER, "materialize"], project.root, imports
        )
        stats = pstats.Stats(str(prof))
        total = max(ct for (_, _, _, ct, _) in stats.stats.values())  # type: ignore[attr-defined]
        ours = sorted(
            (
                (ct, tt, nc, f"{Path(file).relative_to(package).as_posix()}:{line}({func})")
                for (file, line, func), (_, nc, tt, ct, _) in stats.stats.items()  # type: ignore[attr-defined]
                if file.startswith(package)
            ),
            reverse=True,
        )
        found[kind] = {
            "profile": str(prof),
            "importtime": str(imports),
            "importtime_wall_s": run.wall_s,
            "profiled_total_s": total,
            "top_cumulative_in_vibepiper": [
                {"cumulative_s": ct, "own_s": tt, "calls": nc, "function": where}
                for ct, tt, nc, where in ours[:25]
            ],
            "top_imports": top_imports(imports),
        }
    return found


def top_imports(path: Path, count: int = 15) -> list[dict[str, Any]]:
    """The slowest top-level imports of an `-X importtime` log (cumulative microseconds)."""
    rows: list[dict[str, Any]] = []
    for line in path.read_text(errors="replace").splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match and len(match.group(3)) == 1:  # top level: one space of indent
            rows.append({"module": match.group(4), "cumulative_s": int(match.group(2)) / 1e6})
    return sorted(rows, key=lambda r: -r["cumulative_s"])[:count]


def print_profile(found: dict[str, Any]) -> None:
    for kind, p in found.items():
        print(f"\n{kind}: profiled run {p['profiled_total_s']:.3f} s ({p['profile']})")
        print(f"  {'cum s':>7} {'own s':>7} {'calls':>7}  function (in vibepiper/)")
        for row in p["top_cumulative_in_vibepiper"][:15]:
            print(
                f"  {row['cumulative_s']:7.3f} {row['own_s']:7.3f} {row['calls']:7d}  "
                f"{row['function']}"
            )
        print(f"  slowest top-level imports ({p['importtime']}):")
        for row in p["top_imports"][:8]:
            print(f"  {row['cumulative_s']:7.3f}  {row['module']}")


# -- report ------------------------------------------------------------------------------


def environment_here() -> dict[str, Any]:
    return environment(
        PACKAGES,
        pythonpath=os.environ.get("PYTHONPATH"),
        parent_had_PYTHONDONTWRITEBYTECODE=bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
        children_cache_bytecode=True,
    )


def print_table(results: dict[str, dict[str, Any]], derived: list[dict[str, Any]]) -> None:
    print(
        f"{'name':<18} {'median s':>9} {'min s':>8} {'max s':>8} {'floor s':>8} {'ratio':>7}  floor"
    )
    for name, r in results.items():
        ref = r["floor"]
        floor = "-" if ref is None else f"{r['floor_median_s']:.3f}"
        ratio = "-" if ref is None else f"{r['ratio_to_floor']:.2f}"
        flag = "  (disturbed)" if r["disturbed_runs"] else ""
        print(
            f"{name:<18} {r['median_s']:>9.3f} {r['min_s']:>8.3f} {r['max_s']:>8.3f} "
            f"{floor:>8} {ratio:>7}  {ref or ''}{flag}"
        )
    for d in derived:
        n = d["assets"]
        goal = d.get("goal_noop_minus_import_met")
        print(
            f"\n{n} assets ({d['roots']} roots, {d['layers']} layers, {d['edges']} edges): "
            f"cold / floor {d['cold_over_floor']:.2f}, per-asset overhead "
            f"{d['per_asset_overhead_s'] * 1000:.1f} ms "
            f"({d['per_asset_overhead_over_durable_floor_s'] * 1000:.1f} ms over the durable floor)"
        )
        print(
            f"  no-op - import floor {d['noop_minus_import_s']:.3f} s"
            + (
                ""
                if goal is None
                else f" (goal <= {GOAL_NOOP_MINUS_IMPORT_S} s: {'met' if goal else 'NOT met'})"
            )
            + f"; no-op / cold {d['noop_over_cold']:.3f} (goal <= {GOAL_NOOP_OVER_COLD}: "
            f"{'met' if d['goal_noop_over_cold_met'] else 'NOT met'})"
        )
        print(
            f"  {d['changed_root']} changed: succeeded {d['changed_succeeded']} "
            f"(expected {d['changed_expected_succeeded']}), "
            f"changed / cold {d['changed_over_cold']:.2f}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--assets",
        type=size_list,
        help="comma-separated graph sizes (default 50,200; 50 with --quick)",
    )
    parser.add_argument("--repeat", type=int, help="timed runs of each (default 5; 1 with --quick)")
    parser.add_argument("--json", type=Path, help="default: bench/results/graph-<time>.json")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="also profile (cProfile, -X importtime) one cold and one no-op run of the largest "
        "project, saving the files in DIR",
    )
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
    args.assets = args.assets or ([50] if args.quick else [50, 200])
    args.repeat = args.repeat or (1 if args.quick else 5)
    if args.repeat < 1 or not args.assets or min(args.assets) < 1:
        parser.error("need --repeat >= 1 and --assets sizes >= 1")
    return args


def main() -> None:
    args = parse_args()
    session = Session("graph")
    results: dict[str, dict[str, Any]] = {}
    derived: list[dict[str, Any]] = []
    profiled = None
    with workspace("vp-graph-", args.keep) as (base, log):
        for n in args.assets:
            print(f"{n} assets:", file=sys.stderr, flush=True)
            folder = base / f"graph-{n}"
            if args.keep:
                shutil.rmtree(folder, ignore_errors=True)
            project = write_project(folder, n)
            done = bench_project(project, args.repeat, log, args.quick)
            results.update(done["results"])
            derived.append(done["derived"])
            if args.profile and n == max(args.assets):
                profiled = profile(project, args.profile, log)
    session.end()
    print_table(results, derived)
    if profiled:
        print_profile(profiled)
    print()
    settings = {
        "assets": args.assets,
        "repeat": args.repeat,
        "quick": args.quick,
        "rows_per_frame": ROWS,
        "environment": environment_here(),
    }
    report = session.report(
        settings,
        {
            "load_average_1_5_15min": os.getloadavg(),
            "results": results,
            "derived": {str(d["assets"]): d for d in derived},
            "profile": profiled,
        },
    )
    session.save(report, args.json)


if __name__ == "__main__":
    main()
