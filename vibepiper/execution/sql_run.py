"""Computing with DuckDB: SQL assets, the checks of outputs too large for pandas, and the
relations and Arrow streams Python assets may take and give instead of DataFrames.

A SQL asset's query runs in a sandboxed connection: each input is a view over its
published Parquet file(s), then external access is turned off with only those files
allowed, and the configuration is locked, so the query cannot read another file, write
one, attach a database or install an extension. Its result streams from DuckDB as Arrow
batches into the store (`Store.stage_stream`): page checksums, the rows hashed as they
pass, one row group in memory at a time. DuckDB's memory limit and spill folder are set,
so a query over data larger than memory spills instead of failing.

Checks on such an output run as SQL over its staged file, in a sandboxed connection of
the same kind (`vibepiper.validation.sql_checks`): no check loads it into pandas.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vibepiper import engine
from vibepiper.storage.parquet_files import Streamed
from vibepiper.storage.store import Staged
from vibepiper.text import first_line

BATCH_ROWS = 100_000  # rows per Arrow batch DuckDB hands over


@dataclass(frozen=True)
class EngineSettings:
    """`[tool.vibepiper.sql]`: DuckDB's memory limit, threads and spill folder."""

    temp_directory: str
    memory_limit: str | None = None
    threads: int | None = None

    @classmethod
    def of(cls, table: Mapping[str, Any], home: Path, root: Path) -> EngineSettings:
        spill = table.get("temp_directory")
        folder = (root / str(spill)).resolve() if spill else home / "sql-spill"
        return cls(str(folder), table.get("memory_limit"), table.get("threads"))


class QueryError(Exception):
    """A SQL asset's query failed in DuckDB (its message, one line)."""


def literal(text: str) -> str:
    """`text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def identifier(name: str) -> str:
    """`name` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def configure(con: Any, settings: EngineSettings, zone: str = "UTC") -> None:
    """Apply `settings` (spill folder, memory limit, threads) and the time zone `zone`
    (zone-less timestamps are wall-clock times in it: no result depends on the machine's)
    to a DuckDB connection."""
    Path(settings.temp_directory).mkdir(parents=True, exist_ok=True)
    con.execute(f"SET temp_directory = {literal(settings.temp_directory)}")
    if settings.memory_limit:
        con.execute(f"SET memory_limit = {literal(settings.memory_limit)}")
    if settings.threads:
        con.execute(f"SET threads = {int(settings.threads)}")
    con.execute(f"SET TimeZone = {literal(zone)}")


@dataclass
class Sandbox:
    """A DuckDB connection that reads only the tables given to it (see the module doc)."""

    tables: Mapping[str, Sequence[Path]]
    settings: EngineSettings
    macros: Mapping[str, str] = field(default_factory=dict)  # name -> SQL literal value
    # the session's time zone: zone-less timestamps are wall-clock times in it (a time
    # partitioning's zone; else UTC, so that no result depends on the machine's zone)
    zone: str = "UTC"
    # rows in their files' order (samples of failing rows: the first ones); a query that
    # computes an asset does without it, for less memory (its data version ignores order)
    keep_order: bool = False
    con: Any = None

    def __enter__(self) -> Any:
        con = engine.connect()
        try:
            self._configure(con)
        except BaseException:
            con.close()
            raise
        self.con = con
        return con

    def __exit__(self, *exc: object) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None

    def _configure(self, con: Any) -> None:
        configure(con, self.settings, self.zone)
        con.execute(f"SET preserve_insertion_order = {str(self.keep_order).lower()}")
        allowed: list[str] = []
        for name, paths in self.tables.items():
            files = [str(p) for p in paths]
            allowed += files
            listed = ", ".join(literal(f) for f in files)
            con.execute(
                f"CREATE VIEW {identifier(name)} AS SELECT * FROM "
                f"read_parquet([{listed}], union_by_name = true)"
            )
        for name, value in self.macros.items():
            con.execute(f"CREATE MACRO {identifier(name)}() AS {value}")
        con.execute(f"SET allowed_paths = [{', '.join(literal(f) for f in allowed)}]")
        con.execute(f"SET allowed_directories = [{literal(self.settings.temp_directory)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")


