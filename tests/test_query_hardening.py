"""`query` and `show` hardened: a long query never blocks a run, Ctrl-C and --timeout stop
it, huge results stream or stop at a limit, EXPLAIN ANALYZE cannot write, DuckDB's
temporary folder and forged snapshot names reach nothing outside the project, output
cannot drive the terminal, --json is valid JSON that keeps every value, and `docs`
writes under the project home. The real CLI, as a subprocess, wherever it is about the CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import duckdb
import pytest

from tests.conftest import VIBEPIPER, catalog_rows, run_cli, write_project
from vibepiper.catalog.catalog import Catalog
from vibepiper.catalog.query import quote, run_query
from vibepiper.errors import StoreError, UsageError
from vibepiper.project import Project
from vibepiper.storage.parquet_store import ParquetStore
from vibepiper.units import Unit

# Runs for minutes (far longer than any test waits): only an interruption ends it.
ENDLESS = "SELECT sum(hash(range)) AS s FROM range(100000000000)"
HUGE = "SELECT range AS n FROM range(100000000000)"  # 10^11 rows: never fetched whole


# How a process stopped by Ctrl-C ends: exit status 130, or (once in a while under load,
# after it printed "interrupted" and cleaned up, while DuckDB's thread was still being
# stopped) ended by the SIGINT itself. A shell reports both as 130.
CTRL_C_EXITS = (130, -signal.SIGINT)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture
def built(shop: Path) -> Path:
    result = run_cli(shop, "materialize")
    assert result.returncode == 0, result.stderr
    return shop


@pytest.fixture
def endless_query(built: Path) -> Iterator[subprocess.Popen[str]]:
    """`vibepiper query ENDLESS` running in `built`, its user SQL started (or so we wait)."""
    with running_query(built) as process:
        yield process


@contextlib.contextmanager
def running_query(built: Path, settle: float = 0.3) -> Iterator[subprocess.Popen[str]]:
    """`vibepiper query ENDLESS` in `built`, once its temporary folder exists (+ `settle` s)."""
    process = subprocess.Popen(
        [*VIBEPIPER, "query", ENDLESS],
        cwd=built,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )
    try:
        wait_for_private_temp(built / ".vibepiper" / "query-tmp", settle)
        assert process.poll() is None, process.communicate()  # still running: not failed
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def ctrl_c_as_in_a_terminal() -> None:
    """In the child: SIGINT handled as in a terminal. A process started in the background
    by a non-interactive shell (`cmd &`, as a CI script may start pytest) has SIGINT
    ignored, and its children inherit that: Python then keeps ignoring it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_private_temp(folder: Path, settle: float = 0.3) -> None:
    """The query makes its private temporary folder just before it runs the user's SQL
    (code without one: we go on after a while, and the test fails on what it checks)."""
    deadline = time.monotonic() + 120  # a busy machine may take long to start it
    while time.monotonic() < deadline:
        if folder.is_dir() and any(folder.iterdir()):
            time.sleep(settle)  # into DuckDB's work
            return
        time.sleep(0.02)


# -- 1. a long query does not hold the catalog lock --------------------------------------


def test_a_long_query_does_not_keep_a_run_from_writing(
    built: Path, endless_query: subprocess.Popen[str]
) -> None:
    result = run_cli(built, "materialize", "--force", env={"VIBEPIPER_LOCK_TIMEOUT": "2"})

    assert result.returncode == 0, result.stderr
    assert endless_query.poll() is None  # the query was running all along
    statuses = catalog_rows(built, "SELECT status FROM runs ORDER BY started_at")
    assert statuses == [("succeeded",), ("succeeded",)]  # the second run is recorded


# -- 2. Ctrl-C and --timeout --------------------------------------------------------------


def test_ctrl_c_stops_a_long_query_with_exit_130_and_one_line(
    built: Path, endless_query: subprocess.Popen[str]
) -> None:
    endless_query.send_signal(signal.SIGINT)
    out, err = endless_query.communicate(timeout=60)

    assert endless_query.returncode in CTRL_C_EXITS, err
    assert one_line(err) == "interrupted"
    assert out == ""
    assert list((built / ".vibepiper" / "query-tmp").iterdir()) == []  # cleaned up


