"""Running a user's `@check` function and turning what it returns into an outcome."""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any

from vibepiper.definitions.check import CheckDef, CheckResult
from vibepiper.text import first_line
from vibepiper.validation.expectations import UpstreamReader
from vibepiper.validation.outcome import CheckOutcome, summarize_failing

if TYPE_CHECKING:
    import pandas as pd


def run_check(chk: CheckDef, frame: pd.DataFrame, upstream: UpstreamReader) -> CheckOutcome:
    """Call `chk` with the asset's data (and any other asset it names); never raises."""
    if chk.sql is not None:  # a query over the frames, as `expect.sql` runs
        from dataclasses import replace

        from vibepiper.definitions.expect import sql
        from vibepiper.validation.expectations import evaluate

        exp = sql(chk.sql, severity=chk.severity, name=chk.name)
        return replace(evaluate(chk.asset, exp, frame, upstream).outcome, kind="check")
    try:
        kwargs = {p: frame.copy(deep=False) if p == chk.asset else upstream(p) for p in chk.params}
        result = chk.fn(**kwargs)
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return CheckOutcome(
            chk.name,
            chk.severity,
            False,
            0,
            f"check raised {type(exc).__name__}: {first_line(exc)} "
            f"({where.filename.rsplit('/', 1)[-1]}:{where.lineno})",
            kind="check",
        )
    return _outcome(chk, result)


def _outcome(chk: CheckDef, result: Any) -> CheckOutcome:
    if isinstance(result, CheckResult):
        count, sample = summarize_failing(result.failing_rows)
        message = result.message or ("" if result.passed else f"{count} failing rows")
        return CheckOutcome(
            chk.name,
            chk.severity,
            bool(result.passed),
            count,
            message,
            None if result.passed else sample,
            kind="check",
        )
    if isinstance(result, bool) or (
        type(result).__module__ == "numpy" and type(result).__name__ in ("bool", "bool_")
    ):
        return CheckOutcome(
            chk.name,
            chk.severity,
            bool(result),
            message="" if result else "returned False",
            kind="check",
        )
    return CheckOutcome(
        chk.name,
        chk.severity,
        False,
        0,
        f"check returned {type(result).__name__}; return a bool or a CheckResult",
        kind="check",
    )
