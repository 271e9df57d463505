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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vibepiper.definitions.asset import AssetDef
from vibepiper.definitions.check import CheckDef
from vibepiper.definitions.context import Context
from vibepiper.errors import AssetNotMaterializedError, VibePiperError
from vibepiper.execution import sql_run
from vibepiper.execution.logs import LogLine, capture
from vibepiper.execution.sql_run import EngineSettings
from vibepiper.storage.fidelity import Stored, UnstorableOutput, for_storage, to_frame
from vibepiper.storage.parquet_files import UnstorableStream
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
        from vibepiper.execution import sql_task

        if defn.is_sql or (
            job.revalidate is not None and sql_task.store_streamed(store, job, defn)
        ):
            outcome = TaskOutcome()
            try:
                sql_task.run_sql_job(job, defn, checks, store, on_state, outcome)
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
                        inputs[param] = sql_task.streamed_input(kind, paths, job, opened)
                for param, parts in job.parts.items():
                    up = defn.inputs[param]
                    kind = defn.read_as.get(param)
                    if kind is None:
                        inputs[param] = _concatenated([read(Unit(up, k), v) for k, v in parts])
                    else:
                        paths = [store.local_path(Unit(up, k), v) for k, v in parts]
                        inputs[param] = sql_task.streamed_input(kind, paths, job, opened)
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
    if isinstance(frame, sql_run.StreamedOutput):  # written as it came: validated as SQL
        from vibepiper.execution.sql_task import finish_stream

        finish_stream(defn, checks, store, job, frame, outcome, on_state, part)
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
        return not_stored(outcome, exc)

    def write() -> None:
        outcome.write = None
        try:
            outcome.staged = store.stage(unit, version, table, content=content)
        except Exception as exc:
            not_stored(outcome, exc)

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


def not_stored(outcome: TaskOutcome, exc: Exception) -> TaskOutcome:
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
    """The output (a DataFrame, or a `sql_run.StreamedOutput` already staged), or None."""

    def attempt(number: int) -> Any:
        result = _normalize(defn, _call(defn, inputs, context, number))
        if isinstance(result, sql_run.Stream):  # written within the attempt: a retry redoes it
            with result.opened() as stream:
                return sql_run.StreamedOutput(*stage(stream))
        return result

    return with_retries(defn, context.log, outcome, on_state, attempt)


def with_retries(
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
        return sql_run.Stream(result)
    if type(result).__module__.startswith("duckdb") and hasattr(result, "to_arrow_reader"):
        return sql_run.Stream(result)
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
