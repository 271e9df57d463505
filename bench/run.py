"""Every benchmark, one table: each figure's median, min-max, floor, ratio and goal.

    .venv/bin/python bench/run.py                      # the full suite, 30-35 minutes on 2 cores
    .venv/bin/python bench/run.py --quick              # a smoke test, about 2 minutes
    .venv/bin/python bench/run.py --only graph --only memory
    .venv/bin/python bench/run.py --compare bench/results/run-<time>.json
    .venv/bin/python bench/run.py --show NEW.json --compare OLD.json   # no run

Each benchmark is its own script, run as a child process (`python bench/<name>.py ...
--json <temporary file>`); its report is read back, turned into rows (figures.py) and kept
whole in one JSON (default `bench/results/run-<UTC time>.json`). A benchmark that crashes
is reported and makes the exit status 1; a goal not met does not. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import PYTHON, git_state, machine, package_dir, save_report
from figures import ROWS as FIGURE_ROWS
from figures import Row, render
from figures import notes as figure_notes
from s3 import s3_notes, s3_rows

BENCH_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Benchmark:
    name: str
    full: tuple[str, ...]  # the script's options for the full suite
    quick: tuple[str, ...]  # ... and for --quick


BENCHMARKS = (
    Benchmark("graph", ("--assets", "50,200", "--repeat", "5"), ("--quick", "--repeat", "2")),
    Benchmark(
        "validation",
        ("--rows", "5000000", "--repeat", "5"),
        ("--rows", "500000", "--repeat", "2", "--only", "vibepiper", "--only", "duckdb_pandas"),
    ),
    Benchmark("data_version", ("--rows", "5000000", "--repeat", "5"), ("--rows", "500000")),
    Benchmark(
        "memory", ("--rows", "5000000", "--repeat", "3"), ("--rows", "500000", "--repeat", "1")
    ),
    Benchmark("executors", (), ("--quick",)),
    Benchmark("scale", ("--assets", "1000,4000,20000", "--repeat", "3"), ("--quick",)),
    Benchmark("automation", ("--ticks", "30", "--idle", "30"), ("--quick",)),
    Benchmark("ui", ("--assets", "2000", "--history", "50", "--repeat", "30"), ("--quick",)),
    Benchmark(
        "partitions",
        ("--days", "365", "--hours", "10000,30000,100000", "--repeat", "3"),
        ("--quick",),
    ),
    Benchmark("sql", ("--rows", "1000000,10000000", "--repeat", "3"), ("--quick",)),
    Benchmark("s3", ("--assets", "200", "--repeat", "5"), ("--quick",)),
)
NAMES = tuple(b.name for b in BENCHMARKS)
# Each benchmark's report -> its rows: figures.py's, and s3.py's own (kept with its script).
ROWS = {**FIGURE_ROWS, "s3": s3_rows}


def notes(name: str, report: dict[str, Any]) -> list[str]:
    """A line or two of derived figures the table has no column for."""
    return s3_notes(report) if name == "s3" else figure_notes(name, report)


@dataclass
class Outcome:
    """What one benchmark's script left: its report (None if it crashed) and its output."""

    report: dict[str, Any] | None
    output: str
    elapsed_s: float
    error: str | None = None


