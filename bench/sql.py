"""Benchmark: SQL assets (SPEC §10): a SQL pipeline against a plain DuckDB script, what its
checks add, and the column lineage of a 200-column SELECT.

    .venv/bin/python bench/sql.py [--rows 1000000,10000000] [--repeat 3]
    .venv/bin/python bench/sql.py --only lineage --lineage-repeat 50
    .venv/bin/python bench/sql.py --quick     # a smoke test: 200,000 rows, 1 run

**The pipeline**, for each size N: two Python assets streaming generated Parquet files (N
orders, N/10 customers) into the store as DuckDB relations, then five SQL assets (casts,
a join, two aggregates). A cold `vibepiper materialize` is timed against `floor.py`, the
same SQL as DuckDB `COPY ... TO` Parquet step by step (goal: ≤ 1.2×); the same project
with 13 checks against `floor.py --checks`, the same checks written by hand; and the
checks' share of the checked assets' own time (catalog `started_at`/`finished_at`; goal:
≤ 15%), against the hand-written checks' share of the script's steps.

**Column lineage**: `column_lineage` of a 200-column SELECT, timed in a child process
after one warm-up (goal: ≤ 200 ms), against sqlglot's parse of the same query.

Whole processes are timed as in partitions.py (common.py's Measure and interleaved). This
script imports neither DuckDB nor sqlglot, so its own peak RSS stays below every figure.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
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
    json_of,
    query_catalog,
    run_process,
    size_list,
    workspace,
)
from figures import render, sql_notes, sql_rows
from sizes import disturbed, figures_of, spread, summaries

PACKAGES = ("vibepiper", "duckdb", "pyarrow", "sqlglot")
TIMEOUT_S = 1800.0  # one process
WHAT = ("pipeline", "lineage")  # what --only chooses from
STATUSES = ("placed", "shipped", "completed", "returned", "cancelled")
PYPROJECT = (
    '[project]\nname = "sql-bench"\nversion = "0"\n\n[tool.vibepiper]\nmodules = ["pipeline"]\n'
)

# The SQL steps, in order: the same text for the assets and the plain script.
STEPS: tuple[tuple[str, str], ...] = (
    (
        "stg_orders",
        "select order_id, customer_id, amount_cents / 100.0 as amount, status, "
        "cast(ordered_at as timestamp) as ordered_at, "
        "cast(cast(ordered_at as timestamp) as date) as order_date, channel from raw_orders",
    ),
    (
        "stg_customers",
        "select customer_id, upper(country) as country, cast(signup as date) as signed_up "
        "from raw_customers",
    ),
    (
        "order_facts",
        "select o.order_id, o.customer_id, o.amount, o.status, o.order_date, o.channel, "
        "c.country, c.signed_up from stg_orders o join stg_customers c "
        "on o.customer_id = c.customer_id",
    ),
    (
        "customer_value",
        "select customer_id, country, count(*) as orders, sum(amount) as revenue, "
        "min(order_date) as first_order from order_facts group by customer_id, country",
    ),
    (
        "daily_revenue",
        "select order_date, country, count(*) as orders, sum(amount) as revenue "
        "from order_facts where status <> 'returned' group by order_date, country",
    ),
)
RAW = {"raw_orders": "orders.parquet", "raw_customers": "customers.parquet"}
ASSETS = len(RAW) + len(STEPS)
# The checks of the checked project, by asset (Python source, in pipeline.py).
CHECKS = {
    "stg_orders": (
        'expect.not_null("order_id")',
        'expect.unique("order_id")',
        'expect.accepted_values("status", STATUSES)',
        'expect.in_range("amount", min=0, max=1000)',
        "expect.row_count(min=ROWS, max=ROWS)",
    ),
    "stg_customers": ('expect.unique("customer_id")',),
    "order_facts": (
        'expect.relationship("customer_id", to="stg_customers", field="customer_id")',
        'expect.not_null("country")',
        "expect.row_count(min=ROWS, max=ROWS)",
    ),
    "customer_value": ('expect.unique("customer_id")', 'expect.not_null("revenue")'),
    "daily_revenue": (
        'expect.unique("order_date", "country")',
        'expect.in_range("revenue", min=0)',
    ),
}
CHECK_COUNT = sum(len(c) for c in CHECKS.values())

MAKE_DATA = """\
\"\"\"python make_data.py ROWS: data/orders.parquet (ROWS) and data/customers.parquet.\"\"\"
import sys
from pathlib import Path

