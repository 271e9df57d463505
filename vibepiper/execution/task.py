"""One asset's computation: call the function (with retries), check what it returned,
validate it, hash it and stage it as a Parquet file. A task never touches the catalog.

`run_job` is what every executor runs, in this process or in a worker: it reads the
inputs a `Job` names (from memory or the Parquet store), runs the task with its log lines
captured, and hands back a `TaskOutcome` small enough to send between processes.
"""

from __future__ import annotations

import contextlib
import inspect
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vibepiper import engine
from vibepiper.definitions.asset import AssetDef
from vibepiper.definitions.check import CheckDef
from vibepiper.definitions.context import Context
from vibepiper.definitions.expect import Severity
from vibepiper.errors import AssetNotMaterializedError, VibePiperError
from vibepiper.execution import sql_run
from vibepiper.execution.logs import LogLine, capture
from vibepiper.execution.sql_run import EngineSettings
from vibepiper.storage.fidelity import Stored, UnstorableOutput, for_storage, to_frame
from vibepiper.storage.parquet_files import Streamed, UnstorableStream, streamed_file
from vibepiper.storage.store import Staged, Store
from vibepiper.text import first_line
from vibepiper.units import Unit
from vibepiper.validation.expectations import UpstreamReader
from vibepiper.validation.outcome import CheckOutcome, window_outcome
from vibepiper.validation.validate import has_checks, validate
from vibepiper.versioning.data_version import table_version

if TYPE_CHECKING:
    import pandas as pd


class OutputError(Exception):
    """The asset function returned something that cannot be stored as a table."""


class SourceReadError(Exception):
    """A source file exists but cannot be read as a table (names the asset and the file)."""


class Interrupted(BaseException):
    """Raised into a task that must stop now: its timeout passed, or the run was cancelled.

    A BaseException, so that an asset's own `except Exception` cannot swallow it.
    """


@dataclass(frozen=True)
class Job:
    """What a worker needs to compute one asset; small, and picklable."""

    asset: str
    materialization_id: str
    run_id: str
    project_dir: Path
    inputs: dict[str, tuple[str, str]]  # parameter -> (asset, data version)
    versions: dict[str, str]  # every upstream asset that has data -> the version this run reads
    data_version: str | None = None  # a source's file hash
    timeout: float | None = None
    code_version: str | None = None  # what the run recorded (a worker checks it)
    code_parts: dict[str, str] | None = None
    revalidate: str | None = None  # validate this stored version again instead of computing
    config: dict[str, Any] = field(default_factory=dict)  # configuration overrides (a worker
    # applies them to the asset it imported; the run's own asset already has them)
    partition: str = ""  # the partition it computes (SPEC §7; "": the whole asset)
    # parameter -> the (key, data version) of each partition of a partitioned input it
    # reads, concatenated in this order (instead of `inputs`' one version)
    parts: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    engine: EngineSettings | None = None  # DuckDB's settings, for SQL and streamed data

    @property
    def unit(self) -> Unit:
        return Unit(self.asset, self.partition)


@dataclass
class TaskOutcome:
    """What a task hands back to the run: a staged file, or why there is none.

    `frame` is kept only when the task ran in the run's process: frames never travel
    between processes (a worker's output travels as the staged Parquet file).
    """

    frame: pd.DataFrame | None = None
    staged: Staged | None = None
    data_version: str | None = None
    row_count: int | None = None
    attempts: int = 0
    message: str = ""
    error: str | None = None
    checks: tuple[CheckOutcome, ...] = ()
    check_error: str = ""  # the output fails as a whole (e.g. too many rows quarantined)
    quarantined: int | None = None  # rows removed by quarantine
    quarantine: pd.DataFrame | None = field(default=None, repr=False)  # until written
    unchanged: bool = False  # revalidated data that stays as it is stored: nothing to write
    columns: tuple[tuple[str, str], ...] = ()  # the output's columns and their dtypes
    # a SQL asset's column lineage: (column, upstream asset, upstream column)
    column_lineage: tuple[tuple[str, str | None, str | None], ...] = ()
    logs: list[LogLine] = field(default_factory=list)
    # In this process only (`write_behind`): writes the output, which is not staged yet;
    # the executor calls it (in another thread) before handing the outcome over.
    write: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def rejected(self) -> bool:
        return bool(self.check_error) or any(c.blocking for c in self.checks)


Reader = Callable[[Unit, str], "pd.DataFrame"]  # (unit, data version) -> its data


