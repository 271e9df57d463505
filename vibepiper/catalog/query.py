"""Read-only SQL over the catalog and the current data of every asset.

The connection is an in-memory DuckDB. Under the catalog's shared lock it copies the
catalog tables (they are small) and lets the lock go, so a long query never keeps a run
from writing; it sees each asset's current data through the Arrow dataset its store opens
(this module knows no store: it is handed a way to open each); then it gives up all file
access (its temporary folder is a private, empty one under the project home) and
locks its configuration. What a query can touch is enforced by DuckDB's own settings (no
writes, no other files, no extensions), not by inspecting the SQL text. Statements that
would only change the throwaway in-memory database (`CREATE TABLE`, `DROP VIEW`) are
refused too, by the type DuckDB's parser gives each statement (and, for EXPLAIN, that of
the statement it explains), so that `query` reads and nothing else. It runs one statement:
of several, only the last one's rows could be shown, so several are refused.

The user's SQL runs in a worker thread, so that Ctrl-C and `timeout` can interrupt DuckDB
at any moment; rows are handed over in batches, never all at once.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from vibepiper import engine
from vibepiper.catalog import lock
from vibepiper.catalog.catalog import Catalog
from vibepiper.catalog.schema import QUERIED_TABLES, VIEWS
from vibepiper.errors import UsageError, VibePiperError

ASSET_SCHEMA = "assets"
CATALOG_SCHEMA = "catalog"
QUARANTINE_SCHEMA = "quarantine"
# Statement types that only read; PIVOT parses as MULTI. CALL runs table functions.
READING = frozenset({"SELECT", "EXPLAIN", "PRAGMA", "CALL", "MULTI"})
# Why a statement of another type is refused, by DuckDB's type (LOAD: also INSTALL; SET:
# also RESET, USE and PRAGMA x = y); any other writes.
REFUSED_BECAUSE = {
    "LOAD": "query runs without extensions and cannot install or load one",
    "SET": "the settings of query are locked",
}
WRITES = "the query is read-only"
# The hint of a SQL error, by what it is about (its DuckDB exception, or words of it).
SANDBOX_HINTS = {
    "Permission": "query reads the catalog's tables and the assets' views, not files",
    "configuration has been locked": "the settings of query are locked",
    "read-only": "the catalog is read-only",
}
HELP = "see `vibepiper query --help`"
BATCH = 2048  # rows fetched at a time
# A query naming these asks about the tables themselves: every view is set up for it.
SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog"})
SYSTEM_FUNCTIONS = ("duckdb_", "pragma_", "sqlite_", "pg_")
TEMP_FOLDER = "query-tmp"  # under the project home: each query spills into its own folder
# Column types DuckDB renders as text (full precision, "infinity") instead of Python's.
TEMPORAL = ("DATE", "TIME", "TIMESTAMP")

Batches = Iterator[list[tuple[Any, ...]]]
Consumer = Callable[[list[str], Batches], None]
# How an asset's data is given: a function opening its pyarrow dataset (None: no data),
# such as `functools.partial(store.dataset, unit, version)`, or the dataset itself.
Opener = Callable[[], Any] | Any
Tables = Mapping[str, Opener]


class QueryTimeoutError(VibePiperError):
    """The query ran past its time limit and was stopped (exit 1)."""


def quote(name: str) -> str:
    """`name` as a SQL identifier: in double quotes, any double quote doubled."""
    return '"' + name.replace('"', '""') + '"'


@contextlib.contextmanager
def sandbox(
    catalog: Catalog,
    asset_data: Tables,
    quarantine_data: Tables | None = None,
) -> Iterator[Any]:
    """A locked-down connection: catalog tables, plus one view per asset in `asset_data`.

    Catalog tables are `runs`, `materializations`, ... (also `catalog.<table>`); an asset is
    `<name>` (also `assets.<name>`, which always works, even if its name is a table's); the
    rows quarantine removed from an asset's current data are `quarantine.<name>`.
    """
    catalog.ensure()
    con = engine.connect()
    temp = None
    try:
        temp = _private_temp(catalog.home)
        con.execute("SET temp_directory = " + "'" + str(temp or "").replace("'", "''") + "'")
        _copy_catalog(con, catalog)
        con.execute("SET enable_external_access = false")
        for table in (*QUERIED_TABLES, *VIEWS):
            con.execute(
                f"CREATE VIEW {quote(table)} AS SELECT * FROM {CATALOG_SCHEMA}.{quote(table)}"
            )
        _add_views(con, ASSET_SCHEMA, asset_data, main=True)
        _add_views(con, QUARANTINE_SCHEMA, quarantine_data or {}, main=False)
        con.execute("SET lock_configuration = true")
        yield con
    finally:
        with contextlib.suppress(Exception):  # busy: a query that ignored its interrupt
            con.close()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def _private_temp(home: Path) -> Path | None:
    """DuckDB may read and write its temporary folder even without external access: a new
    empty folder under the home (or, if none can be made, None: spill nowhere)."""
    try:
        (home / TEMP_FOLDER).mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="q-", dir=home / TEMP_FOLDER))
    except OSError:
        return None


def _copy_catalog(con: Any, catalog: Catalog) -> None:
    """Copy every catalog table into the connection, holding the lock only meanwhile."""
    con.execute(f"CREATE SCHEMA {CATALOG_SCHEMA}")
    with lock.hold(catalog.lock_path, exclusive=False):
        con.execute("ATTACH ? AS _vp_catalog (READ_ONLY)", [str(catalog.path)])
        try:
            for table in (*QUERIED_TABLES, *VIEWS):
                con.execute(
                    f"CREATE TABLE {CATALOG_SCHEMA}.{quote(table)} AS "
                    f"SELECT * FROM _vp_catalog.{quote(table)}"
                )
        finally:
            con.execute("DETACH _vp_catalog")


def _add_views(con: Any, schema: str, tables: Tables, *, main: bool) -> None:
    """One view per asset in `schema` (and, if `main`, by its bare name unless that is a
    catalog table's), over its data read through Arrow; an asset whose data does not
    open is left out, with a warning."""
    con.execute(f"CREATE SCHEMA {schema}")
    for name, given in tables.items():
        source = quote(f"_vp_{schema}_{name}")
        try:
            dataset = _open(given)
            if dataset is None:
                continue
            con.register(f"_vp_{schema}_{name}", dataset)
            con.execute(f"CREATE VIEW {schema}.{quote(name)} AS SELECT * FROM {source}")
            if main and name not in QUERIED_TABLES and name not in VIEWS:
                con.execute(f"CREATE VIEW {quote(name)} AS SELECT * FROM {source}")
        except Exception as exc:  # damaged data: the other assets still answer
            engine.raise_if_interrupted(exc)
            why = exc.message if isinstance(exc, VibePiperError) else _first(exc)
            print(
                f"warning: asset '{name}' is left out: {why}; rebuild it with "
                f"`vibepiper materialize {name} --force`",
                file=sys.stderr,
            )


def _open(given: Opener) -> Any:
    """The dataset `given` stands for (None: no data)."""
    return given() if callable(given) else given


def run_query(
    catalog: Catalog,
    asset_data: Tables,
    sql: str,
    quarantine_data: Tables | None = None,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of `sql`; a SQL error is a UsageError naming the problem."""
    found: list[str] = []
    rows: list[tuple[Any, ...]] = []

    def collect(names: list[str], batches: Batches) -> None:
        found.extend(names)
        for batch in batches:
            rows.extend(batch)

    stream_query(catalog, asset_data, sql, collect, quarantine_data)
    return found, rows


def stream_query(
    catalog: Catalog,
    asset_data: Tables,
    sql: str,
    consume: Consumer,
    quarantine_data: Tables | None = None,
    *,
    timeout: float | None = None,
    iso: bool | None = None,
) -> None:
    """Run `sql`, one reading statement, and call `consume(names, batches)` with its
    result, in a worker thread; Ctrl-C (KeyboardInterrupt) or `timeout` seconds stop it
    at once. A statement that writes, or more than one, is a UsageError.

    With `iso` set, date, time and timestamp columns come as DuckDB writes them (full
    precision, 'infinity'), with a 'T' between date and time if `iso` is true.
    """
    with engine.noticing_interrupts():
        try:
            named = _named_in(sql)
            with sandbox(catalog, _only(asset_data, named), _only(quarantine_data, named)) as con:
                statement = _checked(con, sql)
                stop = threading.Event()

                def work() -> None:
                    _execute(con, statement, consume, stop, iso)

                _supervise(con, work, stop, timeout)
        except Exception as exc:  # DuckDB's form of a Ctrl-C during the set-up
            engine.raise_if_interrupted(exc)
            raise


def _named_in(sql: str) -> set[str] | None:
    """The table names `sql` mentions (lower case), from DuckDB's parse tree (nothing is
    bound or run); None when they cannot be known: not one SELECT-like statement DuckDB
    can serialize, no table named (SHOW TABLES), or a question about the tables
    themselves (information_schema, duckdb_tables(), pragma_...)."""
    import json

    con = engine.connect()
    try:
        con.execute("SET enable_external_access = false")
        row = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()
        tree = json.loads(row[0]) if row else None
    except Exception as exc:  # DuckDB's own errors, and whatever a hostile text may cause
        engine.raise_if_interrupted(exc)
        return None
    finally:
        con.close()
    if not isinstance(tree, dict) or tree.get("error") is not False:
        return None
    names: set[str] = set()
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if node.get("type") == "BASE_TABLE":
                names.add(str(node.get("table_name", "")).lower())
                if str(node.get("schema_name", "")).lower() in SYSTEM_SCHEMAS:
                    return None
            if str(node.get("function_name", "")).lower().startswith(SYSTEM_FUNCTIONS):
                return None
            stack.extend(node.values())
    return names or None


def _only(tables: Tables | None, named: set[str] | None) -> Tables:
    """The assets of `tables` that a query naming `named` may read: a view costs a look
    at the asset's files (milliseconds), so a query of one asset, or of the catalog, does
    not pay for thousands of them."""
    if tables is None or named is None:
        return tables or {}
    return {name: data for name, data in tables.items() if name.lower() in named}


def _checked(con: Any, sql: str) -> Any:
    """The one reading statement of `sql`, parsed by DuckDB."""
    import duckdb

    try:
        statements = list(con.extract_statements(sql))
        for statement in statements:
            _refuse_writes(con, statement)
    except duckdb.Error as exc:
        raise _sql_error(exc) from None
    if not statements:
        raise UsageError("the query has no statement", "give a SELECT statement")
    if len(statements) > 1:
        raise UsageError(
            f"query failed: {len(statements)} statements given, and query runs one",
            "run each with its own `vibepiper query`, or join their rows with UNION ALL",
        )
    return statements[0]


def _refuse_writes(con: Any, statement: Any) -> None:
    kind = statement.type.name
    if kind not in READING:
        raise UsageError(
            f"query failed: {_typed(statement)} statements are refused: "
            + REFUSED_BECAUSE.get(kind, WRITES),
            "use SELECT (or WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN, PRAGMA)",
        )
    if kind == "EXPLAIN":  # EXPLAIN ANALYZE runs what it explains: judge that statement
        inner = _explained(statement.query)
        found = list(con.extract_statements(inner)) if inner.strip() else []
        if len(found) != 1:
            raise UsageError(
                "query failed: EXPLAIN is allowed of one reading statement only",
                "write EXPLAIN [ANALYZE] SELECT ...",
            )
        _refuse_writes(con, found[0])


def _typed(statement: Any) -> str:
    """The kind of `statement` as it was typed (INSTALL, USE), not as DuckDB's type names
    it (LOAD, SET): its first keyword (two for FORCE INSTALL); a WITH ...'s type."""
    words = [(word.upper(), kind) for _, word, kind in _tokens(statement.query)[:2]]
    if not words or words[0][1] != "keyword" or words[0][0] == "WITH":
        return str(statement.type.name)
    if words[0][0] == "FORCE" and len(words) > 1:
        return f"FORCE {words[1][0]}"
    return words[0][0]


def _tokens(text: str) -> list[tuple[int, str, str]]:
    """The tokens of `text` but comments, by DuckDB's tokenizer: (offset, text, kind)."""
    import duckdb

    tokens = [(offset, kind) for offset, kind in duckdb.tokenize(text) if kind.name != "comment"]
    ends = [*(offset for offset, _ in tokens[1:]), len(text)]
    return [
        (start, text[start:end].strip(), kind.name)
        for (start, kind), end in zip(tokens, ends, strict=True)
    ]


def _explained(text: str) -> str:
    """The statement after `EXPLAIN [ANALYZE] [(options)]` in `text`."""
    tokens = _tokens(text)
    words = [word for _, word, _ in tokens]
    i = 1  # words[0] is EXPLAIN
    if i < len(words) and words[i].upper() in ("ANALYZE", "ANALYSE"):
        i += 1
    if i < len(words) and words[i].startswith("("):
        depth = 0
        while i < len(words):
            depth += words[i].count("(") - words[i].count(")")
            i += 1
            if depth <= 0:
                break
    return text[tokens[i][0] :] if i < len(tokens) else ""


def _execute(con: Any, statement: Any, consume: Consumer, stop: Any, iso: bool | None) -> None:
    import duckdb

    try:
        con.execute(_as_text(con, statement, iso) if iso is not None else statement)
        names = [d[0] for d in con.description] if con.description else []

        def batches() -> Batches:
            while not stop.is_set():
                rows = con.fetchmany(BATCH)
                if not rows:
                    return
                yield rows

        consume(names, batches())
        if con.description:
            con.abort()  # a consumer that stopped early leaves rows unread
    except duckdb.InterruptException:
        if not stop.is_set():
            raise VibePiperError("query interrupted", "run it again") from None
    except duckdb.OutOfMemoryException as exc:
        raise VibePiperError(
            f"query ran out of memory: {_first(exc)}",
            "add a LIMIT or aggregate more; --csv and --json stream rows without a limit",
        ) from None
    except MemoryError:
        raise VibePiperError(
            "query ran out of memory", "add a LIMIT or aggregate more, or use --csv or --json"
        ) from None
    except duckdb.Error as exc:
        if stop.is_set():
            return
        raise _sql_error(exc) from None


def _as_text(con: Any, statement: Any, iso: bool) -> Any:
    """A SELECT whose date/time columns DuckDB renders as text; other statements as is."""
    if statement.type.name != "SELECT":
        return statement
    relation = con.sql(statement.query)  # binds the SELECT, runs nothing
    types = [str(t) for t in relation.types]
    if not any(t.startswith(TEMPORAL) for t in types):
        return statement
    columns = []
    for i, (name, kind) in enumerate(zip(relation.columns, types, strict=True), start=1):
        value = f"#{i}"
        if kind.startswith(TEMPORAL):
            value = f"CAST(#{i} AS VARCHAR)"
            if iso:  # '2026-01-02 03:04:05.123456789' -> '2026-01-02T03:04:05.123456789'
                value = rf"regexp_replace({value}, '^(-?\d+-\d\d-\d\d) (\d)', '\1T\2')"
        columns.append(f"{value} AS {quote(name)}")
    body = statement.query.strip().rstrip(";")
    return f"SELECT {', '.join(columns)} FROM (\n{body}\n) AS _vp_result"


def _supervise(con: Any, work: Callable[[], None], stop: Any, timeout: float | None) -> None:
    """Run `work` in a thread; on Ctrl-C or after `timeout` seconds, interrupt DuckDB.

    The worker says it is done with an event of its own: `Thread.join` interrupted by
    Ctrl-C may mark a thread that is still running as stopped (CPython 3.11), and closing
    the connection under a running query fails (or, at exit, waits for it).
    """
    failure: list[BaseException] = []
    done = threading.Event()

    def target() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=target, name="vibepiper-query", daemon=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        worker.start()
        while not done.wait(0.05):
            if deadline is not None and time.monotonic() >= deadline:
                _halt(con, stop, done)
                raise QueryTimeoutError(
                    f"query stopped after its --timeout of {timeout:g} s",
                    "narrow it (WHERE, LIMIT), or raise --timeout",
                )
    except KeyboardInterrupt:
        _halt(con, stop, done)
        raise
    if failure:
        raise failure[0]


def _halt(con: Any, stop: Any, done: threading.Event, patience: float = 5.0) -> None:
    """Interrupt DuckDB until the worker is done (or, stuck writing to a full pipe, say,
    for `patience` seconds: it is a daemon thread, it dies with the process)."""
    stop.set()
    deadline = time.monotonic() + patience
    while not done.is_set() and time.monotonic() < deadline:
        con.interrupt()
        done.wait(0.05)


def _sql_error(exc: Exception) -> UsageError:
    """DuckDB's error in one line; what the sandbox has to do with it, if anything."""
    text = f"{type(exc).__name__} {exc}"
    why = next((hint for words, hint in SANDBOX_HINTS.items() if words in text), "")
    return UsageError(f"query failed: {_first(exc)}", f"{why}; {HELP}" if why else HELP)


def _first(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
