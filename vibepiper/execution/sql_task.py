"""Computing what does not pass through pandas (SPEC §10): a SQL asset's job, a Python
asset's inputs given as DuckDB relations or Arrow streams, and the validation, as SQL, of
an output streamed into the store (a SQL asset's, or a Python asset's that returned a
stream). `task.run_job` hands these over; DuckDB's sandbox is `sql_run`'s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vibepiper import engine
from vibepiper.definitions.asset import AssetDef
from vibepiper.definitions.check import CheckDef
from vibepiper.definitions.expect import Severity
from vibepiper.errors import VibePiperError
from vibepiper.execution import sql_run
from vibepiper.execution.sql_run import EngineSettings, StreamedOutput
from vibepiper.execution.task import Job, TaskOutcome, not_stored, with_retries
from vibepiper.storage.parquet_files import streamed_file
from vibepiper.storage.store import Store
from vibepiper.units import Unit
from vibepiper.validation.outcome import CheckOutcome
from vibepiper.validation.validate import has_checks


def streamed_input(kind: str, paths: list[Path], job: Job, opened: contextlib.ExitStack) -> Any:
    """An input as `read_as` asks: a DuckDB relation (on a connection of its own, closed
    with the task), a pyarrow RecordBatchReader or a pyarrow dataset of its file(s)."""
    files = [str(p) for p in paths]
    if kind == "relation":
        con = engine.connect()
        opened.callback(con.close)
        sql_run.configure(con, job.engine or _default_engine())
        return con.read_parquet(files, union_by_name=True)
    import pyarrow.dataset as ds

    if kind == "dataset":
        verified = ds.ParquetFileFormat(
            default_fragment_scan_options=ds.ParquetFragmentScanOptions(
                page_checksum_verification=True
            )
        )
        return ds.dataset(files, format=verified)
    return _reader(files)


def _reader(files: list[str]) -> Any:
    """The files' rows as one RecordBatchReader, a row group at a time. (pyarrow's dataset
    scanner reads ahead of a slower consumer without bound: 2.2 GiB for 50,000,000 rows.)"""
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = pq.ParquetFile(files[0], pre_buffer=False, page_checksum_verification=True)

    def batches() -> Any:
        for number, path in enumerate(files):
            opened = (
                first
                if number == 0
                else pq.ParquetFile(path, pre_buffer=False, page_checksum_verification=True)
            )
            with opened:
                yield from opened.iter_batches(batch_size=sql_run.BATCH_ROWS)

    return pa.RecordBatchReader.from_batches(first.schema_arrow, batches())


def _default_engine() -> EngineSettings:
    """Without a project's settings (a task run alone): spill to the system's temp."""
    import tempfile

    return EngineSettings(str(Path(tempfile.gettempdir()) / "vibepiper-sql-spill"))


def store_streamed(store: Store, job: Job, defn: AssetDef) -> bool:
    """Whether the stored data `job` validates again was written from a stream (its
    checks then run as SQL over the file)."""
    if defn.is_sql:
        return True
    if job.revalidate is None:
        return False
    try:
        return streamed_file(store.local_path(job.unit, job.revalidate))
    except (VibePiperError, OSError):
        return False  # the frame path reports it


def run_sql_job(
    job: Job,
    defn: AssetDef,
    checks: tuple[CheckDef, ...],
    store: Store,
    on_state: Callable[[str], None] | None,
    outcome: TaskOutcome,
) -> None:
    """Compute a SQL asset with DuckDB into the store, then validate it as SQL (or, with
    `job.revalidate`, validate its stored data again); `outcome` says what came of it."""
    import logging

    settings = job.engine or _default_engine()
    unit = job.unit
    part = defn.partitions.partition(job.partition) if defn.partitions else None
    try:
        if job.revalidate is not None:
            path = store.local_path(unit, job.revalidate)
            outcome.data_version, outcome.unchanged = job.revalidate, True
            outcome.row_count = sql_run.row_count(path)
            if on_state is not None:
                on_state("validating")
            _validate_file(defn, checks, store, job, path, settings, outcome, part)
            return
        tables = _input_files(job, defn, store)
    except VibePiperError as exc:
        outcome.message = outcome.error = str(exc)
        return
    macros = sql_run.partition_macros(part.key, part.start, part.end) if part else {}
    zone = _zone(defn)
    log = logging.getLogger(f"vibepiper.asset.{defn.name}")
    query = str(defn.sql)

    def attempt(number: int) -> StreamedOutput:
        with (
            sql_run.Sandbox(tables, settings, macros, zone) as con,
            sql_run.query_stream(con, query, defn.name) as stream,
        ):
            return StreamedOutput(*store.stage_stream(unit, stream))

    found = with_retries(defn, log, outcome, on_state, attempt)
    if found is None:
        return
    outcome.column_lineage = _column_lineage(defn, tables, found.written.schema, log)
    finish_stream(defn, checks, store, job, found, outcome, on_state, part)


def _zone(defn: AssetDef) -> str:
    """The time zone a query of `defn` runs in: its time partitioning's, else UTC."""
    parts = defn.partitions
    return parts.tz if parts is not None and parts.is_time and parts.tz else "UTC"