import duckdb

rows = int(sys.argv[1])
customers = max(rows // 10, 1000)
Path("data").mkdir(exist_ok=True)
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f'''COPY (
    SELECT range AS order_id,
           (hash(range) % {{customers}})::BIGINT AS customer_id,
           (hash(range + 1) % 50000)::INTEGER AS amount_cents,
           {statuses!r}[1 + (range % 5)::INTEGER] AS status,
           strftime(TIMESTAMP '2025-01-01' + to_seconds((hash(range + 2) % 31536000)::BIGINT),
                    '%Y-%m-%d %H:%M:%S') AS ordered_at,
           CASE range % 3 WHEN 0 THEN 'web' WHEN 1 THEN 'store' ELSE 'app' END AS channel
    FROM range({{rows}})) TO 'data/orders.parquet' (FORMAT parquet)''')
con.execute(f'''COPY (
    SELECT range AS customer_id, 'country_' || (range % 60) AS country,
           strftime(DATE '2020-01-01' + (range % 2000)::INTEGER, '%Y-%m-%d') AS signup
    FROM range({{customers}})) TO 'data/customers.parquet' (FORMAT parquet)''')
"""

# The same checks written by hand for the plain script: each query counts failing rows.
FLOOR_CHECKS: dict[str, tuple[str, ...]] = {
    "stg_orders": (
        "select count(*) filter (where order_id is null) + count(*) filter (where status not in "
        f"{STATUSES!r}) + count(*) filter (where amount < 0 or amount > 1000) "
        "+ abs(count(*) - {rows}) from stg_orders",
        "select count(*) from (select order_id from stg_orders group by order_id "
        "having count(*) > 1)",
    ),
    "stg_customers": (
        "select count(*) from (select customer_id from stg_customers group by customer_id "
        "having count(*) > 1)",
    ),
    "order_facts": (
        "select count(*) from order_facts o anti join stg_customers c "
        "on o.customer_id = c.customer_id",
        "select count(*) filter (where country is null) + abs(count(*) - {rows}) from order_facts",
    ),
    "customer_value": (
        "select count(*) from (select customer_id from customer_value group by customer_id "
        "having count(*) > 1)",
        "select count(*) filter (where revenue is null) from customer_value",
    ),
    "daily_revenue": (
        "select count(*) from (select order_date, country from daily_revenue "
        "group by order_date, country having count(*) > 1)",
        "select count(*) filter (where revenue < 0) from daily_revenue",
    ),
}

FLOOR = """\
\"\"\"python floor.py OUT [--checks]: the pipeline's steps as DuckDB COPY ... TO Parquet, in
order; with --checks, each step's checks (hand-written SQL) after it, timed apart.\"\"\"
import json
import sys
import time
from pathlib import Path

import duckdb

RAW = {raw!r}
STEPS = {steps!r}
CHECKS = {checks!r}

out = Path(sys.argv[1])
checking = sys.argv[2:] == ["--checks"]
out.mkdir(parents=True)
con = duckdb.connect()
con.execute("SET preserve_insertion_order = false")
times = {{"steps": {{}}, "checks": {{}}}}


def copy(name, query):
    start = time.perf_counter()
    path = out / f"{{name}}.parquet"
    con.execute(f"COPY ({{query}}) TO '{{path}}' (FORMAT parquet)")
    con.execute(f"CREATE VIEW {{name}} AS SELECT * FROM read_parquet('{{path}}')")
    times["steps"][name] = time.perf_counter() - start
    if checking and name in CHECKS:
        start = time.perf_counter()
        for check in CHECKS[name]:
            [(failing,)] = con.execute(check).fetchall()
            if failing:
                raise SystemExit(f"{{name}}: {{failing}} failing rows: {{check}}")
        times["checks"][name] = time.perf_counter() - start


for name, file in RAW.items():
    copy(name, f"SELECT * FROM read_parquet('{{file}}')")
for name, query in STEPS:
    copy(name, query)
(out / "times.json").write_text(json.dumps(times))
"""

PIPELINE_HEAD = """\
import duckdb