def test_ctrl_c_while_the_sandbox_is_set_up_is_an_interruption_too(built: Path) -> None:
    """Ctrl-C as soon as the query's temporary folder exists: DuckDB, busy copying the
    catalog, turns it into a bare RuntimeError('Query interrupted'), not a traceback."""
    with running_query(built, settle=0.0) as process:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)

    assert process.returncode in CTRL_C_EXITS, err
    assert one_line(err) == "interrupted"
    assert out == ""
    assert list((built / ".vibepiper" / "query-tmp").iterdir()) == []


def test_ctrl_c_while_waiting_for_the_worker_stops_duckdb_before_closing(built: Path) -> None:
    """A KeyboardInterrupt that lands in the main thread's wait: DuckDB is interrupted and
    the query's thread has ended before the connection is closed (CPython's Thread.join,
    interrupted, says a running thread has stopped: the connection was closed under a
    running query, a ResourceInUseException, or a hang at exit)."""

    def interrupt_once_the_query_runs() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(t.name == "vibepiper-query" for t in threading.enumerate()):
                time.sleep(0.3)  # into DuckDB's work, the main thread waiting
                os.kill(os.getpid(), signal.SIGUSR1)
                return
            time.sleep(0.01)

    def raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGUSR1, raise_interrupt)
    sender = threading.Thread(target=interrupt_once_the_query_runs)
    try:
        sender.start()
        with pytest.raises(KeyboardInterrupt):
            Project(built).query_stream(ENDLESS, lambda names, batches: list(batches))
    finally:
        sender.join()
        signal.signal(signal.SIGUSR1, previous)

    assert not any(t.name == "vibepiper-query" for t in threading.enumerate())
    assert list((built / ".vibepiper" / "query-tmp").iterdir()) == []


VIEWS_INTERRUPTED = """
import os, signal, sys, time
from functools import partial
from pathlib import Path

import duckdb

from vibepiper.catalog.catalog import Catalog
from vibepiper.catalog.query import run_query

opened = []


def opener(name):
    opened.append(name)
    if name == "second":  # Ctrl-C while DuckDB works, and what DuckDB makes of it
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(60)
        except KeyboardInterrupt as exc:
            raise duckdb.InvalidInputException(
                "Invalid Input Error: reading the schema of the object registered as "
                "'_vp_assets_second' failed: KeyboardInterrupt: "
            ) from exc


tables = {name: partial(opener, name) for name in ("first", "second", "third")}
try:
    run_query(Catalog(Path(sys.argv[1])), tables, "SELECT 1 AS one")
    print("the query ran on", opened)
except KeyboardInterrupt:
    handler = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    print("KeyboardInterrupt", opened, "handler restored" if handler else "handler left")
"""


def test_ctrl_c_while_views_are_set_up_is_not_taken_for_damaged_data(
    built: Path, tmp_path: Path
) -> None:
    """Ctrl-C while DuckDB works in the main thread comes back as an error of DuckDB's own
    (RuntimeError('Query interrupted'), or, while it registers data, an
    InvalidInputException '... failed: KeyboardInterrupt', as the opener here makes of it):
    it stops the query; it is not a warning that an asset is damaged, followed by the
    query running on. (In a process of its own, with Python's Ctrl-C handler, as the CLI
    has it.)"""
    script = tmp_path / "views_interrupted.py"
    script.write_text(VIEWS_INTERRUPTED)
    result = subprocess.run(
        [sys.executable, str(script), str(built / ".vibepiper")],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )

    assert result.stdout.strip() == "KeyboardInterrupt ['first', 'second'] handler restored"
    assert result.stderr == ""


def test_timeout_stops_a_long_query_with_exit_1_and_one_line(built: Path) -> None:
    result = run_cli(built, "query", "--timeout", "0.5", ENDLESS, timeout=60)

    assert result.returncode == 1
    assert one_line(result.stderr) == (
        "error: query stopped after its --timeout of 0.5 s; narrow it (WHERE, LIMIT), "
        "or raise --timeout"
    )


def test_a_quick_query_is_not_touched_by_its_timeout(built: Path) -> None:
    result = run_cli(built, "query", "--timeout", "60", "--json", "SELECT 1 AS one")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"one": 1}]


# -- 3. huge results ----------------------------------------------------------------------


