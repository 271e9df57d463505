"""SQL assets at scale (SPEC §10): 50,000,000 rows in bounded memory.

A generated Parquet file of 50,000,000 events (several GB as a DataFrame) is published into
the store by a streaming Python asset (`events`: a RecordBatchReader out), joined to
1,000,000 users and aggregated per user by a SQL asset (`user_revenue`), then filtered and
enriched batch by batch by a streaming Python asset (`top_users`: a RecordBatchReader in and
out); each carries checks, which run as SQL over its file. One `vibepiper materialize`, a
real process with `[tool.vibepiper.sql] memory_limit = "1GB"`, must stay under 1.5 GiB of
peak RSS, and its results must equal the same queries run by DuckDB on the generated file.

`pytest -m slow -s tests/test_sql_large.py` prints the figures (peak RSS, durations).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.conftest import VIBEPIPER, cli_env, run_cli, write_project

pytestmark = pytest.mark.slow

EVENTS = 50_000_000
USERS = 1_000_000
# top_users keeps the users with at least this revenue. Revenues are sums of cents whose
# last bits depend on the order DuckDB's threads add them in: no sum lies near this value.
TOP_REVENUE = 2_500.005
PEAK_LIMIT_MIB = 1536  # 1.5 GiB: the whole `vibepiper materialize` process
MIB = 1024 * 1024
TIMEOUT_S = 600

# The source: deterministic columns (hash(range) is DuckDB's, the same every run).
GENERATE = """\
import sys

import duckdb

path, rows, users = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f'''
    COPY (
        SELECT range AS id,
               range % {users} AS user_id,
               (hash(range) % 10000) / 100.0 AS amount,
               (hash(range + 1) % 2000) / 10000.0 AS discount,
               ((hash(range) >> 20) % 5)::INTEGER AS quantity,
               (range % 977)::INTEGER AS store_id,
               TIMESTAMP '2026-01-01' + to_seconds((range % 31536000)::BIGINT) AS ts,
               'cat_' || (range % 50) AS category,
               range % 3 = 0 AS returning_customer
        FROM range({rows})
    ) TO '{path}' (FORMAT parquet)
''')
"""

# Shared to the letter by the pipeline and the independent DuckDB queries.
USERS_SQL = (
    f"select range as user_id, 'country_' || (range % 40) as country, "
    f"(range % 7)::integer as tier from range({USERS})"
)
REVENUE_SQL = """
    select e.user_id, u.country, count(*) as orders, sum(e.amount) as revenue,
           sum(e.quantity)::bigint as quantity, max(e.ts) as last_ts
    from events e join users u on e.user_id = u.user_id
    where e.quantity > 0
    group by e.user_id, u.country
"""

PIPELINE = '''\
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vibepiper import asset, expect, sql_asset

SOURCE = {source!r}
EVENTS = {events}
USERS = {users}
TOP_REVENUE = {top}
_USERS_DB = duckdb.connect()  # stays open while `users` streams from it


@asset(checks=[expect.row_count(min=EVENTS, max=EVENTS), expect.not_null("user_id")])
def events() -> pa.RecordBatchReader:
    # pre_buffer=False: with it, pyarrow keeps every row group it has read in memory
    source = pq.ParquetFile(SOURCE, pre_buffer=False)
    batches = source.iter_batches(batch_size=100_000)
    return pa.RecordBatchReader.from_batches(source.schema_arrow, batches)


@asset(checks=[expect.unique("user_id"), expect.row_count(min=USERS, max=USERS)])
def users() -> duckdb.DuckDBPyRelation:
    return _USERS_DB.sql({users_sql!r})


user_revenue = sql_asset(
    "user_revenue",
    """{revenue_sql}""",
    checks=[
        expect.not_null("user_id"),
        expect.not_null("revenue"),
        expect.unique("user_id"),
        expect.row_count(min=1, max=USERS),
    ],
)


@asset(checks=[expect.not_null("per_order"), expect.in_range("per_order", min=0, max=100)])
def top_users(user_revenue: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """The users with a revenue of at least TOP_REVENUE, and their revenue per order."""

    def batches():
        for batch in user_revenue:
            kept = batch.filter(pc.greater_equal(batch["revenue"], TOP_REVENUE))
            orders = pc.cast(kept["orders"], pa.float64())
            yield kept.append_column("per_order", pc.divide(kept["revenue"], orders))

    schema = user_revenue.schema.append(pa.field("per_order", pa.float64()))
    return pa.RecordBatchReader.from_batches(schema, batches())


@asset(checks=[expect.not_null("net")])
def large_orders(events: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """The events of at least 90.0, and their amount net of the discount."""

    def batches():
        for batch in events:
            kept = batch.filter(pc.greater_equal(batch["amount"], 90.0))
            net = pc.multiply(kept["amount"], pc.subtract(1.0, kept["discount"]))
            yield kept.append_column("net", net)

    schema = events.schema.append(pa.field("net", pa.float64()))
    return pa.RecordBatchReader.from_batches(schema, batches())
'''

SQL_SETTINGS = '\n[tool.vibepiper.sql]\nmemory_limit = "1GB"\n'

# The measured command runs as a child of this small launcher, which reports its rusage from
# wait4. Not a child of pytest: subprocess starts children with vfork, and Linux then starts
# a child's peak RSS at its parent's own peak, which pytest's may exceed.
LAUNCHER = """\
import json
import os
import subprocess
import sys

proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open("/proc/self/status") as f:
    own_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
with open(sys.argv[1], "w") as out:
    json.dump({"peak_kib": usage.ru_maxrss, "launcher_kib": own_kib}, out)
sys.exit(os.waitstatus_to_exitcode(status))
"""


class OverMemoryLimit(AssertionError):
    """The measured process's peak RSS exceeded PEAK_LIMIT_MIB."""


@dataclass(frozen=True)
class Measured:
    returncode: int
    output: str
    wall_s: float
    peak_mib: float


@dataclass(frozen=True)
class Source:
    path: Path
    arrow_bytes: int  # the data's size in memory as Arrow (from its first row group's)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """The 50,000,000-row Parquet file, generated by DuckDB in a child process."""
    path = tmp_path_factory.mktemp("sql-large-data") / "events.parquet"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", GENERATE, str(path), str(EVENTS), str(USERS)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    file = pq.ParquetFile(path)
    meta = file.metadata
    size = file.read_row_group(0).nbytes * EVENTS // meta.row_group(0).num_rows
    print(
        f"\ngenerated {EVENTS:,} rows in {time.perf_counter() - start:.1f} s: "
        f"{path.stat().st_size / MIB:,.0f} MiB of Parquet, {size / MIB:,.0f} MiB as Arrow"
    )
    assert meta.num_rows == EVENTS
    # the data cannot fit in the memory allowed, so the test shows that nothing holds it
    assert size > 1.5 * PEAK_LIMIT_MIB * MIB
    return Source(path, size)


def write_pipeline(root: Path, source: Source) -> Path:
    module = PIPELINE.format(
        source=str(source.path),
        events=EVENTS,
        users=USERS,
        top=TOP_REVENUE,
        users_sql=USERS_SQL,
        revenue_sql=REVENUE_SQL,
    )
    return write_project(root, {"pipeline": module}, tool=SQL_SETTINGS)


def measured_materialize(root: Path, *args: str) -> Measured:
    """`vibepiper materialize ARGS` in `root`: its exit code, output, wall time and peak RSS
    (from wait4, through LAUNCHER); the test fails if the peak cannot be measured."""
    if not Path("/proc/self/status").exists():
        pytest.fail("peak RSS cannot be measured here: the launcher needs Linux's /proc")
    report = root / "rusage.json"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(report), *VIBEPIPER, "materialize", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=cli_env(),
    )
    wall = time.perf_counter() - start
    assert report.exists(), f"peak RSS not measured: {done.stderr[-2000:]}"
    usage = json.loads(report.read_text())
    peak, launcher = usage["peak_kib"] / 1024, usage["launcher_kib"] / 1024
    # the figure is at least the launcher's own peak: above it, it is the command's
    assert peak > launcher, f"peak RSS not measured: {peak:.0f} MiB, launcher {launcher:.0f}"
    return Measured(done.returncode, done.stdout + done.stderr, wall, peak)


def published(root: Path, asset: str) -> Path:
    """The current file of `asset` in the project's store (its data version from the catalog,
    through `vibepiper query`)."""
    sql = f"select data_version from current_materializations where asset = '{asset}'"
    done = run_cli(root, "query", "--json", sql)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    path = root / ".vibepiper" / "store" / asset / f"{row['data_version']}.parquet"
    assert path.exists(), path
    return path


def checks_of(root: Path, asset: str) -> dict[str, bool]:
    sql = (
        "select c.check_name, c.passed from check_results c "
        f"join current_materializations m using (materialization_id) where m.asset = '{asset}'"
    )
    done = run_cli(root, "query", "--json", sql)
    assert done.returncode == 0, done.stderr
    return {r["check_name"]: r["passed"] for r in json.loads(done.stdout)}


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET memory_limit = '1GB'")
    con.execute("SET enable_progress_bar = false")
    return con


