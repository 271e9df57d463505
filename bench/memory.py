"""Benchmark: peak memory of `vibepiper materialize` of one 5,000,000-row asset.

    .venv/bin/python bench/memory.py [--rows 5000000] [--repeat 3] [--json PATH] [--keep DIR]

It writes a project of one asset, `orders`, which builds validation.py's frame
(`orders.build_frame`) and carries the same five checks, and measures the peak RSS of
whole processes (from `wait4`, as each exits; median, min and max of K runs after one
untimed warm-up):

- `materialize`: `vibepiper materialize` of the project, its `.vibepiper` removed before
  each run: compute, validate, write the Parquet file, record the catalog;
- `floor`: a plain script that imports what `import` imports, builds the same frame and
  writes it with `pyarrow.parquet.write_table`;
- `import`: `python -c "import pandas, pyarrow.parquet, duckdb"`, the libraries' baseline.

The figure for the goal: (peak RSS of `materialize` - median peak RSS of `import`) / the
frame's size (`frame.memory_usage(deep=True).sum()`), at most 2.5. See bench/README.md.

This script imports no library and does not build the frame itself: Linux carries a
process's peak RSS over to the child it starts (`ru_maxrss` survives `exec`, and a child
made by `vfork`, as subprocess does, starts from its parent's high-water mark), so a big
parent would raise every child's figure to its own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import (
    BUSY_SHARE,
    PYTHON,
    VIBEPIPER,
    Measure,
    Session,
    environment,
    interleaved,
    json_of,
    save_report,
)
from graph import IMPORT_FLOOR, status_counts

BENCH_DIR = Path(__file__).resolve().parent
MIB = 1024 * 1024
GOAL_OVER_FRAME = 2.5  # (peak RSS of materialize - the import baseline) / the frame's size
PACKAGES = ("vibepiper", "numpy", "pandas", "pyarrow", "duckdb", "pandera")

ASSETS = """\
import pandas as pd
from orders import build_frame, checks

from vibepiper import asset

ROWS = {rows}


@asset(checks=checks())
def orders() -> pd.DataFrame:
    return build_frame(ROWS)
"""

# It imports duckdb too, unused, so that floor - import is what the data costs.
FLOOR = """\
import sys

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from orders import build_frame

frame = build_frame(int(sys.argv[1]))
pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sys.argv[2])
"""

FRAME_SIZE = """\
import json
import sys

from orders import build_frame

usage = build_frame(int(sys.argv[1])).memory_usage(deep=True, index=True)
print(json.dumps({**{str(k): int(v) for k, v in usage.items()}, "total": int(usage.sum())}))
"""


def write_project(root: Path, rows: int) -> None:
    """pyproject.toml, the assets module, floor.py, frame_size.py and a copy of orders.py
    (which the three import), in `root`."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "memory-bench"\nversion = "0"\n\n'
        '[tool.vibepiper]\nmodules = ["memory_assets"]\n'
    )
    (root / "memory_assets.py").write_text(ASSETS.format(rows=rows))
    (root / "floor.py").write_text(FLOOR)
    (root / "frame_size.py").write_text(FRAME_SIZE)
    shutil.copy(BENCH_DIR / "orders.py", root / "orders.py")


def frame_size(root: Path, rows: int) -> dict[str, int]:
    """The frame's bytes in memory, per column and in all (`memory_usage(deep=True)`).

    Measured in a child: this process must stay small (see the module's docstring).
    """
    size: dict[str, int] = json_of([PYTHON, "frame_size.py", str(rows)], root, "frame_size.py")
    return size


def measure(root: Path, rows: int, repeat: int, log: Path) -> dict[str, dict[str, Any]]:
    def clear_home() -> None:
        shutil.rmtree(root / ".vibepiper", ignore_errors=True)

    measures = [
        Measure("import", [PYTHON, "-c", IMPORT_FLOOR], root),
        Measure("floor", [PYTHON, "floor.py", str(rows), "floor.parquet"], root),
        Measure(
            "materialize",
            [VIBEPIPER, "materialize"],
            root,
            prepare=clear_home,
            after=lambda: status_counts(root),
        ),
    ]
    # Memory does not suffer from a busy machine as time does: no waiting, one try each.
    interleaved(measures, repeat, log, quick=True)
    found = {m.name: m.summary() for m in measures}
    found["materialize"]["states"] = measures[-1].extras
    return found