def test_a_huge_result_as_a_table_stops_at_the_default_limit_with_a_message(
    built: Path,
) -> None:
    result = run_cli(built, "query", HUGE, timeout=120)

    assert result.returncode == 0, result.stderr
    numbers = [line.strip() for line in result.stdout.splitlines()[2:]]
    assert numbers == [str(n) for n in range(1000)]
    assert one_line(result.stderr) == (
        "(stopped at 1000 rows: --limit N shows more, --json and --csv stream them all)"
    )


@pytest.mark.parametrize("fmt", ["--json", "--csv"])
def test_a_huge_result_streams_up_to_limit(built: Path, fmt: str) -> None:
    result = run_cli(built, "query", fmt, "--limit", "5", HUGE, timeout=120)

    assert result.returncode == 0, result.stderr
    if fmt == "--json":
        assert json.loads(result.stdout) == [{"n": n} for n in range(5)]
    else:
        assert result.stdout.split() == ["n", "0", "1", "2", "3", "4"]
    assert "stopped at 5 rows" in one_line(result.stderr)


def test_json_streams_a_result_of_many_batches_as_one_valid_array(built: Path) -> None:
    result = run_cli(built, "query", "--json", "SELECT range AS n FROM range(100000)")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": n} for n in range(100_000)]
    assert result.stderr == ""


# -- 4. EXPLAIN ANALYZE runs what it explains ---------------------------------------------

FORGED_RUNS = (
    "EXPLAIN ANALYZE CREATE OR REPLACE VIEW runs AS SELECT 'forged' AS run_id; "
    "SELECT run_id FROM runs"
)
MACRO = "EXPLAIN ANALYZE CREATE MACRO m(x) AS x * 2; SELECT m(21) AS v"


@pytest.mark.parametrize("sql", [FORGED_RUNS, MACRO], ids=["forged runs view", "macro"])
def test_explain_analyze_of_a_write_is_refused(built: Path, sql: str) -> None:
    result = run_cli(built, "query", sql)

    assert result.returncode == 2
    assert one_line(result.stderr).startswith(
        "error: query failed: CREATE statements are refused: the query is read-only"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN ANALYZE DROP VIEW runs",
        "EXPLAIN (ANALYZE, FORMAT json) CREATE TABLE t AS SELECT 1",
        "explain /* x */ analyze insert into runs select * from runs",
        "EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'",
    ],
)
def test_explain_of_anything_but_a_read_is_refused(built: Path, sql: str) -> None:
    catalog = Catalog(built / ".vibepiper")
    with pytest.raises(Exception, match="statements are refused") as caught:
        run_query(catalog, {}, sql + "; SELECT count(*) FROM runs")
    assert getattr(caught.value, "exit_code", None) == 2


@pytest.mark.parametrize(
    "sql", ["EXPLAIN ANALYZE SELECT * FROM runs", "EXPLAIN (FORMAT json) SELECT 1"]
)
def test_explain_of_a_read_still_runs(built: Path, sql: str) -> None:
    result = run_cli(built, "query", "--json", sql)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 1


# -- 5. DuckDB's temporary folder ---------------------------------------------------------


def test_duckdb_temp_folder_is_private_and_under_the_project_home(
    built: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / ".tmp").mkdir(parents=True)
    (elsewhere / ".tmp" / "secret.csv").write_text("secret\nhunter2\n")
    before = sorted(p.name for p in elsewhere.rglob("*"))

    read = run_cli(elsewhere, "--project", str(built), "query", "FROM read_csv('.tmp/*.csv')")
    listing = run_cli(elsewhere, "--project", str(built), "query", "FROM glob('.tmp/*')")
    setting = run_cli(
        elsewhere, "--project", str(built), "query", "--json",
        "SELECT current_setting('temp_directory') AS t",
    )  # fmt: skip

    assert read.returncode == 2 and "hunter2" not in read.stdout
    assert "Permission Error" in one_line(read.stderr)
    assert listing.returncode == 2 and "secret" not in listing.stdout
    home = (built / ".vibepiper").resolve()
    assert Path(json.loads(setting.stdout)[0]["t"]).parent == home / "query-tmp"
    assert sorted(p.name for p in elsewhere.rglob("*")) == before
    assert list((home / "query-tmp").iterdir()) == []


# -- 6. names read back from the snapshot --------------------------------------------------