def run_job(
    job: Job,
    defn: AssetDef,
    checks: tuple[CheckDef, ...],
    store: Store,
    read: Reader,
    on_state: Callable[[str], None] | None = None,
    lines: list[LogLine] | None = None,
    sink: Callable[[LogLine], None] | None = None,
    *,
    write_behind: bool = False,
) -> TaskOutcome:
    """Read the job's inputs, then compute, validate and stage the asset, keeping what it
    logs (in `lines`, if given, as it comes; and handed to `sink`). Never raises for a
    failure of the asset. With `write_behind`, the output is left for `outcome.write`."""

    def upstream(other: str) -> pd.DataFrame:
        if other not in job.versions:
            raise AssetNotMaterializedError(
                f"asset '{other}' has never been materialized",
                f"run `vibepiper materialize {other}`",
            )
        return read(Unit(other), job.versions[other])

    with capture(lines, sink) as lines, contextlib.ExitStack() as opened:
        if defn.is_sql or (job.revalidate is not None and store_streamed(store, job, defn)):
            outcome = TaskOutcome()
            try:
                run_sql_job(job, defn, checks, store, on_state, outcome)
            except Interrupted as exc:
                message = str(exc)
                return TaskOutcome(
                    message=message, error=message, attempts=outcome.attempts, logs=lines
                )
            outcome.logs = lines
            return outcome
        given = None
        inputs: dict[str, Any] = {}
        try:
            if job.revalidate is not None:
                given = read(job.unit, job.revalidate)
            else:
                for param, (up, v) in job.inputs.items():
                    kind = defn.read_as.get(param)
                    if kind is None:
                        inputs[param] = read(Unit(up), v)
                    else:
                        paths = [store.local_path(Unit(up), v)]
                        inputs[param] = _streamed_input(kind, paths, job, opened)
                for param, parts in job.parts.items():
                    up = defn.inputs[param]
                    kind = defn.read_as.get(param)
                    if kind is None:
                        inputs[param] = _concatenated([read(Unit(up, k), v) for k, v in parts])
                    else:
                        paths = [store.local_path(Unit(up, k), v) for k, v in parts]
                        inputs[param] = _streamed_input(kind, paths, job, opened)
        except VibePiperError as exc:
            return TaskOutcome(message=str(exc), error=str(exc), logs=lines)
        partition = defn.partitions.partition(job.partition) if defn.partitions else None
        context = Context(
            job.run_id, job.asset, job.project_dir, dict(defn.config), partition=partition
        )
        outcome = TaskOutcome()
        try:
            run_task(
                defn,
                inputs,
                context,
                store,
                materialization_id=job.materialization_id,
                checks=checks,
                upstream=upstream,
                data_version=job.data_version,
                on_state=on_state,
                write_behind=write_behind,
                outcome=outcome,
                given=given,
                stored_version=job.revalidate,
                job=job,
            )
        except Interrupted as exc:  # timed out or cancelled: keep what it logged until then
            message = str(exc)
            return TaskOutcome(
                message=message, error=message, attempts=outcome.attempts, logs=lines
            )
    outcome.logs = lines
    return outcome


