"""Benchmark: partitioned assets (SPEC §7): a 365-day backfill against a plain script, and
`partitions`, `status` and planning of 100,000 hourly partitions.

    .venv/bin/python bench/partitions.py [--days 365] [--hours 10000,30000,100000] [--repeat 3]
    .venv/bin/python bench/partitions.py --only hourly --hours 100000 --json PATH
    .venv/bin/python bench/partitions.py --quick     # a smoke test: 30 days, 2,000 and 5,000 hours

**Backfill.** A project of one partitioned source (`events`: one CSV file of `--rows` orders
per day), two daily partitioned assets (`daily_orders`: parse `ts`, drop non-positive
amounts, derive columns, checked with `expect.unique("order_id")` and `time_column="ts"`;
`daily_totals`: per-hour sums of the day) and one unpartitioned `rollup` that reads every
day of `daily_totals`. A cold `vibepiper materialize` (`.vibepiper` removed before each run)
is timed against a plain pandas + pyarrow script doing the same work (the same function
bodies, both checks, one Parquet file per day per asset plus the rollup); the per-partition
overhead is (cold - floor) / (3 x days). Then a no-op `materialize` (everything fresh)
against the import floor.

**Hourly.** For each size H, an asset `readings` with `hourly(start="2015-01-01", end=<H
hours later>)` returning a constant 3-row frame. One partition is materialized for real;
the catalog then gets a copy of that materialization row for every other key (with DuckDB),
so all H partitions are fresh and share the one stored file. Timed: `vibepiper partitions
readings`, `vibepiper status`, `vibepiper materialize --dry-run` and a no-op `vibepiper
materialize readings`; and, in a second project where nothing was ever materialized,
`partitions` and `--dry-run`. Then how each figure grows with H (least-squares slope in µs
per partition).

Every figure is a whole process (common.py's Measure/interleaved: wall time and peak RSS,
median, min and max of --repeat runs after an untimed warm-up). See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    PYTHON,
    VIBEPIPER,
    CommandFailed,
    Measure,
    Session,
    add_run_options,
    failure_noted,
    finish,
    interleaved,
    query_catalog,
    run_process,
    size_list,
    workspace,
)
from figures import partitions_notes, partitions_rows, render
from graph import IMPORT_FLOOR, write_floor_launcher
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

PACKAGES = ("vibepiper", "numpy", "pandas", "pyarrow", "duckdb", "click", "rich")
FIRST_DAY = dt.date(2025, 1, 1)  # whole days in the past, so every day is a partition
FIRST_HOUR = dt.datetime(2015, 1, 1)
KEY_FORMAT = "%Y-%m-%d-%H:%M"  # an hourly partition's key
PARTITIONED_ASSETS = 3  # events, daily_orders, daily_totals: the units per day
TIMEOUT_S = 1800.0  # one process
PYPROJECT = (
    '[project]\nname = "{name}"\nversion = "0"\n\n[tool.vibepiper]\nmodules = ["pipeline"]\n'
)
WHAT = ("backfill", "hourly")  # what --only chooses from
# figure -> its unit, for the growth with H (medians of each size)
SLOPE_FIGURES = {
    "partitions": "s",
    "status": "s",
    "dryrun": "s",
    "noop": "s",
    "partitions_missing": "s",
    "dryrun_missing": "s",
    "rss_partitions": "MiB",
    "rss_status": "MiB",
    "rss_dryrun": "MiB",
    "rss_noop": "MiB",
    "rss_partitions_missing": "MiB",
    "rss_dryrun_missing": "MiB",
}


# -- the backfill project ----------------------------------------------------------------

# The work of each asset, shared to the letter by the assets and the plain script.
WORK = """

def orders_of(events: pd.DataFrame, day: str) -> pd.DataFrame:
    df = events.assign(ts=pd.to_datetime(events["ts"], utc=True))
    df = df[df["amount"] > 0]
    return df.assign(
        day=day, hour=df["ts"].dt.hour, net=(df["amount"] * 0.8).round(2)
    ).reset_index(drop=True)