from vibepiper import asset, expect, sql_asset

ROWS = {rows}
STATUSES = {statuses!r}
_DB = duckdb.connect()  # stays open while the raw relations stream from it
_DB.execute("SET preserve_insertion_order = false")


@asset
def raw_orders() -> duckdb.DuckDBPyRelation:
    return _DB.read_parquet({orders!r})


@asset
def raw_customers() -> duckdb.DuckDBPyRelation:
    return _DB.read_parquet({customers!r})
"""

DURATIONS_SQL = (
    "select asset, status, date_diff('microsecond', started_at, finished_at) / 1e6 as seconds "
    "from materializations"
)


# -- the pipeline ------------------------------------------------------------------------


@dataclass
class Pipeline:
    rows: int
    root: Path  # data/, floor.py; plain/ and checked/: the two projects

    @property
    def plain(self) -> Path:
        return self.root / "plain"

    @property
    def checked(self) -> Path:
        return self.root / "checked"


def pipeline_module(rows: int, data: Path, checks: bool) -> str:
    head = PIPELINE_HEAD.format(
        rows=rows,
        statuses=list(STATUSES),
        orders=str(data / RAW["raw_orders"]),
        customers=str(data / RAW["raw_customers"]),
    )
    parts = [head]
    for name, query in STEPS:
        listed = ", ".join(CHECKS.get(name, ())) if checks else ""
        parts.append(f"\n{name} = sql_asset({name!r}, {query!r}, checks=[{listed}])\n")
    return "".join(parts)


def write_pipeline(root: Path, rows: int, log: Path) -> Pipeline:
    project = Pipeline(rows, root)
    root.mkdir(parents=True)
    data = root / "data"
    (root / "make_data.py").write_text(MAKE_DATA.format(statuses=list(STATUSES)))
    raw = {name: str(data / file) for name, file in RAW.items()}
    by_hand = {a: [q.format(rows=rows) for q in qs] for a, qs in FLOOR_CHECKS.items()}
    (root / "floor.py").write_text(FLOOR.format(raw=raw, steps=list(STEPS), checks=by_hand))
    for folder, checks in ((project.plain, False), (project.checked, True)):
        folder.mkdir()
        (folder / "pyproject.toml").write_text(PYPROJECT)
        (folder / "pipeline.py").write_text(pipeline_module(rows, data, checks))
    print(f"  writing {rows:,} orders ...", file=sys.stderr, flush=True)
    run_process([PYTHON, "make_data.py", str(rows)], root, log, timeout_s=TIMEOUT_S)
    return project


def catalog_durations(root: Path) -> dict[str, Any]:
    """Each asset's status and seconds (started_at to finished_at) in the catalog of
    `root` (one run: the catalog is removed before each)."""
    rows = query_catalog(root, DURATIONS_SQL)
    return {r["asset"]: {"status": r["status"], "seconds": float(r["seconds"])} for r in rows}


def cold(name: str, root: Path) -> Measure:
    """A cold `vibepiper materialize` in `root`; after each run, its assets' durations."""

    def clear_home() -> None:
        shutil.rmtree(root / ".vibepiper", ignore_errors=True)

    return Measure(
        name,
        [VIBEPIPER, "materialize"],
        root,
        clear_home,
        lambda: catalog_durations(root),
        timeout_s=TIMEOUT_S,
    )


def floor(name: str, root: Path, *options: str) -> Measure:
    """The plain script in `root` (its output removed before each run); after each run,
    its steps' and checks' times."""
    out = root / "floor-out"

    def clear() -> None:
        shutil.rmtree(out, ignore_errors=True)

    def times() -> dict[str, Any]:
        found: dict[str, Any] = json.loads((out / "times.json").read_text())
        return found

    command = [PYTHON, "floor.py", str(out), *options]
    return Measure(name, command, root, clear, times, timeout_s=TIMEOUT_S)


def bench_pipeline(project: Pipeline, args: argparse.Namespace, log: Path) -> dict[str, Any]:
    n, root = project.rows, project.root
    measures = [
        floor(f"floor@{n}", root),
        cold(f"plain@{n}", project.plain),
        floor(f"floor_checked@{n}", root, "--checks"),
        cold(f"checked@{n}", project.checked),
    ]
    interleaved(measures, args.repeat, log, args.quick, patient=not args.no_wait)
    results = summaries(measures)
    return {"results": results, "derived": derive(n, results)}


