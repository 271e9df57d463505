"""Frozen results of validation: one `CheckOutcome` per check, gathered in a `Validation`."""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from vibepiper.definitions.expect import SEVERITIES, Severity, SeverityLike

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_ROWS = 5  # failing rows kept per check
SAMPLE_CHARS = 2000  # and at most this much JSON

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


def sample_json(rows: Any, limit: int = SAMPLE_ROWS) -> str | None:
    """A bounded JSON array of a few failing rows (from a DataFrame, Series or list).

    Long values are cut, then rows dropped, so the text stays under SAMPLE_CHARS and is
    always valid JSON.
    """
    records = _records(rows, limit)
    if not records:
        return None
    while records:
        text = json.dumps(records, default=str)
        if len(text) <= SAMPLE_CHARS:
            return text
        records = records[:-1]
    return json.dumps([{"truncated": text[: SAMPLE_CHARS // 2]}])


def summarize_failing(rows: Any) -> tuple[int, str | None]:
    """How many failing rows `rows` holds (rows, or a count) and a sample of them."""
    if rows is None:
        return 0, None
    if isinstance(rows, numbers.Integral):
        return int(rows), None
    try:
        return len(rows), sample_json(rows)
    except TypeError:
        return 0, None


def _records(rows: Any, limit: int) -> list[Any]:
    import pandas as pd

    if rows is None:
        return []
    if isinstance(rows, pd.Series):
        rows = rows.to_frame()
    if not isinstance(rows, pd.DataFrame):
        return [_cut(v) for v in list(rows)[:limit]]
    head = rows.head(limit)
    if not isinstance(head.index, pd.RangeIndex) or head.index.name is not None:
        name = head.index.name or "row"
        head = head.reset_index(names=name if name not in head.columns else f"_{name}")
    records = json.loads(head.to_json(orient="records", date_format="iso", default_handler=str))
    return [{str(k): _cut(v) for k, v in r.items()} for r in records]


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 200:
        return value[:197] + "..."
    return value


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
