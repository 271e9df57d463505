"""The catalog: its tables (SPEC §6), its schema version, damaged files, readers during a
run, and the read-only `vibepiper query` sandbox (its lock: test_catalog_lock.py).

Real DuckDB files and real processes; nothing is mocked.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibepiper.catalog.catalog import Catalog
from vibepiper.catalog.query import run_query
from vibepiper.catalog.schema import SCHEMA_VERSION
from vibepiper.errors import CatalogError, UsageError
from vibepiper.storage.parquet_store import ParquetStore
from vibepiper.units import Unit

from .conftest import (
    SHOP,
    SHOP_DATA,
    SPEC_COLUMNS,
    catalog_rows,
    invoke,
    run_cli,
    start_cli,
    write_project,
)


def catalog_file(root: Path) -> Path:
    return root / ".vibepiper" / "catalog.duckdb"


def files_under(folder: Path) -> set[str]:
    """Every path under `folder`, but the lock file, the definitions snapshot and the
    fingerprint memo (written by any command that loads the project, by design)."""
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.name not in ("catalog.lock", "snapshot.json", "fingerprint-memo.json")
    }


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    assert "Traceback" not in text
    return lines[0]


# -- tables and schema version -------------------------------------------------------------


def test_a_new_catalog_has_the_spec_tables_and_a_schema_version(shop: Path) -> None:
    assert not catalog_file(shop).exists()
    assert invoke(shop, "history", "lonely").exit_code == 0  # creates the catalog

    columns: dict[str, set[str]] = {}
    for table, column in catalog_rows(
        shop, "SELECT table_name, column_name FROM information_schema.columns"
    ):
        columns.setdefault(table, set()).add(column)
    for table, wanted in SPEC_COLUMNS.items():
        assert table in columns, f"table {table} is missing"
        assert wanted <= columns[table], f"{table} lacks {wanted - columns[table]}"
    assert "current_materializations" in columns  # the view `query --help` names
    assert catalog_rows(shop, "SELECT value FROM vibepiper_meta WHERE key = 'schema_version'") == [
        (str(SCHEMA_VERSION),)
    ]


def test_catalog_tables_record_a_run(shop: Path) -> None:
    assert invoke(shop, "materialize").exit_code == 0
    assert catalog_rows(shop, "SELECT status FROM runs") == [("succeeded",)]
    assert sorted(catalog_rows(shop, "SELECT asset, status FROM materializations")) == [
        ("clean", "succeeded"),
        ("lonely", "succeeded"),
        ("raw", "succeeded"),
        ("totals", "succeeded"),
    ]
    assert sorted(
        catalog_rows(
            shop,
            "SELECT m.asset, l.upstream_asset, l.upstream_data_version = u.data_version "
            "FROM lineage l JOIN materializations m USING (materialization_id) "
            "JOIN materializations u ON u.asset = l.upstream_asset",
        )
    ) == [("clean", "raw", True), ("totals", "clean", True)]


def make_catalog(home: Path, schema_version: int) -> Path:
    Catalog(home).ensure()
    path = home / "catalog.duckdb"
    con = duckdb.connect(str(path))
    try:
        con.execute(
            "UPDATE vibepiper_meta SET value = ? WHERE key = 'schema_version'",
            [str(schema_version)],
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path


def test_a_catalog_of_a_newer_schema_version_is_refused_and_left_untouched(
    shop: Path,
) -> None:
    path = make_catalog(shop / ".vibepiper", SCHEMA_VERSION + 1)
    content = path.read_bytes()
    before = files_under(shop)

    with pytest.raises(CatalogError) as caught:
        Catalog(shop / ".vibepiper").ensure()
    assert str(path) in str(caught.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in str(caught.value)

    for command in (["history", "lonely"], ["materialize"], ["query", "select 1"]):
        result = invoke(shop, *command)
        assert result.exit_code == 1, command
        assert str(path) in one_line(result.stderr)

    assert path.read_bytes() == content
    assert files_under(shop) == before  # no .wal, no store file: nothing ran


GARBAGE = {
    "random bytes": random.Random(5).randbytes(8192),
    "text": b"this is not a database\n" * 200,
    "empty": b"",
}


@pytest.mark.parametrize("kind", [*GARBAGE, "truncated catalog"])
def test_a_file_that_is_not_a_catalog_is_an_error_naming_it(shop: Path, kind: str) -> None:
    path = catalog_file(shop)
    if kind == "truncated catalog":
        Catalog(shop / ".vibepiper").ensure()
        path.write_bytes(path.read_bytes()[:12288])
    else:
        path.parent.mkdir(parents=True)
        path.write_bytes(GARBAGE[kind])
    content = path.read_bytes()
    before = files_under(shop)

    result = run_cli(shop, "history", "lonely", timeout=60)

    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith("error:")
    assert str(path) in line
    assert path.read_bytes() == content
    assert files_under(shop) == before


# -- a reader during a run -----------------------------------------------------------------

SLOW_PIPELINE = """
import time
from pathlib import Path