def derive(n: int, results: dict[str, Any]) -> dict[str, Any]:
    """The figures of size `n`: ratios, the checks' shares, the steps' medians; a
    CommandFailed if a run did not materialize every asset."""
    figures = figures_of(results)
    runs = {name.split("@")[0]: r["attempted"] for name, r in results.items()}
    problems = [
        f"{n:,} rows: a {name} run did not succeed in all {ASSETS} assets: {run}"
        for name in ("plain", "checked")
        for run in runs[name]
        if len(run) != ASSETS or any(a["status"] != "succeeded" for a in run.values())
    ]
    if problems:
        raise CommandFailed("; ".join(problems))
    checked = tuple(CHECKS)
    shares = [
        _seconds(c, checked) / _seconds(p, checked) - 1
        for p, c in zip(runs["plain"], runs["checked"], strict=True)
    ]
    floor_shares = [
        sum(r["checks"].values()) / sum(r["steps"][a] for a in checked)
        for r in runs["floor_checked"]
    ]
    steps = [*RAW, *(name for name, _ in STEPS)]
    median = figures["plain"]["median"]
    return {
        "rows": n,
        "figures": figures,
        "plain_over_floor": median / figures["floor"]["median"],
        "checked_over_plain": figures["checked"]["median"] / median,
        "overhead_s_per_million_rows": (median - figures["floor"]["median"]) / n * 1e6,
        "checks_share": spread(shares),
        "checks_share_runs": shares,
        "floor_checks_share": spread(floor_shares),
        "floor_checks_share_runs": floor_shares,
        "steps_s": {
            step: {
                "floor": statistics.median(r["steps"][step] for r in runs["floor"]),
                "plain": statistics.median(r[step]["seconds"] for r in runs["plain"]),
                "checked": statistics.median(r[step]["seconds"] for r in runs["checked"]),
                "floor_checks": statistics.median(
                    r["checks"].get(step, 0.0) for r in runs["floor_checked"]
                ),
            }
            for step in steps
        },
        "disturbed": disturbed(results),
    }


def _seconds(run: dict[str, Any], assets: tuple[str, ...]) -> float:
    return sum(run[a]["seconds"] for a in assets)


# -- column lineage ----------------------------------------------------------------------

LINEAGE = '''\
"""python lineage_time.py REPEAT: column_lineage of a 200-column SELECT, timed in process."""
import json
import sys
import time

import duckdb
import sqlglot

from vibepiper.definitions.sql_lineage import column_lineage

A_COLUMNS, B_COLUMNS, OUTPUT = 150, 80, 200
schemas = {
    "wide_orders": ["id"] + [f"a{i}" for i in range(A_COLUMNS)],
    "wide_customers": ["id"] + [f"b{i}" for i in range(B_COLUMNS)],
}


def column(i):
    a, b, k = f"a.a{i % A_COLUMNS}", f"c.b{i % B_COLUMNS}", f"a.a{(i * 7 + 3) % A_COLUMNS}"
    kinds = (
        f"{a}",
        f"{a} + {b} as x{i}",
        f"coalesce({a}, {b}, 0) as x{i}",
        f"case when {a} > 0 then {b} else {k} end as x{i}",
        f"round({a} * 1.1, 2) as x{i}",
        f"cast({b} as varchar) || '-' || cast({a} as varchar) as x{i}",
        f"sum({a}) over (partition by c.b0 order by a.id) as x{i}",
        f"abs({a} - {k}) * {b} as x{i}",
    )
    return kinds[i % len(kinds)]


picked = ", ".join(f"b{i}" for i in range(B_COLUMNS))
query = (
    f"with c as (select id, {picked} from wide_customers where b0 is not null) "
    f"select {', '.join(column(i) for i in range(OUTPUT))} "
    "from wide_orders a join c on a.id = c.id"
)
repeat = int(sys.argv[1])
con = duckdb.connect()
for table, names in schemas.items():
    con.execute(f"create table {table} ({', '.join(n + ' integer' for n in names)})")
duckdb_columns = len(con.execute(query + " limit 0").description)
traced = column_lineage(query, schemas)  # the warm-up: imports, caches
assert len(traced) == duckdb_columns == OUTPUT, (len(traced), duckdb_columns)
assert all(traced), "a column with no input column"


def timed(work):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return times


parse = timed(lambda: sqlglot.parse_one(query, read="duckdb"))
lineage = timed(lambda: column_lineage(query, schemas))
print(json.dumps({
    "output_columns": OUTPUT,
    "input_columns": A_COLUMNS + B_COLUMNS + 2,
    "query_chars": len(query),
    "lineage_times_s": lineage,
    "parse_times_s": parse,
}))
'''


