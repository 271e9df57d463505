"""Evaluating the `expect.*` built-ins on a DataFrame.

Row-level expectations compute a boolean mask of failing rows with vectorised pandas:
the mask is what quarantine needs, and no copy is made. Measured on 5,000,000 rows and 2
cores (bench/validation.py): 1.5x the time of one DuckDB query computing the same answers,
nearly all of it in `unique` (a one-core hash of the column against DuckDB's two cores).
`sql` runs DuckDB over the frame in place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vibepiper import engine
from vibepiper.definitions.expect import Expectation
from vibepiper.errors import VibePiperError
from vibepiper.text import first_line, plural
from vibepiper.validation.outcome import CheckOutcome, sample_json

if TYPE_CHECKING:
    import pandas as pd

UpstreamReader = Callable[[str], "pd.DataFrame"]


class MissingColumn(Exception):
    """A column an expectation names is not in the data (of `owner`, if not the asset's)."""

    def __init__(self, column: str, owner: str | None = None, columns: str = "") -> None:
        super().__init__(column, owner, columns)
        self.column, self.owner, self.columns = column, owner, columns


@dataclass(frozen=True)
class ExpectResult:
    outcome: CheckOutcome
    row_mask: Any = None  # boolean Series of failing rows, for row-level expectations


def evaluate(
    asset: str, exp: Expectation, frame: pd.DataFrame, upstream: UpstreamReader
) -> ExpectResult:
    """Evaluate one expectation; a missing column or a bad query is a failure, not a crash."""
    try:
        if exp.kind == "row_count":
            return ExpectResult(_row_count(exp, frame))
        if exp.kind == "sql":
            return ExpectResult(_sql(asset, exp, frame, upstream))
        mask = _MASKS[exp.kind](exp, frame, upstream)
        mask = mask.fillna(False).astype(bool)  # a null compared is not a failure
    except MissingColumn as exc:
        owner, columns = exc.owner or asset, exc.columns or _columns(frame)
        return _fail(
            exp, f"column '{exc.column}' not found in asset '{owner}' (its columns: {columns})"
        )
    except Exception as exc:
        return _fail(
            exp, f"{exp.describe()} could not be evaluated: {type(exc).__name__}: {first_line(exc)}"
        )
    count = int(mask.sum())
    if not count:
        return ExpectResult(CheckOutcome(exp.name, exp.severity, True), mask)
    failing = frame[mask]
    message = f"{exp.describe()} failed for {count} of {len(frame)} rows"
    return ExpectResult(
        CheckOutcome(exp.name, exp.severity, False, count, message, sample_json(failing)), mask
    )


def _fail(exp: Expectation, message: str) -> ExpectResult:
    return ExpectResult(CheckOutcome(exp.name, exp.severity, False, 0, message))


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        raise MissingColumn(name)
    return frame[name]


def _not_null(exp: Expectation, frame: pd.DataFrame, upstream: UpstreamReader) -> pd.Series:
    return _column(frame, exp.args[0]).isna()


def _unique(exp: Expectation, frame: pd.DataFrame, upstream: UpstreamReader) -> pd.Series:
    columns = list(exp.args)
    for name in columns:
        _column(frame, name)
    return frame.duplicated(columns, keep=False)


def _accepted_values(exp: Expectation, frame: pd.DataFrame, upstream: UpstreamReader) -> pd.Series:
    column = _column(frame, exp.args[0])
    return ~column.isin(list(exp.args[1])) & column.notna()


def _in_range(exp: Expectation, frame: pd.DataFrame, upstream: UpstreamReader) -> pd.Series:
    column = _column(frame, exp.args[0])
    low, high = exp.option("min"), exp.option("max")
    import pandas as pd

    bad = pd.Series(False, index=column.index)
    if low is not None:
        bad |= column < low
    if high is not None:
        bad |= column > high
    return bad


def _relationship(exp: Expectation, frame: pd.DataFrame, upstream: UpstreamReader) -> pd.Series:
    column = _column(frame, exp.args[0])
    other = upstream(str(exp.to))
    field = exp.option("field")
    if field not in other.columns:
        raise MissingColumn(str(field), str(exp.to), _columns(other))
    return column.notna() & ~column.isin(other[field].dropna().unique())


_MASKS: dict[str, Callable[[Expectation, pd.DataFrame, UpstreamReader], pd.Series]] = {
    "not_null": _not_null,
    "unique": _unique,
    "accepted_values": _accepted_values,
    "in_range": _in_range,
    "relationship": _relationship,
}


ROW_LEVEL = frozenset(_MASKS)  # kinds whose failures are particular rows (quarantinable)


def _row_count(exp: Expectation, frame: pd.DataFrame) -> CheckOutcome:
    low, high = exp.option("min"), exp.option("max")
    count = len(frame)
    if (low is not None and count < low) or (high is not None and count > high):
        bounds = " and ".join(
            p
            for p in (
                f"at least {low}" if low is not None else "",
                f"at most {high}" if high is not None else "",
            )
            if p
        )
        return CheckOutcome(
            exp.name, exp.severity, False, 0, f"{plural(count, 'row')}, expected {bounds}"
        )
    return CheckOutcome(exp.name, exp.severity, True)


def _sql(
    asset: str, exp: Expectation, frame: pd.DataFrame, upstream: UpstreamReader
) -> CheckOutcome:
    """The query's failing rows; it reads the asset by its name, and any other asset it
    names (their data as this run reads them)."""
    import duckdb

    from vibepiper.graph.sql_tables import tables_read

    con = engine.connect()
    try:
        con.register(asset, frame)
        for other in sorted(tables_read(str(exp.args[0])) - {asset}):
            with contextlib.suppress(LookupError, VibePiperError):  # not an asset: DuckDB says
                con.register(other, upstream(other))
        con.execute("SET enable_external_access = false")
        failing = con.execute(exp.args[0]).fetchdf()
    except duckdb.Error as exc:
        return CheckOutcome(
            exp.name,
            exp.severity,
            False,
            0,
            f"query of check '{exp.name}' on asset '{asset}' failed: {first_line(exc)}",
        )
    finally:
        con.close()
    if failing.empty:
        return CheckOutcome(exp.name, exp.severity, True)
    return CheckOutcome(
        exp.name,
        exp.severity,
        False,
        len(failing),
        f"query returned {len(failing)} failing rows",
        sample_json(failing),
    )


def _columns(frame: pd.DataFrame) -> str:
    names = [str(c) for c in frame.columns]
    return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
