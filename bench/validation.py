"""Benchmark: VibePiper's built-in checks against the DuckDB floor and pandera.

    .venv/bin/python bench/validation.py [--rows N] [--repeat K] [--json PATH]

Five checks on one deterministic frame (not-null, unique, range, accepted values, row
count), timed in-process with `time.perf_counter` (one warm-up, then K runs; median and
min). See bench/README.md for what each figure means and the goal.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pandera
import pandera.pandas as pa
import pyarrow
import pyarrow.parquet as pq
from common import BUSY_SHARE, OtherCpu, git_state, machine, save_report, time_runs
from orders import AMOUNT_MAX, AMOUNT_MIN, STATUSES, build_frame, checks

import vibepiper
from vibepiper import engine
from vibepiper.validation.validate import validate

PACKAGE_DIR = Path(vibepiper.__file__).resolve().parent  # the code measured (see PYTHONPATH)
BENCHMARKS = ("vibepiper", "duckdb_pandas", "duckdb_arrow", "duckdb_parquet", "pandera")
FLOOR = "duckdb_pandas"
Runner = Callable[[], dict[str, int]]  # one timed run; returns the five answers
ANSWERS = ("null_ids", "duplicate_id_rows", "amount_out_of_range", "status_not_accepted", "rows")

# The floor: the same five answers in one statement. Values are bound, never formatted in.
FLOOR_SQL = """
WITH dup AS (SELECT count(*) AS n FROM data GROUP BY id HAVING count(*) > 1)
SELECT
    count(*) FILTER (WHERE id IS NULL) AS null_ids,
    (SELECT coalesce(sum(n), 0) FROM dup) AS duplicate_id_rows,
    count(*) FILTER (WHERE amount < $min OR amount > $max) AS amount_out_of_range,
    count(*) FILTER (WHERE NOT list_contains($values, status)) AS status_not_accepted,
    count(*) AS rows