def test_a_forged_name_in_the_snapshot_runs_no_sql_and_query_still_works(
    built: Path, tmp_path: Path
) -> None:
    target = tmp_path / "pwned.csv"
    evil = f"a\" AS SELECT 1; COPY (SELECT 42 AS pwned) TO '{target}'; --"
    home = built / ".vibepiper"
    snapshot = json.loads((home / "snapshot.json").read_text())
    for entry in [*snapshot["assets"], *snapshot["listing"]]:
        if entry["name"] == "lonely":
            entry["name"] = evil
    (home / "snapshot.json").write_text(json.dumps(snapshot))
    # The catalog and the store as a run of that asset would have left them.
    (version,) = catalog_rows(
        built, "SELECT data_version FROM current_materializations WHERE asset = 'lonely'"
    )[0]
    stored = home / "store" / evil / f"{version}.parquet"
    stored.parent.mkdir(parents=True)
    shutil.copy(home / "store" / "lonely" / f"{version}.parquet", stored)
    con = duckdb.connect(str(home / "catalog.duckdb"))
    con.execute(
        "INSERT INTO materializations SELECT * REPLACE (? AS asset, 'forged' AS "
        "materialization_id) FROM current_materializations WHERE asset = 'lonely'",
        [evil],
    )
    con.close()

    result = run_cli(built, "query", "--json", "SELECT count(*) AS n FROM lonely")

    assert not target.exists()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 3}]
    names = [a["name"] for a in json.loads((home / "snapshot.json").read_text())["assets"]]
    assert evil not in names  # the forged snapshot was ignored, and taken again


def test_names_are_quoted_as_identifiers(built: Path) -> None:
    home = built / ".vibepiper"
    (version,) = catalog_rows(
        built, "SELECT data_version FROM current_materializations WHERE asset = 'lonely'"
    )[0]
    weird = 'we"ird; DROP VIEW runs; --'
    store = ParquetStore(home / "store")
    _, rows = run_query(
        Catalog(home),
        {weird: partial(store.dataset, Unit("lonely"), version)},
        f"SELECT (FROM (SELECT count(*) FROM assets.{quote(weird)})) AS asset_rows, "
        "(SELECT count(*) FROM runs) AS runs",
    )
    assert rows == [(3, 1)]  # the view has the asset's rows, and `runs` is still there
    assert quote('a"b') == '"a""b"'


