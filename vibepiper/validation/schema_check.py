"""Schema validation with pandera: lazy, so one run reports every failing column and check.

The validated frame (coerced, when the schema asks for it) is what gets published.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vibepiper.text import first_line, plural
from vibepiper.validation.outcome import CheckOutcome, sample_json

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class SchemaResult:
    """The validated frame (None on failure), the outcomes, and the failing rows' mask."""

    frame: pd.DataFrame | None
    outcomes: list[CheckOutcome]
    row_mask: Any = None  # boolean Series of failing rows; None if a failure is not row-level


def validate_schema(asset: str, schema: Any, frame: pd.DataFrame) -> SchemaResult:
    import pandera.errors as pe

    validate = getattr(schema, "validate", None)
    if validate is None:
        return _failed(
            f"schema= of asset '{asset}' is {type(schema).__name__}, "
            "not a pandera DataFrameModel or DataFrameSchema"
        )
    try:
        validated = validate(frame, lazy=True)
    except pe.SchemaErrors as exc:
        return _from_failure_cases(frame, exc.failure_cases)
    except pe.SchemaError as exc:
        return _from_schema_error(exc, frame)
    except Exception as exc:  # not a pandera schema after all, or pandera itself failed
        return _failed(
            f"schema= of asset '{asset}' could not validate: "
            f"{type(exc).__name__}: {first_line(exc)}"
        )
    return SchemaResult(validated, [CheckOutcome("schema", "error", True, kind="schema")])


def _failed(message: str) -> SchemaResult:
    """The schema could not be checked at all: one failed outcome saying why."""
    return SchemaResult(
        None, [CheckOutcome("schema", "error", False, message=message, kind="schema")]
    )


def _from_schema_error(exc: Any, frame: pd.DataFrame) -> SchemaResult:
    cases = getattr(exc, "failure_cases", None)
    if cases is not None and hasattr(cases, "columns") and "index" in cases.columns:
        column = getattr(getattr(exc, "schema", None), "name", None)
        check = str(getattr(exc, "check", "") or "schema")
        return _from_failure_cases(frame, cases.assign(column=column, check=check))
    return _failed(first_line(exc))


def _from_failure_cases(frame: pd.DataFrame, cases: pd.DataFrame) -> SchemaResult:
    import pandas as pd

    outcomes = []
    row_level = True
    failing_index: list[Any] = []
    cases = cases.assign(column=cases["column"].astype(str), check=cases["check"].astype(str))
    missing = cases["check"] == "column_in_dataframe"
    cases.loc[missing, "column"] = cases.loc[missing, "failure_case"].astype(str)
    for (column, check), group in cases.groupby(["column", "check"], sort=True, dropna=False):
        index = group["index"].dropna()
        if index.empty:
            row_level = False
            values = group["failure_case"].astype(str).tolist()
            message = _whole_column_message(str(column), str(check), values)
            count = len(frame) if check != "column_in_dataframe" else 0
            sample = None
        else:
            failing_index.extend(index.tolist())
            rows = frame.loc[frame.index.isin(index.unique())]
            count = len(rows)
            examples = ", ".join(repr(v) for v in group["failure_case"].head(3).tolist())
            message = (
                f"column '{column}' failed {check} in {plural(count, 'row')} (e.g. {examples})"
            )
            sample = sample_json(rows, [str(column)])
        name = f"schema.{column}.{check}" if column not in ("None", "nan") else f"schema.{check}"
        outcomes.append(CheckOutcome(name, "error", False, count, message, sample, "schema"))
    mask = pd.Series(frame.index.isin(failing_index), index=frame.index) if row_level else None
    return SchemaResult(None, outcomes, mask)


def _whole_column_message(column: str, check: str, values: list[str]) -> str:
    if check == "column_in_dataframe":
        return f"column '{values[0] if values else column}' is missing"
    shown = ", ".join(values[:3])
    return f"column '{column}' failed {check}" + (f": {shown}" if shown else "")