def differences(
    con: duckdb.DuckDBPyConnection, expected: str, file: Path, columns: str
) -> dict[str, Any]:
    """Rows of `expected` (a query) not in `file`, and of `file` not in `expected`, as
    multisets (EXCEPT ALL both ways) of `columns`: counts and a few examples. (Round the
    sums of floats: their last bits depend on the order they were added in.)"""
    got = f"select {columns} from read_parquet('{file}')"
    want = f"select {columns} from ({expected})"
    found: dict[str, Any] = {}
    for name, left, right in (("missing", want, got), ("unexpected", got, want)):
        rows = con.execute(f"({left}) except all ({right})").fetchall()
        found[name] = len(rows)
        found[f"{name} (examples)"] = rows[:3]
    return found


def expected_revenue(source: Source) -> str:
    return (
        f"with events as (select * from read_parquet('{source.path}')), "
        f"users as ({USERS_SQL}) {REVENUE_SQL}"
    )


def test_fifty_million_rows_through_sql_and_streams_in_bounded_memory(
    source: Source, tmp_path: Path
) -> None:
    root = write_pipeline(tmp_path / "project", source)
    run = measured_materialize(root, "--exclude", "large_orders")
    print(f"\n{run.output}")
    print(
        f"materialize: {run.wall_s:.1f} s, peak RSS {run.peak_mib:,.0f} MiB "
        f"(limit {PEAK_LIMIT_MIB:,} MiB; the data is {source.arrow_bytes / MIB:,.0f} MiB "
        "as Arrow)"
    )
    assert run.returncode == 0, run.output[-3000:]
    assert checks_of(root, "user_revenue") == {
        "not_null_user_id": True,
        "not_null_revenue": True,
        "unique_user_id": True,
        "row_count": True,
    }
    assert checks_of(root, "top_users") == {"not_null_per_order": True, "in_range_per_order": True}
    assert all(checks_of(root, "events").values())

    start = time.perf_counter()
    con = connect()
    events = published(root, "events")
    [(rows, ids)] = con.execute(
        f"select count(*), sum(id) from read_parquet('{events}')"
    ).fetchall()
    assert (rows, ids) == (EVENTS, EVENTS * (EVENTS - 1) // 2)
    columns = "user_id, country, orders, round(revenue, 6), quantity, last_ts"
    revenue = differences(con, expected_revenue(source), published(root, "user_revenue"), columns)
    assert revenue["missing"] == revenue["unexpected"] == 0, revenue
    top = (
        f"select *, revenue / orders as per_order from ({expected_revenue(source)}) "
        f"where revenue >= {TOP_REVENUE}"
    )
    top_file = published(root, "top_users")
    found = differences(con, top, top_file, columns)
    assert found["missing"] == found["unexpected"] == 0, found
    [(off,)] = con.execute(
        f"select count(*) from read_parquet('{top_file}') got join ({top}) want using (user_id) "
        "where abs(got.per_order - want.per_order) > 1e-9"
    ).fetchall()
    assert off == 0, f"{off} users' per_order differ from DuckDB's"
    [(kept,)] = con.execute(f"select count(*) from ({top})").fetchall()
    assert 0 < kept < USERS  # the filter kept some users, not all
    print(f"compared with DuckDB's own results in {time.perf_counter() - start:.1f} s")

    assert run.peak_mib <= PEAK_LIMIT_MIB, f"peak RSS {run.peak_mib:,.0f} MiB"


def test_a_reader_input_of_fifty_million_rows_in_bounded_memory(
    source: Source, tmp_path: Path
) -> None:
    """A streaming Python asset over the 50,000,000 published events themselves."""
    root = write_pipeline(tmp_path / "project", source)
    done = run_cli(root, "materialize", "events", timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    run = measured_materialize(root, "large_orders")
    print(f"\n{run.output}")
    print(f"materialize large_orders: {run.wall_s:.1f} s, peak RSS {run.peak_mib:,.0f} MiB")
    assert run.returncode == 0, run.output[-3000:]
    assert checks_of(root, "large_orders") == {"not_null_net": True}

    con = connect()
    expected = (
        f"select *, amount * (1 - discount) as net "
        f"from read_parquet('{source.path}') where amount >= 90.0"
    )
    found = differences(con, expected, published(root, "large_orders"), "id, amount, net")
    assert found["missing"] == found["unexpected"] == 0, found

    if run.peak_mib > PEAK_LIMIT_MIB:
        raise OverMemoryLimit(f"peak RSS {run.peak_mib:,.0f} MiB > {PEAK_LIMIT_MIB:,} MiB")
