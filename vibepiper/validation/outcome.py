"""Frozen results of validation: one `CheckOutcome` per check, gathered in a `Validation`."""

from __future__ import annotations

import datetime as dt
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from vibepiper.definitions.expect import SEVERITIES, Severity, SeverityLike

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_ROWS = 5  # failing rows kept per check
SAMPLE_VALUE_CHARS = 100  # a longer value is shortened to this, ending in ELLIPSIS
SAMPLE_CHARS = 10_000  # rows after the first are dropped while the JSON is longer
ELLIPSIS = "…"
INTEGERS = frozenset({"integer", "empty"})  # what pandas' infer_dtype says of row numbers

CheckKind = Literal["schema", "expect", "check"]  # a pandera schema, an expect.*, a @check


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one check on one asset's data."""

    name: str
    severity: SeverityLike
    passed: bool
    failing_rows: int = 0
    message: str = ""
    sample: str | None = None  # a few failing rows, as a JSON array of objects
    kind: CheckKind = "expect"
    quarantined: bool = False  # its failing rows were removed instead of failing the asset

    def __post_init__(self) -> None:
        if self.severity in SEVERITIES:  # "warn" -> Severity.WARN
            object.__setattr__(self, "severity", Severity(self.severity))

    @property
    def blocking(self) -> bool:
        return not self.passed and self.severity == Severity.ERROR and not self.quarantined


@dataclass(frozen=True)
class Validation:
    """Every outcome for one output, the frame to publish, and any quarantined rows."""

    frame: pd.DataFrame
    outcomes: tuple[CheckOutcome, ...] = ()
    quarantined: pd.DataFrame | None = None
    error: str = ""  # set when the asset fails as a whole (e.g. too many rows quarantined)

    @property
    def blocking(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if o.blocking]

    @property
    def passed(self) -> bool:
        return not self.blocking and not self.error

    @property
    def warnings(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if not o.passed and not o.blocking]


def sample_json(rows: Any, first: Sequence[str] = (), limit: int = SAMPLE_ROWS) -> str | None:
    """A few failing rows (a DataFrame, a Series or a list) as a JSON array of objects.

    One shape for every check: each object is one whole row, its columns as the data is
    stored (docs/types.md: an index that is not the default one is columns too), the
    failing columns `first`, then the others in the data's order. A value longer than
    SAMPLE_VALUE_CHARS is shortened, ending in "…"; rows after the first are dropped
    while the text is longer than SAMPLE_CHARS. A row is never cut short.
    """
    records = _records(rows, first, limit)
    if not records:
        return None
    text = _dumps(records)
    while len(text) > SAMPLE_CHARS and len(records) > 1:
        records = records[:-1]
        text = _dumps(records)
    return text


def summarize_failing(rows: Any, first: Sequence[str] = ()) -> tuple[int, str | None]:
    """How many failing rows `rows` holds (rows, or a count) and a sample of them."""
    if rows is None:
        return 0, None
    if isinstance(rows, numbers.Integral):
        return int(rows), None
    try:
        return len(rows), sample_json(rows, first)
    except TypeError:
        return 0, None


def _records(rows: Any, first: Sequence[str], limit: int) -> list[dict[str, Any]]:
    frame = _as_frame(rows, limit)
    names = _unique_names([str(c) for c in frame.columns])
    lead = [names.index(c) for c in dict.fromkeys(first) if c in names]
    order = lead + [i for i in range(len(names)) if i not in lead]
    return [
        {names[i]: _value(row[i]) for i in order}
        for row in frame.itertuples(index=False, name=None)
    ]


def _as_frame(rows: Any, limit: int) -> pd.DataFrame:
    """The first `limit` rows as a DataFrame whose index holds nothing (see sample_json)."""
    import pandas as pd

    if isinstance(rows, pd.Series):
        rows = rows.head(limit).to_frame("value" if rows.name is None else rows.name)
    elif not isinstance(rows, pd.DataFrame):
        items = list(rows)[:limit]
        if items and all(isinstance(item, Mapping) for item in items):
            rows = pd.DataFrame(items)
        else:
            rows = pd.DataFrame({"value": pd.Series(items, dtype=object)})
    head = rows.head(limit)
    return head if _default_index(head.index) else head.reset_index(allow_duplicates=True)