import pandas as pd
from vibepiper import asset

@asset
def fast() -> pd.DataFrame:
    return pd.DataFrame({"x": [1, 2, 3]})

@asset
def slow(fast: pd.DataFrame) -> pd.DataFrame:
    release = Path(__file__).parent / "release"
    end = time.monotonic() + 600
    while not release.exists() and time.monotonic() < end:
        time.sleep(0.05)
    return fast.assign(y=fast.x * 2)
"""


@dataclass
class ReaderDuringRun:
    history: subprocess.CompletedProcess[str]  # `history fast` as soon as the run shows
    run_still_going: bool
    later: subprocess.CompletedProcess[str]  # `history fast` again, once it shows `fast`
    still_going_later: bool
    run: subprocess.CompletedProcess[str]
    root: Path


def poll_run_status(home: Path, proc: subprocess.Popen[str], timeout: float = 30) -> str:
    """Wait until the catalog shows a run (through the real Catalog, under its lock)."""
    catalog = Catalog(home)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"materialize ended early ({proc.returncode})")
        if (home / "catalog.duckdb").exists():
            rows = catalog.fetch("SELECT status FROM runs")
            if rows:
                return str(rows[0]["status"])
        time.sleep(0.1)
    raise AssertionError(f"no run appeared in the catalog within {timeout} s")


@pytest.fixture(scope="module")
def reader_during_run(tmp_path_factory: pytest.TempPathFactory) -> ReaderDuringRun:
    """`vibepiper history fast` while `vibepiper materialize` waits in `slow` (until the
    test releases it: whatever the machine's speed, the run is still going)."""
    root = write_project(tmp_path_factory.mktemp("slow") / "proj", {"pipeline": SLOW_PIPELINE})
    proc = start_cli(root, "materialize")
    try:
        assert poll_run_status(root / ".vibepiper", proc) == "running"
        history = run_cli(root, "history", "fast", "--json", timeout=60)
        still_going = proc.poll() is None
        later = history
        deadline = time.monotonic() + 60
        while not json.loads(later.stdout or "null") and time.monotonic() < deadline:
            time.sleep(0.2)  # until the run has recorded `fast`
            later = run_cli(root, "history", "fast", "--json", timeout=60)
        still_going_later = proc.poll() is None
        (root / "release").touch()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    run = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return ReaderDuringRun(history, still_going, later, still_going_later, run, root)


def test_history_during_a_run_answers_at_once(reader_during_run: ReaderDuringRun) -> None:
    seen = reader_during_run
    assert seen.history.returncode == 0, seen.history.stderr
    assert seen.run_still_going, "the run ended before history answered: the test proves nothing"
    assert isinstance(json.loads(seen.history.stdout), list)

    assert seen.run.returncode == 0, seen.run.stderr
    assert catalog_rows(seen.root, "SELECT status FROM runs") == [("succeeded",)]
    assert sorted(catalog_rows(seen.root, "SELECT asset, status FROM materializations")) == [
        ("fast", "succeeded"),
        ("slow", "succeeded"),
    ]


def test_history_during_a_run_shows_an_asset_the_run_already_finished(
    reader_during_run: ReaderDuringRun,
) -> None:
    seen = reader_during_run
    assert seen.later.returncode == 0, seen.later.stderr
    assert seen.still_going_later, "the run ended before history answered: the test proves nothing"
    assert [row["status"] for row in json.loads(seen.later.stdout)] == ["succeeded"]


# -- the query sandbox ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def materialized_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_project(tmp_path_factory.mktemp("query") / "proj", {"shop": SHOP}, SHOP_DATA)
    assert invoke(root, "materialize").exit_code == 0
    return root


def query_json(root: Path, sql: str) -> list[dict[str, object]]:
    result = invoke(root, "query", "--json", sql)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_query_selects_over_catalog_tables(materialized_shop: Path) -> None:
    root = materialized_shop
    assert query_json(root, "select status from runs") == [{"status": "succeeded"}]
    assert query_json(root, "select count(*) as n from catalog.materializations") == [{"n": 4}]
    assert query_json(
        root,
        "select m.asset, l.upstream_asset from lineage l "
        "join materializations m using (materialization_id) order by m.asset",
    ) == [
        {"asset": "clean", "upstream_asset": "raw"},
        {"asset": "totals", "upstream_asset": "clean"},
    ]
    assert query_json(root, "select count(*) as n from check_results") == [{"n": 0}]
    assert query_json(root, "select asset from current_materializations order by asset") == [
        {"asset": a} for a in ["clean", "lonely", "raw", "totals"]
    ]
    (run,) = query_json(root, "select started_at, finished_at from runs")
    started = datetime.fromisoformat(str(run["started_at"]))  # ISO 8601 text
    assert started <= datetime.fromisoformat(str(run["finished_at"]))


def test_query_selects_over_asset_views(materialized_shop: Path) -> None:
    root = materialized_shop
    assert query_json(root, "select n, total from totals order by n") == [
        {"n": 1, "total": 2},
        {"n": 2, "total": 4},
        {"n": 3, "total": 6},
    ]
    assert query_json(root, "select sum(x) as s from assets.lonely") == [{"s": 6}]
    assert query_json(
        root,
        "select c.asset, c.row_count, (select count(*) from clean) as n "
        "from current_materializations c where c.asset = 'clean'",
    ) == [{"asset": "clean", "row_count": 3, "n": 3}]


def test_run_query_in_python(materialized_shop: Path, tmp_path: Path) -> None:
    home = materialized_shop / ".vibepiper"
    stored = next((home / "store" / "lonely").glob("*.parquet"))
    lonely = partial(ParquetStore(home / "store").dataset, Unit("lonely"), stored.stem)
    names, rows = run_query(Catalog(home), {"lonely": lonely}, "select count(*) as n from lonely")
    assert (names, rows) == (["n"], [(3,)])
    target = tmp_path / "never-written.csv"
    with pytest.raises(UsageError, match="query failed"):
        run_query(Catalog(home), {"lonely": lonely}, f"COPY lonely TO '{target}'")
    assert not target.exists()


FORBIDDEN = {
    "copy table to file": "COPY runs TO '{out}/runs.csv'",
    "copy query to parquet": "COPY (SELECT * FROM totals) TO '{out}/t.parquet' (FORMAT parquet)",
    "read_csv /etc/passwd": "SELECT * FROM read_csv('/etc/passwd')",
    "read_text": "SELECT content FROM read_text('/etc/passwd')",
    "read_parquet of a store file": "SELECT * FROM read_parquet('{store}/*/*.parquet')",
    "glob": "SELECT * FROM glob('/etc/*')",
    "attach": "ATTACH '{out}/other.duckdb' AS other",
    "install httpfs": "INSTALL httpfs",
    "load httpfs": "LOAD httpfs",
    "insert into runs": "INSERT INTO runs (run_id, started_at, status) VALUES ('x', now(), 'x')",
    "insert into catalog.runs": (
        "INSERT INTO catalog.runs (run_id, started_at, status) VALUES ('x', now(), 'x')"
    ),
    "update catalog": "UPDATE catalog.materializations SET status = 'failed'",
    "drop catalog table": "DROP TABLE catalog.lineage",
    "enable external access": "SET enable_external_access=true",
    "unlock configuration": "SET lock_configuration=false",
    "allow a directory": "SET allowed_directories=['{out}']",
    "copy after a select": "SELECT 1; COPY runs TO '{out}/sneaky.csv'",
}


def catalog_state(root: Path) -> dict[str, list[tuple]]:
    return {
        table: sorted(catalog_rows(root, f"SELECT * FROM {table}"), key=repr)
        for table in SPEC_COLUMNS
    }


@pytest.mark.parametrize("case", list(FORBIDDEN))
def test_query_cannot_write_or_reach_outside(
    materialized_shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    root = materialized_shop
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("HOME", str(out))  # where DuckDB would install extensions
    sql = FORBIDDEN[case].format(out=out, store=root / ".vibepiper" / "store")
    # The first query of the project makes its private temp folder (emptied after each).
    temp = ".vibepiper/query-tmp"
    before = (files_under(root) - {temp}, catalog_state(root))

    result = invoke(root, "query", sql)

    assert result.exit_code == 2
    assert "query failed" in one_line(result.stderr)
    assert "root:" not in result.output
    assert files_under(out) == set()
    assert (files_under(root) - {temp}, catalog_state(root)) == before


def test_query_sandbox_holds_in_a_real_process(materialized_shop: Path, tmp_path: Path) -> None:
    root = materialized_shop
    out = tmp_path / "out"
    out.mkdir()
    env = {"HOME": str(out)}
    content = catalog_file(root).read_bytes()
    for sql in (
        f"COPY runs TO '{out}/runs.csv'",
        "INSTALL httpfs",
        "SELECT * FROM read_csv('/etc/passwd')",
    ):
        result = run_cli(root, "query", sql, env=env)
        assert result.returncode == 2, sql
        assert "query failed" in one_line(result.stderr)
        assert result.stdout == ""
    assert files_under(out) == set()
    assert catalog_file(root).read_bytes() == content


V1_TABLES = {
    "vibepiper_meta": "key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL",
    "runs": "run_id VARCHAR PRIMARY KEY, started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, "
    "status VARCHAR NOT NULL, selection VARCHAR, pid INTEGER, host VARCHAR, command VARCHAR",
    "materializations": "materialization_id VARCHAR PRIMARY KEY, run_id VARCHAR NOT NULL, "
    "asset VARCHAR NOT NULL, status VARCHAR NOT NULL, code_version VARCHAR, data_version VARCHAR, "
    "row_count BIGINT, started_at TIMESTAMP, finished_at TIMESTAMP, error VARCHAR, "
    "attempts INTEGER, config VARCHAR, reason VARCHAR",
    "lineage": "materialization_id VARCHAR NOT NULL, upstream_asset VARCHAR NOT NULL, "
    "upstream_data_version VARCHAR",
    "check_results": "materialization_id VARCHAR NOT NULL, check_name VARCHAR NOT NULL, "
    "severity VARCHAR NOT NULL, passed BOOLEAN NOT NULL, failing_rows BIGINT, message VARCHAR, "
    "sample VARCHAR",
}


def test_a_version_1_catalog_is_migrated_in_place_keeping_its_rows(shop: Path) -> None:
    """A reader (`history`) meets the old catalog first: it is migrated, then read."""
    home = shop / ".vibepiper"
    home.mkdir()
    con = duckdb.connect(str(home / "catalog.duckdb"))
    for name, columns in V1_TABLES.items():
        con.execute(f"CREATE TABLE {name} ({columns})")
    con.execute("INSERT INTO vibepiper_meta VALUES ('schema_version', '1')")
    con.execute(
        "INSERT INTO runs VALUES ('r1', now()::TIMESTAMP, now()::TIMESTAMP, "
        "'succeeded', '', 1, 'h', 'c')"
    )
    con.execute(
        "INSERT INTO materializations VALUES ('r1-0000', 'r1', 'lonely', 'succeeded', "
        "'old', 'abc', 3, now()::TIMESTAMP, now()::TIMESTAMP, NULL, 1, '{}', NULL)"
    )
    con.close()
    proc = run_cli(shop, "history", "lonely", "--json")
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert row["data_version"] == "abc" and row["code_parts"] is None
    assert catalog_rows(shop, "SELECT value FROM vibepiper_meta") == [(str(SCHEMA_VERSION),)]
    assert run_cli(shop, "materialize").returncode == 0  # and it works as a current catalog
    assert catalog_rows(shop, "SELECT count(*) FROM logs")  # the table version 3 added
    (kind,) = catalog_rows(shop, "SELECT kind FROM runs WHERE run_id = 'r1'")[0]
    assert kind == "materialize"


# -- how rows are inserted ----------------------------------------------------------------


def _catalog_tables(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    from vibepiper.catalog.schema import create_statements

    con = duckdb.connect(str(tmp_path / "c.duckdb"))
    for statement in create_statements():
        con.execute(statement)
    return con


def test_inserted_rows_read_back_exactly_by_either_path(tmp_path: Path) -> None:
    """Plain values go as one bound list per column; a row with a value of another kind
    sends the whole table's rows as JSON. Both store the same thing."""
    from datetime import UTC, date, timedelta, timezone

    from vibepiper.catalog.catalog import _insert

    con = _catalog_tables(tmp_path)
    naive = datetime(2026, 3, 29, 1, 30, 0, 123456)
    row = {"run_id": "r1", "asset": "a", "level": "INFO", "logged_at": naive}
    plain = [
        {**row, "seq": 1, "materialization_id": "m1", "message": "é\x00 ' \" ;"},
        {**row, "seq": 2**31 - 1},  # missing keys are null
    ]
    _insert(con, "logs", plain)
    zoned = datetime(2026, 3, 29, 3, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    _insert(con, "logs", [{**row, "seq": 3, "logged_at": zoned}])
    as_json = {**row, "seq": 4, "logged_at": zoned, "logger": Path("x")}  # str() below
    with pytest.raises(TypeError, match="cannot store PosixPath"):
        _insert(con, "logs", [as_json])
    day = date(2026, 3, 29)  # no plain value: these rows go as JSON text
    _insert(con, "logs", [{**as_json, "logger": None, "message": 1.5, "logged_at": day}])
    got = con.execute(
        "SELECT seq, materialization_id, logged_at, message FROM logs ORDER BY seq"
    ).fetchall()
    assert got == [
        (1, "m1", naive, "é\x00 ' \" ;"),
        (3, None, zoned.astimezone(UTC).replace(tzinfo=None), None),  # stored as UTC
        (4, None, datetime(2026, 3, 29), "1.5"),
        (2**31 - 1, None, naive, None),
    ]


# Values where binding a column once (the same in every row) or leaving it out (null in
# every row) could go wrong: 1, 1.0 and True are equal; 0.0 and -0.0 too; NaN is unequal
# to itself; a column with a default must store null when null is given.
_RUN_VALUES = {
    "run_id": st.sampled_from(["r1", "r2"]),  # the first column: always a list
    "status": st.sampled_from(["ok", ""]),  # (NOT NULL)
    "pid": st.sampled_from([1, 0, None, True]),
    "kind": st.sampled_from(["materialize", None, "check"]),
    "selection": st.sampled_from(["1", "", None]),
    "started_at": st.sampled_from([datetime(2026, 1, 1), datetime(2026, 1, 1, 0, 0, 1)]),
    "finished_at": st.sampled_from([datetime(2026, 1, 1), None]),
}


REQUIRED = ("run_id", "started_at", "status")


@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {k: _RUN_VALUES[k] for k in REQUIRED},
            optional={k: v for k, v in _RUN_VALUES.items() if k not in REQUIRED},
        ),
        min_size=1,
        max_size=6,
    )
)
@settings(max_examples=60, deadline=None)
def test_inserted_rows_are_what_one_insert_per_row_stores(rows: list[dict[str, object]]) -> None:
    """The bound-list insert (one bound value for a column the same in every row, none for
    one null in every row) stores what plain INSERT ... VALUES of each row does."""
    from vibepiper.catalog.catalog import _insert
    from vibepiper.catalog.schema import create_statements

    columns = list(dict.fromkeys(k for row in rows for k in row))
    got, want = duckdb.connect(), duckdb.connect()
    for con in (got, want):
        for statement in create_statements():
            con.execute(statement)
    for i, row in enumerate(rows):
        row["run_id"] = f"{row['run_id']}-{i}"  # (the primary key)
    _insert(got, "runs", [dict(r) for r in rows])
    marks = ", ".join("?" for _ in columns)
    for row in rows:
        want.execute(
            f"INSERT INTO runs ({', '.join(columns)}) VALUES ({marks})",
            [row.get(c) for c in columns],
        )
    query = "SELECT * FROM runs ORDER BY run_id"
    assert got.execute(query).fetchall() == want.execute(query).fetchall()


def test_the_same_float_is_stored_with_its_sign(monkeypatch: pytest.MonkeyPatch) -> None:
    from vibepiper.catalog import schema
    from vibepiper.catalog.catalog import _insert

    con = duckdb.connect()
    con.execute("CREATE TABLE t (k INTEGER, x DOUBLE)")
    monkeypatch.setitem(schema.COLUMN_TYPES, "t", {"k": "INTEGER", "x": "DOUBLE"})
    monkeypatch.setitem(schema.COLUMN_DEFAULTS, "t", frozenset())
    _insert(con, "t", [{"k": 1, "x": 0.0}, {"k": 2, "x": -0.0}])
    signs = [str(x) for (x,) in con.execute("SELECT x FROM t ORDER BY k").fetchall()]
    assert signs == ["0.0", "-0.0"]


def test_a_value_the_catalog_cannot_store_is_refused_by_name(tmp_path: Path) -> None:
    from vibepiper.catalog.catalog import _insert

    con = _catalog_tables(tmp_path)
    row = {"run_id": "r", "asset": "a", "level": "INFO", "logged_at": datetime(2026, 1, 1)}
    with pytest.raises(TypeError, match="cannot store object in the catalog"):
        _insert(con, "logs", [{**row, "seq": 1, "message": object()}])
    assert con.execute("SELECT count(*) FROM logs").fetchone() == (0,)