def partition_macros(key: str, start: datetime | None, end: datetime | None) -> dict[str, str]:
    """`partition_key()`, `partition_start()` and `partition_end()` for a query that
    computes one partition (its window's ends as timestamps with a time zone)."""
    macros = {"partition_key": literal(key)}
    if start is not None and end is not None:
        macros["partition_start"] = f"{literal(start.isoformat())}::TIMESTAMPTZ"
        macros["partition_end"] = f"{literal(end.isoformat())}::TIMESTAMPTZ"
    return macros


@contextlib.contextmanager
def query_stream(con: Any, query: str, asset: str) -> Iterator[Any]:
    """The result of `query` as a pyarrow RecordBatchReader; a QueryError naming `asset`,
    with DuckDB's message, if it fails (as it starts or as it streams)."""
    import duckdb

    try:
        reader = con.sql(query).to_arrow_reader(BATCH_ROWS)
    except duckdb.Error as exc:
        engine.raise_if_interrupted(exc)
        raise QueryError(f"query of asset '{asset}' failed: {first_line(exc)}") from None
    try:
        yield Errors(reader, asset)
    finally:
        reader.close()


class Errors:
    """A RecordBatchReader whose DuckDB errors, raised as it streams, are QueryErrors."""

    def __init__(self, reader: Any, asset: str = "") -> None:
        self.reader = reader
        self.schema = reader.schema
        self.asset = asset

    def __iter__(self) -> Iterator[Any]:
        import duckdb

        try:
            yield from self.reader
        except duckdb.Error as exc:
            engine.raise_if_interrupted(exc)
            owner = f"query of asset '{self.asset}'" if self.asset else "the DuckDB relation"
            raise QueryError(f"{owner} failed: {first_line(exc)}") from None


def row_count(path: Path) -> int:
    """How many rows a Parquet file holds (its footer only)."""
    import pyarrow.parquet as pq

    return int(pq.read_metadata(path).num_rows)


def file_schema(path: Path) -> Any:
    """The Arrow schema of a Parquet file (its footer only)."""
    import pyarrow.parquet as pq

    return pq.read_schema(path)


def window_problem(
    con: Any, table: str, column: str, start: datetime, end: datetime
) -> tuple[int, str] | None:
    """How many rows of `table` have `column` outside [start, end), as `window_outcome`
    judges a frame; None if the column is missing."""
    names = [r[0] for r in con.execute(f"DESCRIBE {identifier(table)}").fetchall()]
    if column not in names:
        return None
    [(kind,)] = con.execute(
        f"SELECT typeof({identifier(column)}) FROM {identifier(table)} LIMIT 0"
    ).fetchall() or [("",)]
    zoned = "WITH TIME ZONE" in str(kind).upper()
    low, high = (start, end) if zoned else (_wall(start), _wall(end))
    cast = "TIMESTAMPTZ" if zoned else "TIMESTAMP"
    [(count,)] = con.execute(
        f"SELECT count(*) FILTER (WHERE {identifier(column)} IS NULL "
        f"OR {identifier(column)} < ?::{cast} OR {identifier(column)} >= ?::{cast}) "
        f"FROM {identifier(table)}",
        [low.isoformat(), high.isoformat()],
    ).fetchall()
    return int(count), str(kind)


def _wall(moment: datetime) -> datetime:
    """A zoned moment as its zone's wall-clock time (zone-less values are read in the
    partitioning's zone)."""
    return moment.replace(tzinfo=None)


class Stream:
    """An asset's output given as a stream: a DuckDB relation or an Arrow reader."""

    def __init__(self, value: Any) -> None:
        self.value = value

    @contextlib.contextmanager
    def opened(self) -> Iterator[Any]:
        value = self.value
        if hasattr(value, "to_arrow_reader") and not hasattr(value, "read_next_batch"):
            reader = value.to_arrow_reader(BATCH_ROWS)  # a DuckDB relation
            try:
                yield Errors(reader)
            finally:
                reader.close()
        else:
            yield value


@dataclass(frozen=True)
class StreamedOutput:
    """A streamed output, staged as it came."""

    staged: Staged
    written: Streamed