def run_script(bench: Benchmark, quick: bool, tmp: Path) -> Outcome:
    """Run bench/<name>.py in a child; its progress goes to our stderr, its table is kept."""
    out = tmp / f"{bench.name}.json"
    cmd = [PYTHON, str(BENCH_DIR / f"{bench.name}.py"), *(bench.quick if quick else bench.full)]
    print(f"== {bench.name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    done = subprocess.run(
        [*cmd, "--json", str(out)], stdout=subprocess.PIPE, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        error = f"exited {done.returncode}"
        return Outcome(None, done.stdout, elapsed, error)
    return Outcome(json.loads(out.read_text()), done.stdout, elapsed)


def rows_of(name: str, outcome: Outcome) -> tuple[list[Row], list[str]]:
    """The benchmark's rows and notes; a report that cannot be read counts as a crash."""
    if outcome.report is None:
        return [], []
    try:
        return ROWS[name](outcome.report), notes(name, outcome.report)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        outcome.error = f"its report could not be read: {exc!r}"
        return [], []


def busy_note(outcomes: dict[str, Outcome]) -> str | None:
    shares = {
        name: o.report.get("other_processes_cpu_share")
        for name, o in outcomes.items()
        if o.report is not None
    }
    busy = {name: s for name, s in shares.items() if s is not None and s > 0.10}
    if not busy:
        return None
    listed = ", ".join(f"{name} {share:.0%}" for name, share in busy.items())
    return f"the machine was busy: other processes used {listed} of it (times are off)"


def print_table(saved: dict[str, Any], old: dict[str, Any] | None) -> None:
    rows = [Row.from_json(r) for r in saved["rows"]]
    old_rows = None
    if old is not None:
        old_rows = {r["key"]: Row.from_json(r) for r in old["rows"]}
    print(render(rows, old_rows))
    print()
    for line in saved["notes"]:
        print(line)
    if any(not r.judged and r.met is not None for r in rows):
        print("(verdict): the goal's configuration is larger; an indicative verdict only")
    if old is not None:
        print(f"old: {_described(old)}")
        print(f"new: {_described(saved)}")


def _described(saved: dict[str, Any]) -> str:
    git = saved["git"]
    dirty = " with local edits" if git.get("dirty") else ""
    mode = "--quick" if saved["quick"] else "full"
    return f"{saved['started']}, {mode}, commit {git.get('commit', '')[:9]}{dirty}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = dt.datetime.now(dt.UTC)
    wall = time.perf_counter()
    git = git_state(package_dir())
    chosen = [b for b in BENCHMARKS if b.name in (args.only or NAMES)]
    outcomes: dict[str, Outcome] = {}
    rows: list[Row] = []
    found_notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vp-run-") as tmp:
        for bench in chosen:
            outcome = outcomes[bench.name] = run_script(bench, args.quick, Path(tmp))
            more_rows, more_notes = rows_of(bench.name, outcome)
            rows += more_rows
            found_notes += more_notes
    busy = busy_note(outcomes)
    failed = {name: o.error for name, o in outcomes.items() if o.error}
    git_after = git_state(package_dir())
    found_notes += [busy] if busy else []
    if git_after != git:
        found_notes.append("vibepiper's files changed during the run: the figures mix two versions")
    found_notes += [f"FAILED: {name}: {error}" for name, error in failed.items()]
    return {
        "benchmark": "run",
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": time.perf_counter() - wall,
        "quick": args.quick,
        "benchmarks": [b.name for b in chosen],
        "environment": {**machine(), "pythonpath": os.environ.get("PYTHONPATH")},
        "git": git,
        "git_after": git_after,
        "rows": [r.as_json() for r in rows],
        "notes": found_notes,
        "failed": failed,
        "reports": {name: o.report for name, o in outcomes.items()},
        "outputs": {name: o.output for name, o in outcomes.items()},
        "elapsed_per_benchmark_s": {name: o.elapsed_s for name, o in outcomes.items()},
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small, fast configuration")
    parser.add_argument(
        "--only", action="append", choices=NAMES, help="run only this one (repeatable)"
    )
    parser.add_argument("--json", type=Path, help="default: bench/results/run-<time>.json")
    parser.add_argument(
        "--compare", type=Path, metavar="OLD", help="add OLD's medians and new/old per figure"
    )
    parser.add_argument(
        "--show", type=Path, metavar="FILE", help="print the table of a saved run; run nothing"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    old = json.loads(args.compare.read_text()) if args.compare else None
    if args.show:
        print_table(json.loads(args.show.read_text()), old)
        return
    saved = run(args)
    for name, error in saved["failed"].items():
        tail = saved["outputs"][name][-3000:] or "(none: its errors are above, on stderr)"
        print(f"\n{name} FAILED ({error}); the end of its output:\n{tail}", file=sys.stderr)
    print()
    print_table(saved, old)
    started = dt.datetime.fromisoformat(saved["started"])
    print(f"saved {save_report(saved, 'run', args.json, started)}")
    if saved["failed"]:
        sys.exit(f"FAILED: {', '.join(saved['failed'])}")


if __name__ == "__main__":
    main()