FROM data
"""


def _vibepiper_runner(frame: pd.DataFrame) -> Runner:
    @vibepiper.asset(checks=checks())
    def orders() -> pd.DataFrame:
        return frame

    def upstream(name: str) -> pd.DataFrame:
        raise AssertionError(f"no upstream asset expected, asked for {name!r}")

    def run() -> dict[str, int]:
        result = validate(orders, (), frame, upstream)
        counts = [o.failing_rows for o in result.outcomes]
        return dict(zip(ANSWERS, [*counts[:4], len(result.frame)], strict=True))

    return run


def _duckdb_runner(source: Any) -> Runner:
    con = engine.connect()
    con.register("data", source)  # a view over the object: DuckDB scans it in place
    params = {"min": AMOUNT_MIN, "max": AMOUNT_MAX, "values": STATUSES}

    def run() -> dict[str, int]:
        (row,) = con.execute(FLOOR_SQL, params).fetchall()
        return dict(zip(ANSWERS, (int(v) for v in row), strict=True))

    return run


def _duckdb_parquet_runner(path: Path) -> Runner:
    con = engine.connect()
    con.read_parquet(str(path)).create_view("data")  # read afresh on every query
    params = {"min": AMOUNT_MIN, "max": AMOUNT_MAX, "values": STATUSES}

    def run() -> dict[str, int]:
        (row,) = con.execute(FLOOR_SQL, params).fetchall()
        return dict(zip(ANSWERS, (int(v) for v in row), strict=True))

    return run


def _pandera_runner(frame: pd.DataFrame) -> Runner:
    schema = pa.DataFrameSchema(
        {
            "id": pa.Column(nullable=False, unique=True),
            "amount": pa.Column(checks=pa.Check.in_range(AMOUNT_MIN, AMOUNT_MAX), nullable=True),
            "status": pa.Column(checks=pa.Check.isin(STATUSES), nullable=True),
        },
        checks=pa.Check(lambda df: len(df) >= 1, name="row_count"),
    )

    def run() -> dict[str, int]:
        counts = dict.fromkeys(ANSWERS, 0)
        counts["rows"] = len(frame)
        try:
            schema.validate(frame, lazy=True)
        except pandera.errors.SchemaErrors as exc:
            cases = exc.failure_cases
            for column, check, key in (
                ("id", "not_nullable", "null_ids"),
                ("id", "field_uniqueness", "duplicate_id_rows"),
                ("amount", "in_range", "amount_out_of_range"),
                ("status", "isin", "status_not_accepted"),
            ):
                hit = (cases["column"] == column) & cases["check"].astype(str).str.startswith(check)
                counts[key] = int(hit.sum())
        return counts

    return run


def measure(make: Callable[[], Runner], repeat: int) -> dict[str, Any]:
    memory = Memory()
    answers, times = time_runs(make(), repeat)  # the warm-up's answers
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "times_s": times,
        "answers": answers,
        **memory.report(),
    }


class Memory:
    """Peak RSS over one benchmark, from a reset high-water mark (Linux `clear_refs` 5).

    Without the reset, the peak of building the frame would hide every tool's own peak.
    `extra_rss_mib` is that peak minus the RSS when the benchmark began (the data it shares).
    """

    process_peak_mib = 0.0  # the reset also resets getrusage's figure: keep the maximum

    def __init__(self) -> None:
        Memory.note_process_peak()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.start = _proc_status_mib("VmRSS")
        except OSError:
            self.start = None

    def report(self) -> dict[str, float | None]:
        Memory.note_process_peak()
        peak = _proc_status_mib("VmHWM") if self.start is not None else None
        extra = peak - self.start if peak is not None and self.start is not None else None
        return {"peak_rss_mib": peak, "extra_rss_mib": extra}

    @classmethod
    def note_process_peak(cls) -> float:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        cls.process_peak_mib = max(cls.process_peak_mib, peak)
        return cls.process_peak_mib


def _proc_status_mib(key: str) -> float | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB
    return None


def git_commit() -> dict[str, Any]:
    """Which vibepiper was measured: its folder, commit, and whether it had local edits."""
    state = git_state(PACKAGE_DIR)
    dirty = state["dirty"] if state["commit"] else None  # None outside a git checkout
    return {"package": state["package"], "commit": state["commit"], "dirty": dirty}


def environment() -> dict[str, Any]:
    return {
        **machine(),
        "versions": {
            "vibepiper": vibepiper.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "pyarrow": pyarrow.__version__,
            "duckdb": duckdb.__version__,
            "pandera": pandera.__version__,
        },
        "git": git_commit(),
    }


def run_all(args: argparse.Namespace, workdir: Path) -> dict[str, dict[str, Any]]:
    frame = build_frame(args.rows, args.violations)
    arrow = pyarrow.Table.from_pandas(frame, preserve_index=False)  # a copy; NaN becomes null
    path = workdir / "orders.parquet"
    pq.write_table(arrow, path)
    runners: dict[str, Callable[[], Runner]] = {
        "vibepiper": lambda: _vibepiper_runner(frame),
        "duckdb_pandas": lambda: _duckdb_runner(frame),
        "duckdb_arrow": lambda: _duckdb_runner(arrow),
        "duckdb_parquet": lambda: _duckdb_parquet_runner(path),
        "pandera": lambda: _pandera_runner(frame),
    }
    results = {}
    for name in args.only or BENCHMARKS:
        print(f"  {name} ...", file=sys.stderr, flush=True)
        results[name] = measure(runners[name], args.repeat)
    floor = results.get(FLOOR)
    for result in results.values():
        result["ratio_to_floor"] = result["median_s"] / floor["median_s"] if floor else None
    return results


def print_table(results: dict[str, dict[str, Any]], peak: float, others: float | None) -> None:
    print(f"{'name':<16} {'median s':>9} {'min s':>8} {'x floor':>8} {'peak MiB':>9} {'+MiB':>6}")
    for name, r in results.items():
        ratio = "-" if r["ratio_to_floor"] is None else f"{r['ratio_to_floor']:.2f}"
        mem = "-" if r["peak_rss_mib"] is None else f"{r['peak_rss_mib']:.0f}"
        extra = "-" if r["extra_rss_mib"] is None else f"{r['extra_rss_mib']:.0f}"
        print(f"{name:<16} {r['median_s']:>9.3f} {r['min_s']:>8.3f} {ratio:>8} {mem:>9} {extra:>6}")
    print(f"peak RSS of the process: {peak:.0f} MiB")
    if others is not None:
        print(f"CPU used by other processes during the run: {others:.0%} of the machine")
    if others is not None and others > BUSY_SHARE:
        print(
            "WARNING: the machine was busy; DuckDB (all cores) suffers more than pandas "
            "(one core), so the ratios are off. Rerun on a quiet machine.",
            file=sys.stderr,
        )
    answers = {json.dumps(r["answers"], sort_keys=True) for r in results.values()}
    if len(answers) > 1:
        print("WARNING: the tools disagree on the answers:", file=sys.stderr)
        for name, r in results.items():
            print(f"  {name}: {r['answers']}", file=sys.stderr)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="default: bench/results/validation-<time>.json")
    parser.add_argument(
        "--violations",
        type=int,
        default=0,
        help="rows breaking each of unique, in_range and accepted_values (default 0: clean)",
    )
    parser.add_argument(
        "--only", action="append", choices=BENCHMARKS, help="run only this one (repeatable)"
    )
    args = parser.parse_args()
    if args.rows < 1 or args.repeat < 1 or not 0 <= 3 * args.violations <= args.rows:
        parser.error("need --rows >= 1, --repeat >= 1 and 0 <= 3 * --violations <= --rows")
    return args


def main() -> None:
    args = parse_args()
    started = dt.datetime.now(dt.UTC)
    cpu = OtherCpu()
    with tempfile.TemporaryDirectory(prefix="vp-bench-") as tmp:
        results = run_all(args, Path(tmp))
    peak = Memory.note_process_peak()
    others = cpu.share()
    print_table(results, peak, others)
    report = {
        "benchmark": "validation",
        "started": started.isoformat(timespec="seconds"),
        "rows": args.rows,
        "repeat": args.repeat,
        "violations": args.violations,
        "floor": FLOOR,
        "environment": environment(),
        "peak_rss_mib": peak,
        "other_processes_cpu_share": others,
        "load_average_1_5_15min": os.getloadavg(),
        "results": results,
    }
    out = save_report(report, "validation", args.json, started)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