def test_data_that_does_not_open_is_left_out_with_a_warning(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = built / ".vibepiper"
    (version,) = catalog_rows(
        built, "SELECT data_version FROM current_materializations WHERE asset = 'lonely'"
    )[0]
    store = ParquetStore(home / "store")

    def damaged() -> None:
        raise StoreError("the stored data of asset 'broken' is unreadable (here)", "")

    tables = {
        "lonely": partial(store.dataset, Unit("lonely"), version),
        "broken": damaged,
        "absent": partial(store.dataset, Unit("lonely"), "0" * 32),  # None: no view
    }
    # A query sets up the views of the assets it names only: 'broken' is not opened.
    _, rows = run_query(Catalog(home), tables, "SELECT count(*) FROM LONELY")
    assert rows == [(3,)]
    assert capsys.readouterr().err == ""
    # A question about the tables themselves sets up every view.
    _, rows = run_query(
        Catalog(home),
        tables,
        "SELECT count(*) FROM information_schema.tables WHERE table_name <> 'runs' "
        "AND table_schema IN ('main', 'assets') AND table_name IN ('lonely', 'broken')",
    )
    assert rows == [(2,)]  # lonely, as main.lonely and assets.lonely
    warning = capsys.readouterr().err.strip()
    assert warning == (
        "warning: asset 'broken' is left out: the stored data of asset 'broken' is "
        "unreadable (here); rebuild it with `vibepiper materialize broken --force`"
    )
    with pytest.raises(UsageError, match="absent"):
        run_query(Catalog(home), tables, "SELECT * FROM absent")


@pytest.mark.parametrize(
    ("sql", "views"),
    [
        ("SELECT * FROM a JOIN assets.b USING (id)", {"a", "b"}),
        ("WITH t AS (SELECT * FROM a) SELECT * FROM t WHERE x IN (SELECT x FROM c)", {"a", "c"}),
        ('SELECT * FROM "A"', {"a"}),
        ("SELECT * FROM quarantine.b", {"b"}),
        ("DESCRIBE c", {"c"}),
        ("SELECT * FROM runs", set()),
        ("SELECT * FROM duckdb_views()", {"a", "b", "c"}),
        ("SELECT * FROM information_schema.columns", {"a", "b", "c"}),
        ("SHOW TABLES", {"a", "b", "c"}),
        ("SELECT 1 AS one", {"a", "b", "c"}),
        ("this is not SQL", {"a", "b", "c"}),
    ],
)
def test_a_query_sets_up_the_views_of_the_assets_it_names(sql: str, views: set[str]) -> None:
    from vibepiper.catalog.query import _named_in, _only

    tables = {"a": None, "b": None, "c": None}
    assert set(_only(tables, _named_in(sql))) == views


# -- 7. output cannot drive the terminal --------------------------------------------------


def test_query_table_prints_markup_and_control_characters_as_text(built: Path) -> None:
    sql = (
        "SELECT ['[/bold]'] AS a, ['[red]x[/red]'] AS b, '[red]y[/red]' AS c, "
        "chr(27) || '[31mred' AS d"
    )
    result = run_cli(built, "query", sql)

    assert result.returncode == 0, result.stderr
    assert "[/bold]" in result.stdout
    assert "[red]x[/red]" in result.stdout and "[red]y[/red]" in result.stdout
    assert "\x1b" not in result.stdout and "\\x1b[31mred" in result.stdout


def test_show_prints_control_characters_visibly(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "p",
        {
            "m": """
            import pandas as pd
            from vibepiper import asset

            @asset
            def texts() -> pd.DataFrame:
                return pd.DataFrame({"s": ["\\x1b[31mred", "a\\rb", "\\u202egnp.exe"]})
            """
        },
    )
    assert run_cli(root, "materialize").returncode == 0

    result = run_cli(root, "show", "texts")

    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\r" not in result.stdout
    assert "\u202e" not in result.stdout
    assert "\\x1b[31mred" in result.stdout and "a\\rb" in result.stdout
    assert "\\u202egnp.exe" in result.stdout


# -- 8. --json is JSON and keeps the stored value -----------------------------------------


def refuse(constant: str) -> None:
    raise AssertionError(f"not JSON: {constant}")


def test_query_json_is_valid_json_that_keeps_every_special_value(built: Path) -> None:
    sql = (
        "SELECT 'nan'::DOUBLE AS nan, 'inf'::DOUBLE AS inf, '-inf'::DOUBLE AS minus_inf, "
        "[1.5, 'nan'::DOUBLE] AS list, "
        "TIMESTAMP_NS '2026-01-02 03:04:05.123456789' AS ns, "
        "TIMESTAMP '2026-01-02 03:04:05.5' AS us, DATE '2026-01-02' AS day, "
        "'infinity'::DATE AS day_inf, '-infinity'::DATE AS day_minus_inf, "
        "'infinity'::TIMESTAMP AS ts_inf"
    )
    result = run_cli(built, "query", "--json", sql)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout, parse_constant=refuse) == [
        {
            "nan": "NaN",
            "inf": "Infinity",
            "minus_inf": "-Infinity",
            "list": [1.5, "NaN"],
            "ns": "2026-01-02T03:04:05.123456789",
            "us": "2026-01-02T03:04:05.5",
            "day": "2026-01-02",
            "day_inf": "infinity",
            "day_minus_inf": "-infinity",
            "ts_inf": "infinity",
        }
    ]


def test_query_csv_keeps_full_precision_and_infinity_too(built: Path) -> None:
    sql = "SELECT TIMESTAMP_NS '2026-01-02 03:04:05.123456789' AS ns, 'infinity'::DATE AS d"
    result = run_cli(built, "query", "--csv", sql)
    assert result.stdout.split() == ["ns,d", "2026-01-02T03:04:05.123456789,infinity"]


# -- 9. docs writes under the project home ------------------------------------------------


def test_docs_writes_its_site_under_the_project_home(built: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = run_cli(elsewhere, "--project", str(built), "docs")

    assert result.returncode == 0, result.stderr
    assert (built / ".vibepiper" / "site" / "index.html").is_file()
    assert list(elsewhere.iterdir()) == []