def totals_of(orders: pd.DataFrame) -> pd.DataFrame:
    return orders.groupby(["day", "hour"], as_index=False).agg(
        orders=("order_id", "count"), amount=("amount", "sum"), net=("net", "sum")
    )


def rollup_of(totals: pd.DataFrame) -> pd.DataFrame:
    by_day = totals.groupby("day", as_index=False).agg(
        orders=("orders", "sum"), amount=("amount", "sum"), net=("net", "sum")
    )
    return by_day.assign(share=by_day["amount"] / by_day["amount"].sum())
"""

PIPELINE = """\
import pandas as pd

from vibepiper import Context, asset, daily, expect, source_file

DAYS = daily(start="{start}", end="{end}")

events = source_file("events", "data/events/{{partition}}.csv", partitions=DAYS)
{work}

@asset(partitions=DAYS, time_column="ts", checks=[expect.unique("order_id")])
def daily_orders(events: pd.DataFrame, context: Context) -> pd.DataFrame:
    return orders_of(events, context.partition.key)


@asset(partitions=DAYS)
def daily_totals(daily_orders: pd.DataFrame) -> pd.DataFrame:
    return totals_of(daily_orders)


@asset
def rollup(daily_totals: pd.DataFrame) -> pd.DataFrame:
    return rollup_of(daily_totals)
