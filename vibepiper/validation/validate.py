"""Validate one output: schema, then expectations, then `@check` functions.

Every check runs, so one run reports every failure. With `quarantine=True`, rows that
fail row-level checks of error severity are removed instead of failing the asset, and
kept with the reasons; more than `max_quarantined` of the rows removed fails the asset.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from vibepiper.definitions.asset import AssetDef
from vibepiper.definitions.check import CheckDef
from vibepiper.text import plural
from vibepiper.validation.checks import run_check
from vibepiper.validation.expectations import UpstreamReader, evaluate
from vibepiper.validation.outcome import CheckOutcome, Validation
from vibepiper.validation.schema_check import validate_schema

if TYPE_CHECKING:
    import pandas as pd

REASON_COLUMN = "_vp_reason"


def has_checks(defn: AssetDef, checks: Iterable[CheckDef]) -> bool:
    return defn.schema is not None or bool(defn.checks) or any(True for _ in checks)


def validate(
    defn: AssetDef, checks: Iterable[CheckDef], frame: pd.DataFrame, upstream: UpstreamReader
) -> Validation:
    """All outcomes for `frame`, and the frame to publish (coerced, quarantined).

    Row-level expectations run first, so that quarantine removes their failing rows;
    whole-table ones (`row_count`, `sql`, registered ones of `scope="table"`) and `@check`
    functions then judge what remains.
    """
    if not defn.quarantine:
        return _validate(defn, checks, frame, upstream, None)
    index = frame.index
    if not index.is_unique:  # quarantine works by row label: make labels unique meanwhile
        frame = frame.set_axis(range(len(frame)))
    result = _validate(defn, checks, frame, upstream, _Quarantine(frame))
    if result.quarantined is not None and _numbered(index):
        # rows numbered 0, 1, 2... (as the store gives them) stay so: the published frame
        # is then the one every reader gets back, and is not validated again
        return replace(result, frame=result.frame.reset_index(drop=True))
    if index is frame.index:
        return result
    published = result.frame.set_axis(index[result.frame.index.to_numpy()])
    removed = result.quarantined
    if removed is not None:
        removed = removed.set_axis(index[removed.index.to_numpy()])
    return replace(result, frame=published, quarantined=removed)


def _numbered(index: pd.Index) -> bool:
    """Rows numbered 0, 1, 2...: an unnamed default RangeIndex (a named one is meaningful,
    and quarantine keeps the labels of the kept rows, as for any other index)."""
    import pandas as pd

    return (
        isinstance(index, pd.RangeIndex)
        and index.name is None
        and index.equals(pd.RangeIndex(len(index)))
    )


def _validate(
    defn: AssetDef,
    checks: Iterable[CheckDef],
    frame: pd.DataFrame,
    upstream: UpstreamReader,
    quarantine: _Quarantine | None,
) -> Validation:
    outcomes: list[CheckOutcome] = []
    if defn.schema is not None:
        frame = _schema(defn, frame, outcomes, quarantine)
    row_level = [e for e in defn.checks if e.row_level]
    for exp in row_level:
        result = evaluate(defn.name, exp, frame, upstream)
        outcome = result.outcome
        if quarantine is not None and outcome.blocking and result.row_mask is not None:
            quarantine.remove(result.row_mask, outcome.name)
            outcome = _quarantined(outcome)
        outcomes.append(outcome)
    if quarantine is not None:
        frame = quarantine.clean(frame)
    outcomes += [
        evaluate(defn.name, e, frame, upstream).outcome for e in defn.checks if not e.row_level
    ]
    outcomes += [run_check(chk, frame, upstream) for chk in checks]
    if quarantine is None or not quarantine.removed:
        return Validation(frame, tuple(outcomes))
    return Validation(
        frame,
        tuple(outcomes),
        quarantine.rows(),
        quarantine.too_many(defn.name, defn.max_quarantined),
    )


def _schema(
    defn: AssetDef,
    frame: pd.DataFrame,
    outcomes: list[CheckOutcome],
    quarantine: _Quarantine | None,
) -> pd.DataFrame:
    result = validate_schema(defn.name, defn.schema, frame)
    if result.frame is not None:
        outcomes += result.outcomes
        return result.frame
    if quarantine is None or result.row_mask is None:
        outcomes += result.outcomes
        return frame
    for outcome in result.outcomes:
        quarantine.remove(result.row_mask, outcome.name)
    outcomes += [_quarantined(o) for o in result.outcomes]
    clean = quarantine.clean(frame)
    second = validate_schema(defn.name, defn.schema, clean)  # coerce what remains
    outcomes += [o for o in second.outcomes if not o.passed]
    return second.frame if second.frame is not None else clean


def _quarantined(outcome: CheckOutcome) -> CheckOutcome:
    return replace(
        outcome,
        quarantined=True,
        message=f"{outcome.message}; {plural(outcome.failing_rows, 'row')} quarantined",
    )


class _Quarantine:
    """Accumulates the rows to remove and why, against the original frame's rows."""

    def __init__(self, original: pd.DataFrame) -> None:
        self.original = original
        self.reasons: dict[Any, list[str]] = {}

    @property
    def removed(self) -> int:
        return len(self.reasons)

    def remove(self, mask: pd.Series, reason: str) -> None:
        for label in mask.index[mask.to_numpy(dtype=bool, na_value=False)]:
            self.reasons.setdefault(label, []).append(reason)

    def clean(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[~frame.index.isin(list(self.reasons))]

    def rows(self) -> pd.DataFrame:
        rows = self.original[self.original.index.isin(list(self.reasons))]
        return rows.assign(**{REASON_COLUMN: ["; ".join(self.reasons[i]) for i in rows.index]})

    def too_many(self, asset: str, limit: float) -> str:
        share = self.removed / max(len(self.original), 1)
        if share <= limit:
            return ""
        return (
            f"quarantine removed {self.removed} of {len(self.original)} rows "
            f"({share:.1%}), more than max_quarantined={limit:g} allows"
        )