def bench_lineage(base: Path, repeat: int) -> dict[str, Any]:
    folder = base / "lineage"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lineage_time.py").write_text(LINEAGE)
    print(f"column lineage, {repeat} runs ...", file=sys.stderr, flush=True)
    found: dict[str, Any] = json_of(
        [PYTHON, "lineage_time.py", str(repeat)], folder, "lineage_time.py"
    )
    found["lineage"] = spread(found["lineage_times_s"])
    found["parse"] = spread(found["parse_times_s"])
    return found


# -- report ------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--rows",
        type=size_list,
        help="comma-separated numbers of orders (default 1000000,10000000; 200000 --quick)",
    )
    parser.add_argument("--repeat", type=int, help="timed runs of each (default 3; 1 --quick)")
    parser.add_argument(
        "--lineage-repeat", type=int, help="timed lineage runs (default 30; 5 --quick)"
    )
    parser.add_argument(
        "--only", action="append", choices=WHAT, help="measure only this part (repeatable)"
    )
    add_run_options(parser, "sql", "a smoke test: 200,000 rows, one run, no waiting")
    args = parser.parse_args()
    args.rows = sorted(set(args.rows or ([200_000] if args.quick else [1_000_000, 10_000_000])))
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.lineage_repeat = args.lineage_repeat or (5 if args.quick else 30)
    args.only = args.only or list(WHAT)
    if args.repeat < 1 or args.lineage_repeat < 1 or not args.rows or min(args.rows) < 1000:
        parser.error("need --repeat >= 1, --lineage-repeat >= 1 and --rows sizes >= 1000")
    return args


def print_report(report: dict[str, Any]) -> None:
    """run.py's table and notes for this benchmark alone, then what was disturbed."""
    print(render(sql_rows(report)))
    print()
    for line in sql_notes(report):
        print(line)
    found = [name for d in report["derived"]["pipeline"].values() for name in d["disturbed"]]
    if found:
        print(f"disturbed runs (kept, flagged): {', '.join(found)}")


def main() -> None:
    args = parse_args()
    session = Session("sql")
    results: dict[str, Any] = {}
    pipeline: dict[str, Any] = {}
    lineage: dict[str, Any] | None = None
    failed: dict[str, str] = {}
    with workspace("vp-sql-", args.keep) as (base, log):
        if "pipeline" in args.only:
            for n in args.rows:
                print(f"SQL pipeline, {n:,} rows:", file=sys.stderr, flush=True)
                folder = base / f"pipeline-{n}"
                shutil.rmtree(folder, ignore_errors=True)
                with failure_noted(failed, f"{n}", f"{n:,} rows"):
                    done = bench_pipeline(write_pipeline(folder, n, log), args, log)
                    results.update(done["results"])
                    pipeline[str(n)] = done["derived"]
        if "lineage" in args.only:
            with failure_noted(failed, "lineage", "column lineage"):
                lineage = bench_lineage(base, args.lineage_repeat)
    settings = {
        "rows": args.rows,
        "repeat": args.repeat,
        "lineage_repeat": args.lineage_repeat,
        "only": args.only,
        "quick": args.quick,
        "no_wait": args.no_wait,
        "assets": ASSETS,
        "checks": CHECK_COUNT,
    }
    measured = {
        "results": results,
        "derived": {"pipeline": pipeline, "lineage": lineage},
        "failed": failed,
    }
    finish(session, settings, measured, PACKAGES, print_report, args.json)
    if failed:
        sys.exit(f"FAILED: {', '.join(failed)}: a command failed (above)")


if __name__ == "__main__":
    main()