"""

FLOOR = '''\
import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

START = "{start}"
DAYS = {days}
{work}

def write(frame: pd.DataFrame, path: Path) -> None:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def main(argv: list[str]) -> None:
    """Every day: read its CSV, compute its orders, check them (order_id unique, ts in the
    day), its totals; one Parquet file per day per asset; then the rollup of all totals."""
    out = Path(argv[0])
    for name in ("events", "daily_orders", "daily_totals"):
        (out / name).mkdir(parents=True, exist_ok=True)
    first = dt.date.fromisoformat(START)
    totals = []
    for i in range(DAYS):
        day = (first + dt.timedelta(days=i)).isoformat()
        start = pd.Timestamp(day, tz="UTC")
        end = start + pd.Timedelta(days=1)
        events = pd.read_csv(f"data/events/{{day}}.csv")
        write(events, out / "events" / f"{{day}}.parquet")
        orders = orders_of(events, day)
        if orders.duplicated(["order_id"], keep=False).any():
            raise SystemExit(f"{{day}}: order_id not unique")
        if not ((orders["ts"] >= start) & (orders["ts"] < end)).all():
            raise SystemExit(f"{{day}}: ts outside the day")
        write(orders, out / "daily_orders" / f"{{day}}.parquet")
        day_totals = totals_of(orders)
        write(day_totals, out / "daily_totals" / f"{{day}}.parquet")
        totals.append(day_totals)
    write(rollup_of(pd.concat(totals, ignore_index=True)), out / "rollup.parquet")
'''

MAKE_EVENTS = '''\
"""python make_events.py DAYS ROWS: data/events/<day>.csv, ROWS orders a day."""
import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd

days, rows = int(sys.argv[1]), int(sys.argv[2])
folder = Path("data/events")
folder.mkdir(parents=True, exist_ok=True)
first = dt.date.fromisoformat("{start}")
for i in range(days):
    day = first + dt.timedelta(days=i)
    rng = np.random.default_rng(i)
    seconds = np.sort(rng.integers(0, 86_400, rows))
    ts = pd.Timestamp(day, tz="UTC") + pd.to_timedelta(seconds, unit="s")
    pd.DataFrame(
        {{
            "order_id": i * rows + rng.permutation(rows),
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "amount": rng.normal(50.0, 30.0, rows).round(2),
        }}
    ).to_csv(folder / f"{{day}}.csv", index=False)
'''


@dataclass
class Backfill:
    days: int
    root: Path

    @property
    def units(self) -> int:
        return PARTITIONED_ASSETS * self.days


def write_backfill(root: Path, days: int, rows: int, log: Path) -> Backfill:
    root.mkdir(parents=True)
    start, end = FIRST_DAY.isoformat(), (FIRST_DAY + dt.timedelta(days=days)).isoformat()
    (root / "pyproject.toml").write_text(PYPROJECT.format(name="partitions-backfill"))
    (root / "pipeline.py").write_text(PIPELINE.format(start=start, end=end, work=WORK))
    (root / "floor_work.py").write_text(FLOOR.format(start=start, days=days, work=WORK))
    write_floor_launcher(root)
    (root / "make_events.py").write_text(MAKE_EVENTS.format(start=start))
    print(f"  writing {days} CSV files of {rows:,} orders ...", file=sys.stderr, flush=True)
    run_process([PYTHON, "make_events.py", str(days), str(rows)], root, log, timeout_s=TIMEOUT_S)
    return Backfill(days, root)


def bench_backfill(project: Backfill, args: argparse.Namespace, log: Path) -> dict[str, Any]:
    d, root = project.days, project.root
    attempts = Attempts(root)
    patient = not args.no_wait
    floor, cold = cold_and_floor(root, f"{d}d", attempts, TIMEOUT_S)
    interleaved([floor, cold], args.repeat, log, args.quick, patient=patient)
    fresh = [
        Measure(f"import@{d}d", [PYTHON, "-c", IMPORT_FLOOR], root),
        Measure(f"noop@{d}d", [VIBEPIPER, "materialize"], root, after=attempts.since_last),
    ]
    interleaved(fresh, args.repeat, log, args.quick, patient=patient)
    results = summaries([floor, cold, *fresh])
    figures = figures_of(results)
    expected = {"cold": {"succeeded": project.units + 1}, "noop": {}}
    problems = attempted_problems(results, expected, f"{d}d", f"{d} days")
    cold_s, floor_s = figures["cold"]["median"], figures["floor"]["median"]
    derived = {
        "days": d,
        "rows_per_day": args.rows,
        "partitions": project.units,
        "figures": figures,
        "cold_over_floor": cold_s / floor_s,
        "overhead_ms_per_partition": (cold_s - floor_s) / project.units * 1000,
        "noop_minus_import_s": figures["noop"]["median"] - figures["import"]["median"],
        "disturbed": disturbed(results),
        "problems": problems,
    }
    for problem in problems:
        print(f"WARNING: {problem}", file=sys.stderr)
    return {"results": results, "derived": derived}


# -- the hourly projects -----------------------------------------------------------------

READINGS = """\
import pandas as pd

from vibepiper import asset, hourly


@asset(partitions=hourly(start="{start}", end="{end}"))
def readings() -> pd.DataFrame:
    return pd.DataFrame({{"sensor": [1, 2, 3], "value": [0.5, 1.5, 2.5]}})
"""

# Copies of the one real materialization, one per other key: every partition then points at
# the same content-addressed file (the store addresses data by its version).
FILL = '''\
"""python fill_catalog.py HOURS: a copy of readings' materialization for every other key."""
import datetime as dt
import sys

import duckdb
import pyarrow as pa