def _concatenated(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Partitions of one input as one frame, in key order (one partition: as it is)."""
    if len(frames) == 1:
        return frames[0]
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def run_task(
    defn: AssetDef,
    inputs: Mapping[str, Any],
    context: Context,
    store: Store,
    *,
    materialization_id: str,
    checks: tuple[CheckDef, ...] = (),
    upstream: UpstreamReader | None = None,
    data_version: str | None = None,
    on_state: Callable[[str], None] | None = None,
    write_behind: bool = False,
    outcome: TaskOutcome | None = None,
    given: pd.DataFrame | None = None,
    stored_version: str | None = None,
    job: Job | None = None,
) -> TaskOutcome:
    """Compute `defn` from `inputs` (parameter name -> DataFrame), validate and stage it.

    The output is staged whether or not it passed its checks: the run publishes it
    or keeps it as rejected. `data_version` is given for sources (the file's hash). Rows
    removed by quarantine are kept under the materialization's id. With `write_behind`,
    staging is left to `outcome.write()`, so that the caller can write one output while
    the next asset computes. The outcome is filled in as the task goes (`outcome`, if
    given: what it says so far, such as the attempts made, outlives an interruption).
    With `given` (its data as stored, version `stored_version`), nothing is computed:
    that data is validated again, and written only if validation changed it (quarantine).
    """
    outcome = TaskOutcome() if outcome is None else outcome
    part = context.partition
    unit = Unit(defn.name, part.key if part is not None else "")
    if given is None:

        def stage(stream: Any) -> Any:
            return store.stage_stream(unit, stream, data_version=data_version)

        frame = _compute_with_retries(defn, inputs, context, outcome, on_state, stage)
    else:
        frame = given
    if frame is None:
        return outcome
    if isinstance(frame, _StreamedOutput):  # written as it came: validated as SQL
        _finish_stream(defn, checks, store, job, frame, outcome, on_state, part)
        return outcome
    try:
        stored = for_storage(defn.name, frame)  # what every reader will get back
        if has_checks(defn, checks):
            if on_state is not None:
                on_state("validating")
            stored = _validated(defn, checks, stored, upstream, outcome)
            if outcome.quarantined is not None and outcome.quarantine is not None:
                store.keep_quarantine(unit, materialization_id, outcome.quarantine)
                outcome.quarantine = None
        if defn.time_column and part is not None and part.start is not None:
            window = window_outcome(stored.frame, defn.time_column, part.start, part.end)
            outcome.checks = (*outcome.checks, window)
        table, frame = stored.table, stored.frame
        content = table_version(table)
        version = data_version or content
    except UnstorableOutput as exc:
        outcome.message, outcome.error = str(exc), str(exc)
        return outcome
    except Exception as exc:
        return _not_stored(outcome, exc)

    def write() -> None:
        outcome.write = None
        try:
            outcome.staged = store.stage(unit, version, table, content=content)
        except Exception as exc:
            _not_stored(outcome, exc)

    outcome.frame, outcome.data_version, outcome.row_count = frame, version, len(frame)
    outcome.columns = tuple((str(c), str(t)) for c, t in frame.dtypes.items())
    if stored_version is not None and version == stored_version:
        outcome.unchanged = True  # validated again, as it is stored
        return outcome
    outcome.write = write
    if not write_behind:
        write()
    return outcome


def _validated(
    defn: AssetDef,
    checks: tuple[CheckDef, ...],
    stored: Stored,
    upstream: UpstreamReader | None,
    outcome: TaskOutcome,
) -> Stored:
    """Validate what readers will get back. Validation may change the frame (a schema's
    coercion, quarantine): the changed frame is stored, and if it would not read back as
    it is, what reads back is validated again, so that checks always judged the data
    that is published."""
    validation = validate(defn, checks, stored.frame, upstream or _no_upstream)
    outcome.checks, outcome.check_error = validation.outcomes, validation.error
    if validation.quarantined is not None:
        outcome.quarantined = len(validation.quarantined)
        outcome.quarantine = validation.quarantined
    if validation.frame is stored.frame:
        return stored
    again = for_storage(defn.name, validation.frame)
    if again.frame is not validation.frame:
        second = validate(defn, checks, again.frame, upstream or _no_upstream)
        outcome.checks, outcome.check_error = second.outcomes, second.error
        if second.frame is not again.frame:
            again = for_storage(defn.name, second.frame)
    return again


def _not_stored(outcome: TaskOutcome, exc: Exception) -> TaskOutcome:
    outcome.message = f"cannot store the output: {type(exc).__name__}: {first_line(exc)}"
    outcome.error = traceback.format_exc()
    outcome.frame = outcome.data_version = outcome.row_count = None
    outcome.columns = ()
    return outcome


def _no_upstream(name: str) -> Any:
    raise LookupError(f"asset '{name}' is not available here")


def _compute_with_retries(
    defn: AssetDef,
    inputs: Mapping[str, Any],
    context: Context,
    outcome: TaskOutcome,
    on_state: Callable[[str], None] | None,
    stage: Callable[[Any], Any],
) -> Any:
    """The output (a DataFrame, or a `_StreamedOutput` already staged), or None."""

    def attempt(number: int) -> Any:
        result = _normalize(defn, _call(defn, inputs, context, number))
        if isinstance(result, _Stream):  # written within the attempt: a retry redoes it
            with result.opened() as stream:
                return _StreamedOutput(*stage(stream))
        return result

    return _with_retries(defn, context.log, outcome, on_state, attempt)


def _with_retries(
    defn: AssetDef,
    log: Any,
    outcome: TaskOutcome,
    on_state: Callable[[str], None] | None,
    attempt: Callable[[int], Any],
) -> Any:
    """What `attempt` returns, calling it again after a failure while `retries` last;
    None after the last failure (`outcome` then says why)."""
    for number in range(1, defn.retries + 2):
        outcome.attempts = number
        try:
            return attempt(number)
        except (OutputError, UnstorableStream) as exc:
            outcome.message, outcome.error = str(exc), str(exc)
            return None  # the same code returns the same wrong type: no retry
        except Exception as exc:
            own = isinstance(exc, SourceReadError | sql_run.QueryError)  # named already
            outcome.message = str(exc) if own else f"{type(exc).__name__}: {first_line(exc)}"
            outcome.error = traceback.format_exc()
            if number <= defn.retries:
                delay = defn.retry_delay * 2 ** (number - 1)
                log.warning(
                    "attempt %d of %d failed: %s; retrying in %.3g s",
                    number,
                    defn.retries + 1,
                    outcome.message,
                    delay,
                )
                if on_state is not None:
                    on_state("retrying")
                time.sleep(delay)
    return None


def _call(defn: AssetDef, inputs: Mapping[str, Any], context: Context, attempt: int) -> Any:
    if defn.source_reader is not None:
        shown = defn.source_path_of(context.partition.key if context.partition else "")
        path = context.project_dir / shown
        try:
            return defn.source_reader(str(path))
        except Exception as exc:
            raise SourceReadError(
                f"cannot read source file {shown} of asset '{defn.name}': "
                f"{type(exc).__name__}: {first_line(exc)}"
            ) from exc
    kwargs = {**defn.config, **inputs}  # configuration values: defaults or overrides
    if defn.takes_context:
        kwargs["context"] = Context(
            context.run_id,
            context.asset,
            context.project_dir,
            dict(defn.config),
            attempt,
            context.partition,
        )
    result = defn.fn(**kwargs)
    if inspect.iscoroutine(result):
        import asyncio

        result = asyncio.run(result)
    return result


def _normalize(defn: AssetDef, result: Any) -> Any:
    """The output as a DataFrame, or as a `_Stream` (a DuckDB relation, an Arrow
    RecordBatchReader); an OutputError for anything else."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(result, pa.RecordBatchReader):
        return _Stream(result)
    if type(result).__module__.startswith("duckdb") and hasattr(result, "to_arrow_reader"):
        return _Stream(result)
    if isinstance(result, pa.Table):
        result = to_frame(result)
    if not isinstance(result, pd.DataFrame):
        raise OutputError(
            f"asset '{defn.name}' returned {type(result).__module__}.{type(result).__qualname__}"
            ", not a pandas.DataFrame, a pyarrow.Table or RecordBatchReader, or a DuckDB "
            "relation"
        )
    bad = [c for c in result.columns if not isinstance(c, str)]
    if bad:
        raise OutputError(
            f"asset '{defn.name}' returned non-string column names {bad[:5]}; "
            "name every column with a string (df.columns = [...])"
        )
    if len(result.columns) == 0:
        raise OutputError(
            f"asset '{defn.name}' returned a frame with no columns; return at least one column"
        )
    duplicated = sorted(set(result.columns[result.columns.duplicated()]))
    if duplicated:
        raise OutputError(
            f"asset '{defn.name}' returned duplicate column names {duplicated[:5]}"
            "; rename or drop them"
        )
    return result


# -- data that does not pass through pandas (SPEC §10) -----------------------------------


class _Stream:
    """An asset's output given as a stream: a DuckDB relation or an Arrow reader."""

    def __init__(self, value: Any) -> None:
        self.value = value

    @contextlib.contextmanager
    def opened(self) -> Iterator[Any]:
        value = self.value
        if hasattr(value, "to_arrow_reader") and not hasattr(value, "read_next_batch"):
            reader = value.to_arrow_reader(sql_run.BATCH_ROWS)  # a DuckDB relation
            try:
                yield sql_run.Errors(reader)
            finally:
                reader.close()
        else:
            yield value


@dataclass(frozen=True)
class _StreamedOutput:
    """A streamed output, staged as it came."""

    staged: Staged
    written: Streamed


def _streamed_input(kind: str, paths: list[Path], job: Job, opened: contextlib.ExitStack) -> Any:
    """An input as `read_as` asks: a DuckDB relation (on a connection of its own, closed
    with the task), a pyarrow RecordBatchReader or a pyarrow dataset of its file(s)."""
    files = [str(p) for p in paths]
    if kind == "relation":
        con = engine.connect()
        opened.callback(con.close)
        settings = job.engine or _default_engine()
        Path(settings.temp_directory).mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = {sql_run.literal(settings.temp_directory)}")
        con.execute("SET TimeZone = 'UTC'")  # no result depends on the machine's zone
        if settings.memory_limit:
            con.execute(f"SET memory_limit = {sql_run.literal(settings.memory_limit)}")
        return con.read_parquet(files, union_by_name=True)
    import pyarrow.dataset as ds

    verified = ds.ParquetFileFormat(
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(page_checksum_verification=True)
    )
    dataset = ds.dataset(files, format=verified)
    if kind == "dataset":
        return dataset
    return dataset.scanner(batch_size=sql_run.BATCH_ROWS).to_reader()


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

    def attempt(number: int) -> _StreamedOutput:
        with (
            sql_run.Sandbox(tables, settings, macros, zone) as con,
            sql_run.query_stream(con, query, defn.name) as stream,
        ):
            return _StreamedOutput(*store.stage_stream(unit, stream))

    found = _with_retries(defn, log, outcome, on_state, attempt)
    if found is None:
        return
    outcome.column_lineage = _column_lineage(defn, tables, found.written.schema, log)
    _finish_stream(defn, checks, store, job, found, outcome, on_state, part)


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


def _finish_stream(
    defn: AssetDef,
    checks: tuple[CheckDef, ...],
    store: Store,
    job: Job | None,
    found: _StreamedOutput,
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
        _not_stored(outcome, exc)


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