def _input_files(job: Job, defn: AssetDef, store: Store) -> dict[str, list[Path]]:
    """Each input table's published file(s): one, or one per partition it reads."""
    tables = {param: [store.local_path(Unit(up), v)] for param, (up, v) in job.inputs.items()}
    for param, parts in job.parts.items():
        up = defn.inputs[param]
        tables[param] = [store.local_path(Unit(up, k), v) for k, v in parts]
    return tables


def finish_stream(
    defn: AssetDef,
    checks: tuple[CheckDef, ...],
    store: Store,
    job: Job | None,
    found: StreamedOutput,
    outcome: TaskOutcome,
    on_state: Callable[[str], None] | None,
    part: Any,
) -> None:
    """Record what a streamed output is, and validate its staged file as SQL."""
    written = found.written
    outcome.staged, outcome.data_version = found.staged, found.staged.data_version
    outcome.row_count = written.rows
    outcome.columns = tuple((f.name, str(f.type)) for f in written.schema)
    if not has_checks(defn, checks) and not (defn.time_column and part is not None):
        return
    if on_state is not None:
        on_state("validating")
    settings = (job.engine if job is not None else None) or _default_engine()
    try:
        path = store.staged_path(found.staged)
        _validate_file(defn, checks, store, job, path, settings, outcome, part)
    except Exception as exc:
        store.discard(found.staged)
        outcome.staged = None
        not_stored(outcome, exc)


def _validate_file(
    defn: AssetDef,
    checks: tuple[CheckDef, ...],
    store: Store,
    job: Job | None,
    path: Path,
    settings: EngineSettings,
    outcome: TaskOutcome,
    part: Any,
) -> None:
    """Run the asset's checks as SQL over its file (`outcome.checks`); the asset is
    rejected as a whole if some cannot run as SQL."""
    from vibepiper.validation.sql_checks import run_sql_checks, sql_problem

    owner = f"asset '{defn.name}'"
    problem = sql_problem(owner, defn.schema, defn.checks, quarantine=defn.quarantine)
    functions = [c.name for c in checks if c.sql is None]
    if functions and not problem:
        problem = (
            f"{owner}: check '{functions[0]}' is a Python function, which would load the "
            "data into pandas; write it as @check(asset=..., sql=...)"
        )
    if problem:
        outcome.check_error = f"its checks cannot run as SQL over its file: {problem}"
        return
    others = {}
    for other, version in (job.versions if job is not None else {}).items():
        if other != defn.name:
            others[other] = [store.local_path(Unit(other), version)]
    tables = {defn.name: [path], **others}
    queries = [(c.name, c.severity, str(c.sql)) for c in checks]
    with sql_run.Sandbox(tables, settings, zone=_zone(defn), keep_order=True) as con:
        found = run_sql_checks(
            con, defn.name, sql_run.file_schema(path), defn.schema, defn.checks, queries
        )
        if defn.time_column and part is not None and part.start is not None:
            found = (*found, _window(con, defn, part))
    outcome.checks = tuple(found)


def _window(con: Any, defn: AssetDef, part: Any) -> CheckOutcome:
    column = str(defn.time_column)
    name = f"time_column({column})"
    counted = sql_run.window_problem(con, defn.name, column, part.start, part.end)
    if counted is None:
        return CheckOutcome(name, Severity.ERROR, False, 0, f"column '{column}' is missing")
    count, _ = counted
    if not count:
        return CheckOutcome(name, Severity.ERROR, True)
    message = (
        f"{count} row{'s' if count != 1 else ''} outside the partition's window "
        f"[{part.start.isoformat()}, {part.end.isoformat()})"
    )
    return CheckOutcome(name, Severity.ERROR, False, count, message)


def _column_lineage(
    defn: AssetDef, tables: Mapping[str, list[Path]], schema: Any, log: Any
) -> tuple[tuple[str, str | None, str | None], ...]:
    """Which input columns each output column comes from (none if it cannot be traced:
    the asset does not fail for it)."""
    from vibepiper.definitions.sql_lineage import LineageError, column_lineage

    columns = {}
    for table, paths in tables.items():
        names: dict[str, None] = {}
        for path in paths:
            names.update(dict.fromkeys(sql_run.file_schema(path).names))
        columns[table] = list(names)
    try:
        traced = column_lineage(str(defn.sql), columns)
    except LineageError as exc:
        log.warning("no column lineage for asset '%s': %s", defn.name, exc)
        return ()
    if len(traced) != len(schema.names):
        log.warning(
            "no column lineage for asset '%s': %d columns traced, %d produced",
            defn.name,
            len(traced),
            len(schema.names),
        )
        return ()
    found: list[tuple[str, str | None, str | None]] = []
    for column, sources in zip(schema.names, traced, strict=True):
        found += [(column, table, source) for table, source in sorted(sources)]
        if not sources:
            found.append((column, None, None))  # a constant, a count: from no column
    return tuple(found)