hours = int(sys.argv[1])
first = dt.datetime.fromisoformat("{start}")
keys = [(first + dt.timedelta(hours=i)).strftime("{key_format}") for i in range(1, hours)]
con = duckdb.connect(".vibepiper/catalog.duckdb")
con.register("kt", pa.table({{"key": keys}}))
con.execute(
    "INSERT INTO materializations SELECT m.* REPLACE (m.materialization_id || '-' || kt.key "
    "AS materialization_id, kt.key AS partition_key) FROM materializations m, kt "
    "WHERE m.asset = 'readings' AND m.status = 'succeeded'"
)
con.close()
'''
CURRENT_SQL = "select count(*) n from current_materializations where asset = 'readings'"


@dataclass
class Hourly:
    hours: int
    fresh: Path  # every partition materialized (one for real, the others as copies)
    missing: Path  # nothing ever materialized

    @property
    def end(self) -> dt.datetime:
        return FIRST_HOUR + dt.timedelta(hours=self.hours)


def write_hourly(root: Path, hours: int, log: Path) -> Hourly:
    project = Hourly(hours, root / "fresh", root / "missing")
    module = READINGS.format(start=f"{FIRST_HOUR:%Y-%m-%d}", end=f"{project.end:%Y-%m-%d %H:%M}")
    for folder in (project.fresh, project.missing):
        folder.mkdir(parents=True)
        (folder / "pyproject.toml").write_text(PYPROJECT.format(name="partitions-hourly"))
        (folder / "pipeline.py").write_text(module)
    (project.fresh / "fill_catalog.py").write_text(
        FILL.format(start=FIRST_HOUR.isoformat(), key_format=KEY_FORMAT)
    )
    first = f"{FIRST_HOUR:{KEY_FORMAT}}"
    print(f"  {hours:,} hours: materialize {first}, copy it ...", file=sys.stderr, flush=True)
    run_process([VIBEPIPER, "materialize", "readings", "--partition", first], project.fresh, log)
    run_process([PYTHON, "fill_catalog.py", str(hours)], project.fresh, log, timeout_s=TIMEOUT_S)
    run_process([VIBEPIPER, "status"], project.missing, log)  # creates its (empty) catalog
    for folder, want in ((project.fresh, hours), (project.missing, 0)):
        got = int(query_catalog(folder, CURRENT_SQL)[0]["n"])
        if got != want:
            raise CommandFailed(f"{folder}: {got} current partitions of readings, not {want}")
    return project


def bench_hourly(project: Hourly, args: argparse.Namespace, log: Path) -> dict[str, Any]:
    h, fresh, missing = project.hours, project.fresh, project.missing
    attempts = Attempts(fresh)
    attempts.from_scratch()
    measures = [
        Measure(f"import@{h}h", [PYTHON, "-c", IMPORT_FLOOR], fresh),
        Measure(f"partitions@{h}h", [VIBEPIPER, "partitions", "readings"], fresh),
        Measure(f"status@{h}h", [VIBEPIPER, "status"], fresh),
        Measure(f"dryrun@{h}h", [VIBEPIPER, "materialize", "--dry-run"], fresh),
        Measure(
            f"noop@{h}h", [VIBEPIPER, "materialize", "readings"], fresh, after=attempts.since_last
        ),
        Measure(f"partitions_missing@{h}h", [VIBEPIPER, "partitions", "readings"], missing),
        Measure(f"dryrun_missing@{h}h", [VIBEPIPER, "materialize", "--dry-run"], missing),
    ]
    for m in measures:
        m.timeout_s = TIMEOUT_S
    interleaved(measures, args.repeat, log, args.quick, patient=not args.no_wait)
    results = summaries(measures)
    problems = []
    got = results[f"noop@{h}h"]["attempted"]
    if any(got):
        problems.append(f"{h:,} hours: no-op runs attempted {got}, expected nothing each")
    still = int(query_catalog(fresh, CURRENT_SQL)[0]["n"])
    if still != h:
        problems.append(f"{h:,} hours: {still} current partitions after the runs, not {h}")
    for problem in problems:
        print(f"WARNING: {problem}", file=sys.stderr)
    derived = {
        "hours": h,
        "start": FIRST_HOUR.isoformat(),
        "end": project.end.isoformat(),
        "figures": figures_of(results),
        "disturbed": disturbed(results),
        "problems": problems,
    }
    return {"results": results, "derived": derived}


# -- growth with H -----------------------------------------------------------------------


def growth_json(g: Growth) -> dict[str, Any]:
    """A figure's growth with H (see sizes.growth), per partition in µs or KiB."""
    return {
        "unit": g.unit,
        "sizes": g.sizes,
        "slope_per_partition": g.slope,
        "intercept": g.intercept,
        "intervals": g.intervals,
        "per_partition_smallest": g.per_smallest,
        "per_partition_largest": g.per_largest,
        "exponent": g.exponent,
        "verdict": g.verdict,
    }


# -- report ------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, help="days of the backfill (default 365; 30 --quick)")
    parser.add_argument("--rows", type=int, default=2000, help="orders per day (default 2,000)")
    parser.add_argument(
        "--hours",
        type=size_list,
        help="comma-separated hourly sizes (default 10000,30000,100000; 2000,5000 --quick)",
    )
    parser.add_argument("--repeat", type=int, help="timed runs of each (default 3; 1 --quick)")
    parser.add_argument(
        "--only", action="append", choices=WHAT, help="measure only this part (repeatable)"
    )
    add_run_options(
        parser,
        "partitions",
        "a smoke test: small sizes, one run, one warm-up per group, no waiting",
    )
    args = parser.parse_args()
    args.days = args.days or (30 if args.quick else 365)
    args.hours = sorted(set(args.hours or ([2000, 5000] if args.quick else [10000, 30000, 100000])))
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.only = args.only or list(WHAT)
    if args.repeat < 1 or args.days < 2 or args.rows < 1 or not args.hours or min(args.hours) < 2:
        parser.error("need --repeat >= 1, --days >= 2, --rows >= 1 and --hours sizes >= 2")
    return args


def print_report(report: dict[str, Any]) -> None:
    """run.py's table and notes for this benchmark alone, then what was disturbed."""
    print(render(partitions_rows(report)))
    print()
    for line in partitions_notes(report):
        print(line)
    parts = [report["derived"]["backfill"], *report["derived"]["hourly"].values()]
    disturbed = [name for d in parts if d for name in d["disturbed"]]
    if disturbed:
        print(f"disturbed runs (kept, flagged): {', '.join(disturbed)}")


def main() -> None:
    args = parse_args()
    session = Session("partitions")
    results: dict[str, Any] = {}
    backfill: dict[str, Any] | None = None
    hourly: list[dict[str, Any]] = []
    failed: dict[str, str] = {}  # part -> the command that failed, and its output's end
    with workspace("vp-partitions-", args.keep) as (base, log):
        if "backfill" in args.only:
            print(f"backfill, {args.days} days:", file=sys.stderr, flush=True)
            folder = base / f"backfill-{args.days}"
            shutil.rmtree(folder, ignore_errors=True)
            with failure_noted(failed, f"{args.days}d", "backfill"):
                done = bench_backfill(write_backfill(folder, args.days, args.rows, log), args, log)
                results.update(done["results"])
                backfill = done["derived"]
        if "hourly" in args.only:
            for h in args.hours:
                print(f"hourly, {h:,} partitions:", file=sys.stderr, flush=True)
                folder = base / f"hourly-{h}"
                shutil.rmtree(folder, ignore_errors=True)
                with failure_noted(failed, f"{h}h", f"{h:,} hours"):
                    done = bench_hourly(write_hourly(folder, h, log), args, log)
                    results.update(done["results"])
                    hourly.append(done["derived"])
    settings = {
        "days": args.days,
        "rows_per_day": args.rows,
        "hours": args.hours,
        "repeat": args.repeat,
        "only": args.only,
        "quick": args.quick,
        "no_wait": args.no_wait,
    }
    grown = growths(hourly, "hours", SLOPE_FIGURES, "µs")
    measured = {
        "results": results,
        "derived": {"backfill": backfill, "hourly": {str(d["hours"]): d for d in hourly}},
        "growth": {figure: growth_json(g) for figure, g in grown.items()},
        "failed": failed,
    }
    finish(session, settings, measured, PACKAGES, print_report, args.json)
    if failed:
        sys.exit(f"FAILED: {', '.join(failed)}: a command failed (above)")


if __name__ == "__main__":
    main()