def _default_index(index: pd.Index) -> bool:
    """An index that is only row numbers: unnamed, of integers. The store drops it and
    keeps any other as columns (the rule of storage.parquet_files.row_numbers, which
    validation may not import; docs/types.md)."""
    from pandas.api.types import infer_dtype

    return index.nlevels == 1 and index.name is None and infer_dtype(index) in INTEGERS


def _unique_names(names: list[str]) -> list[str]:
    """Column names as JSON keys: a repeated name gets a "'" for each repetition."""
    taken, seen, out = set(names), set(), []
    for name in names:
        if name in seen:
            while name in taken:
                name += "'"
            taken.add(name)
        seen.add(name)
        out.append(name)
    return out


def _value(value: Any) -> Any:
    """`value` as JSON, shortened past SAMPLE_VALUE_CHARS (a list or dict as JSON text)."""
    plain = _jsonable(value)
    if isinstance(plain, list | dict):
        text = json.dumps(plain, ensure_ascii=False)
        return plain if len(text) <= SAMPLE_VALUE_CHARS else _shorten(text)
    return _shorten(plain) if isinstance(plain, str) else plain


def _jsonable(value: Any) -> Any:
    """A JSON value for one cell: exact numbers, ISO dates, None for any missing value."""
    import numpy as np
    import pandas as pd

    if isinstance(value, np.datetime64 | np.timedelta64):
        value = pd.Timestamp(value) if isinstance(value, np.datetime64) else pd.Timedelta(value)
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    return str(value)


def _shorten(text: str) -> str:
    if len(text) <= SAMPLE_VALUE_CHARS:
        return text
    return text[: SAMPLE_VALUE_CHARS - len(ELLIPSIS)] + ELLIPSIS


def _dumps(records: list[dict[str, Any]]) -> str:
    return json.dumps(records, ensure_ascii=False, allow_nan=False)


def outcome_row(
    outcome: CheckOutcome, materialization_id: str | None, run_id: str, checked_at: Any
) -> dict[str, Any]:
    """The `check_results` row of one outcome."""
    return {
        "materialization_id": materialization_id,
        "run_id": run_id,
        "checked_at": checked_at,
        "check_name": outcome.name,
        "severity": outcome.severity,
        "passed": outcome.passed,
        "failing_rows": outcome.failing_rows,
        "message": outcome.message,
        "sample": outcome.sample,
        "quarantined": outcome.quarantined,
    }


def window_outcome(frame: pd.DataFrame, column: str, start: Any, end: Any) -> CheckOutcome:
    """The built-in check of a time-partitioned asset's `time_column` (SPEC §7): every row
    falls in its partition's window `[start, end)` (aware datetimes). A zone-less column
    is read as wall-clock time in the partitioning's zone."""
    import pandas as pd

    name = f"time_column({column})"
    if column not in frame.columns:
        return CheckOutcome(
            name, Severity.ERROR, False, len(frame), f"column '{column}' is missing", kind="expect"
        )
    values = frame[column]
    try:
        if not pd.api.types.is_datetime64_any_dtype(values):
            try:
                values = pd.to_datetime(values)
            except (TypeError, ValueError):  # offsets that differ from row to row
                values = pd.to_datetime(values, utc=True)
        if not pd.api.types.is_datetime64_any_dtype(values):
            values = pd.to_datetime(values, utc=True)
        if getattr(values.dt, "tz", None) is None:
            # wall-clock times of the zone: a repeated time (the clocks going back) is in
            # the same window either way; a skipped one is where the clocks land
            import numpy as np

            values = values.dt.tz_localize(
                start.tzinfo,
                ambiguous=np.ones(len(values), dtype=bool),
                nonexistent="shift_forward",
            )
    except (TypeError, ValueError, OverflowError) as exc:
        message = f"column '{column}' is not a time ({type(exc).__name__}: {exc})"
        return CheckOutcome(name, Severity.ERROR, False, len(frame), message[:300])
    outside = ~((values >= start) & (values < end)).fillna(False).to_numpy(dtype=bool)
    count = int(outside.sum())
    if not count:
        return CheckOutcome(name, Severity.ERROR, True)
    message = (
        f"{count} row{'s' if count != 1 else ''} of {len(frame)} outside the partition's window "
        f"[{start.isoformat()}, {end.isoformat()})"
    )
    return CheckOutcome(
        name, Severity.ERROR, False, count, message, sample_json(frame[outside], [column])
    )