def derive(results: dict[str, dict[str, Any]], frame_bytes: int) -> dict[str, Any]:
    """Per process: its peak RSS beyond the import baseline, in MiB and over the frame."""
    baseline = statistics.median(results["import"]["peak_rss_mib_runs"])
    frame_mib = frame_bytes / MIB
    derived: dict[str, Any] = {"baseline_mib": baseline, "frame_mib": frame_mib}
    for name in ("floor", "materialize"):
        extra = [p - baseline for p in results[name]["peak_rss_mib_runs"]]
        derived[name] = {
            "peak_rss_mib": statistics.median(results[name]["peak_rss_mib_runs"]),
            "extra_mib": statistics.median(extra),
            "extra_min_mib": min(extra),
            "extra_max_mib": max(extra),
            "over_frame": statistics.median(extra) / frame_mib,
            "wall_s": results[name]["median_s"],
        }
    derived["materialize_over_floor"] = (
        derived["materialize"]["extra_mib"] / derived["floor"]["extra_mib"]
    )
    derived["goal_over_frame"] = GOAL_OVER_FRAME
    derived["goal_met"] = derived["materialize"]["over_frame"] <= GOAL_OVER_FRAME
    states = results["materialize"]["states"]
    derived["all_succeeded"] = all(s == {"succeeded": 1} for s in states)
    return derived


def print_table(results: dict[str, dict[str, Any]], d: dict[str, Any], rows: int) -> None:
    print(f"{rows:,} rows; the frame: {d['frame_mib']:.0f} MiB (memory_usage(deep=True))")
    print(
        f"{'name':<12} {'peak MiB':>9} {'min-max MiB':>12} {'- import MiB':>13} "
        f"{'/ frame':>8} {'wall s':>7}"
    )
    for name, r in results.items():
        peaks = r["peak_rss_mib_runs"]
        extra, ratio = "-", "-"
        if name in d and isinstance(d[name], dict):
            extra, ratio = f"{d[name]['extra_mib']:.0f}", f"{d[name]['over_frame']:.2f}"
        print(
            f"{name:<12} {statistics.median(peaks):>9.0f} "
            f"{f'{min(peaks):.0f}-{max(peaks):.0f}':>12} {extra:>13} {ratio:>8} "
            f"{r['median_s']:>7.2f}"
        )
    verdict = "met" if d["goal_met"] else "NOT met"
    print(
        f"(materialize - import) / frame: {d['materialize']['over_frame']:.2f} "
        f"(goal <= {GOAL_OVER_FRAME}: {verdict}); over the floor's: "
        f"{d['materialize_over_floor']:.2f}x"
    )
    if not d["all_succeeded"]:
        print(f"WARNING: a materialize run did not succeed: {results['materialize']['states']}")


def environment_here() -> dict[str, Any]:
    return environment(PACKAGES)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="default: bench/results/memory-<time>.json")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="write the project in DIR (replaced) and keep it"
    )
    args = parser.parse_args()
    if args.rows < 1 or args.repeat < 1:
        parser.error("need --rows >= 1 and --repeat >= 1")
    return args


def main() -> None:
    args = parse_args()
    session = Session("memory")
    with tempfile.TemporaryDirectory(prefix="vp-memory-") as tmp:
        root = args.keep or Path(tmp) / "project"
        if args.keep:
            shutil.rmtree(root, ignore_errors=True)
        write_project(root, args.rows)
        size = frame_size(root, args.rows)
        results = measure(root, args.rows, args.repeat, Path(tmp) / "last-command.log")
    derived = derive(results, size["total"])
    session.end()
    others = session.others
    print_table(results, derived, args.rows)
    if others is not None and others > BUSY_SHARE:
        print(f"note: other processes used {others:.0%} of the machine (times, not memory)")
    settings = {
        "rows": args.rows,
        "repeat": args.repeat,
        "frame_bytes": size,
        "environment": environment_here(),
        "pythonpath": os.environ.get("PYTHONPATH"),
    }
    report = session.report(settings, {"results": results, "derived": derived})
    out = save_report(report, "memory", args.json, session.started)
    print(f"saved {out}")
    if not derived["all_succeeded"]:
        sys.exit("FAILED: a materialize run did not succeed")


if __name__ == "__main__":
    main()
