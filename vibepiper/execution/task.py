"""One asset's computation: call the function (with retries), check what it returned,
validate it, hash it and stage it as a Parquet file. A task never touches the catalog."""

from __future__ import annotations

import inspect
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vibepiper.definitions.asset import AssetDef
from vibepiper.definitions.check import CheckDef
from vibepiper.definitions.context import Context
from vibepiper.storage.parquet_store import ParquetStore, StagedFile, to_arrow
from vibepiper.text import first_line
from vibepiper.validation.expectations import UpstreamReader
from vibepiper.validation.outcome import Validation
from vibepiper.validation.validate import has_checks, validate
from vibepiper.versioning.data_version import table_version

if TYPE_CHECKING:
    import pandas as pd


class OutputError(Exception):
    """The asset function returned something that cannot be stored as a table."""


@dataclass
class TaskOutcome:
    """What a task hands back to the scheduler: a staged file, or why there is none."""

    frame: pd.DataFrame | None = None
    staged: StagedFile | None = None
    data_version: str | None = None
    row_count: int | None = None
    attempts: int = 0
    message: str = ""
    error: str | None = None
    validation: Validation | None = None

    @property
    def rejected(self) -> bool:
        return self.validation is not None and not self.validation.passed


def run_task(
    defn: AssetDef,
    inputs: Mapping[str, Any],
    context: Context,
    store: ParquetStore,
    *,
    checks: tuple[CheckDef, ...] = (),
    upstream: UpstreamReader | None = None,
    data_version: str | None = None,
    on_state: Callable[[str], None] | None = None,
) -> TaskOutcome:
    """Compute `defn` from `inputs` (parameter name -> DataFrame), validate and stage it.

    The output is staged whether or not it passed its checks: the scheduler publishes it
    or keeps it as rejected. `data_version` is given for sources (the file's hash).
    """
    outcome = TaskOutcome()
    frame = _compute_with_retries(defn, inputs, context, outcome, on_state)
    if frame is None:
        return outcome
    if has_checks(defn, checks):
        if on_state is not None:
            on_state("validating")
        outcome.validation = validate(defn, checks, frame, upstream or _no_upstream)
        frame = outcome.validation.frame
    try:
        table = to_arrow(frame)
        version = data_version or table_version(table)
        outcome.staged = store.stage(defn.name, version, table)
    except Exception as exc:
        outcome.message = f"cannot store the output: {type(exc).__name__}: {first_line(exc)}"
        outcome.error = traceback.format_exc()
        return outcome
    outcome.frame, outcome.data_version, outcome.row_count = frame, version, len(frame)
    return outcome


def _no_upstream(name: str) -> Any:
    raise LookupError(f"asset '{name}' is not available here")


def _compute_with_retries(
    defn: AssetDef,
    inputs: Mapping[str, Any],
    context: Context,
    outcome: TaskOutcome,
    on_state: Callable[[str], None] | None,
) -> pd.DataFrame | None:
    for attempt in range(1, defn.retries + 2):
        outcome.attempts = attempt
        try:
            return _normalize(defn, _call(defn, inputs, context, attempt))
        except OutputError as exc:
            outcome.message, outcome.error = str(exc), str(exc)
            return None  # the same code returns the same wrong type: no retry
        except Exception as exc:
            outcome.message = f"{type(exc).__name__}: {first_line(exc)}"
            outcome.error = traceback.format_exc()
            if attempt <= defn.retries:
                if on_state is not None:
                    on_state("retrying")
                time.sleep(defn.retry_delay * 2 ** (attempt - 1))
    return None


def _call(defn: AssetDef, inputs: Mapping[str, Any], context: Context, attempt: int) -> Any:
    if defn.source_reader is not None:
        path = context.project_dir / str(defn.source_path)
        return defn.source_reader(str(path))
    kwargs = dict(inputs)
    if defn.takes_context:
        kwargs["context"] = Context(
            context.run_id, context.asset, context.project_dir, dict(defn.config), attempt
        )
    result = defn.fn(**kwargs)
    if inspect.iscoroutine(result):
        import asyncio

        result = asyncio.run(result)
    return result


def _normalize(defn: AssetDef, result: Any) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa

    if isinstance(result, pa.Table):
        result = result.to_pandas()
    if not isinstance(result, pd.DataFrame):
        raise OutputError(
            f"asset '{defn.name}' returned {type(result).__module__}.{type(result).__qualname__}"
            ", not a pandas.DataFrame or pyarrow.Table"
        )
    bad = [c for c in result.columns if not isinstance(c, str)]
    if bad:
        raise OutputError(
            f"asset '{defn.name}' returned non-string column names {bad[:5]}; "
            "name every column with a string (df.columns = [...])"
        )
    duplicated = sorted(set(result.columns[result.columns.duplicated()]))
    if duplicated:
        raise OutputError(
            f"asset '{defn.name}' returned duplicate column names {duplicated[:5]}"
            "; rename or drop them"
        )
    return result
