"""Checks of SPEC §2, evaluated directly on DataFrames (no project, no CLI).

`expect.*` built-ins through `validation.expectations.evaluate`, `@check` functions through
`validation.checks.run_check`, pandera schemas through `validation.schema_check`, and the
whole of one output (schema, expectations, checks, quarantine) through
`validation.validate.validate`. A bad check or a bad query is a failed outcome, never an
exception; a bad definition is a DefinitionError when it is declared.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibepiper import AssetDef, CheckDef, CheckResult, asset, check, expect
from vibepiper.definitions.expect import Expectation, Kind, Severity
from vibepiper.errors import DefinitionError
from vibepiper.validation.checks import run_check
from vibepiper.validation.expectations import evaluate
from vibepiper.validation.outcome import (
    SAMPLE_CHARS,
    SAMPLE_ROWS,
    CheckOutcome,
    Validation,
    outcome_row,
)
from vibepiper.validation.schema_check import validate_schema
from vibepiper.validation.validate import REASON_COLUMN, validate

ASSET = "orders"
CUSTOMERS = pd.DataFrame({"id": [1, 2, 3]})


def reader(**frames: pd.DataFrame) -> Callable[[str], pd.DataFrame]:
    """An upstream reader serving `frames` by name; any other name raises KeyError."""

    def read(name: str) -> pd.DataFrame:
        return frames[name]

    return read


def run(
    exp: Expectation,
    frame: pd.DataFrame,
    upstream: Callable[[str], pd.DataFrame] | None = None,
) -> CheckOutcome:
    return evaluate(ASSET, exp, frame, upstream or reader(customers=CUSTOMERS)).outcome


def sample_rows(outcome: CheckOutcome) -> list[dict[str, Any]]:
    """The outcome's sample, parsed; checked to be a JSON array of at most 5 objects."""
    assert outcome.sample is not None
    rows = json.loads(outcome.sample)
    assert isinstance(rows, list)
    assert 1 <= len(rows) <= SAMPLE_ROWS
    assert all(isinstance(r, dict) for r in rows)
    return rows


def make_asset(**options: Any) -> AssetDef:
    def orders() -> pd.DataFrame:
        return pd.DataFrame()

    return asset(**options)(orders)


# --------------------------------------------------------------------------------------
# expect.* built-ins: pass and fail
# --------------------------------------------------------------------------------------

# id -> (expectation, passing frame, failing frame, failing rows, message, failing column)
CASES: dict[str, tuple[Expectation, pd.DataFrame, pd.DataFrame, int, str, str | None]] = {
    "not_null": (
        expect.not_null("x"),
        pd.DataFrame({"x": [1, 2, 3]}),
        pd.DataFrame({"x": [1.0, None, 3.0, None]}),
        2,
        "not_null('x') failed for 2 of 4 rows",
        "x",
    ),
    "unique_one": (
        expect.unique("x"),
        pd.DataFrame({"x": [1, 2, 3]}),
        pd.DataFrame({"x": [1, 2, 2, 3, 3, 3, 4]}),
        5,
        "unique('x') failed for 5 of 7 rows",
        "x",
    ),
    "unique_several": (
        expect.unique("a", "b"),
        pd.DataFrame({"a": [1, 1, 2], "b": [1, 2, 1]}),
        pd.DataFrame({"a": [1, 1, 2, 2], "b": [1, 1, 1, 2]}),
        2,
        "unique('a', 'b') failed for 2 of 4 rows",
        "a",
    ),
    "accepted_values": (
        expect.accepted_values("s", ["a", "b"]),
        pd.DataFrame({"s": ["a", "b", "a"]}),
        pd.DataFrame({"s": ["a", "c", "d", "b"]}),
        2,
        "accepted_values('s', ('a', 'b')) failed for 2 of 4 rows",
        "s",
    ),
    "in_range_min": (
        expect.in_range("x", min=0),
        pd.DataFrame({"x": [0, 5, 1000]}),
        pd.DataFrame({"x": [-1, 0, -2]}),
        2,
        "in_range('x', min=0, max=None) failed for 2 of 3 rows",
        "x",
    ),
    "in_range_max": (
        expect.in_range("x", max=10),
        pd.DataFrame({"x": [10, -5]}),
        pd.DataFrame({"x": [11, 10, 12.5]}),
        2,
        "in_range('x', min=None, max=10) failed for 2 of 3 rows",
        "x",
    ),
    "in_range_both": (
        expect.in_range("x", 0, 10),
        pd.DataFrame({"x": [0, 10, 5]}),
        pd.DataFrame({"x": [-1, 11, 5]}),
        2,
        "in_range('x', min=0, max=10) failed for 2 of 3 rows",
        "x",
    ),
    "relationship": (
        expect.relationship("cid", to="customers", field="id"),
        pd.DataFrame({"cid": [1, 2, 1, 3]}),
        pd.DataFrame({"cid": [1, 4, 5, 2]}),
        2,
        "relationship('cid', to='customers', field='id') failed for 2 of 4 rows",
        "cid",
    ),
    "sql": (
        expect.sql(f"select * from {ASSET} where x < 0"),
        pd.DataFrame({"x": [1, 2]}),
        pd.DataFrame({"x": [-1, -2, 3]}),
        2,
        "query returned 2 failing rows",
        "x",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_builtin_passes(case: str) -> None:
    exp, good, _, _, _, _ = CASES[case]
    outcome = run(exp, good)
    assert outcome.passed, outcome.message
    assert outcome.failing_rows == 0
    assert outcome.sample is None
    assert not outcome.blocking
    assert outcome.kind == "expect"


@pytest.mark.parametrize("case", list(CASES))
def test_builtin_fails_with_count_message_and_sample(case: str) -> None:
    exp, _, bad, count, message, column = CASES[case]
    outcome = run(exp, bad)
    assert not outcome.passed
    assert outcome.failing_rows == count
    assert outcome.message == message
    assert outcome.severity == "error" and outcome.blocking
    assert outcome.name == exp.name
    rows = sample_rows(outcome)
    assert len(rows) == min(count, SAMPLE_ROWS)
    assert column in rows[0]


def test_builtin_failing_rows_sample_is_the_failing_rows() -> None:
    frame = pd.DataFrame({"id": [1, 2, 3, 4], "x": [5, -1, 7, -3]})
    rows = sample_rows(run(expect.in_range("x", min=0), frame))
    assert rows == [{"id": 2, "x": -1}, {"id": 4, "x": -3}]
    rows = sample_rows(run(expect.not_null("x"), frame.assign(x=[1.0, None, 2.0, 3.0])))
    assert rows == [{"id": 2, "x": None}]


@pytest.mark.parametrize(
    "exp",
    [
        expect.not_null("x"),
        expect.unique("x"),
        expect.accepted_values("x", [0]),
        expect.in_range("x", max=-100),
        expect.relationship("x", to="customers", field="id"),
        expect.sql(f"select * from {ASSET}"),
    ],
    ids=lambda e: e.kind,
)
def test_sample_is_capped_at_five_rows(exp: Expectation) -> None:
    frame = pd.DataFrame({"x": [None if exp.kind == "not_null" else 7.0] * 12})
    outcome = run(exp, frame)
    assert outcome.failing_rows == 12
    assert len(sample_rows(outcome)) == SAMPLE_ROWS


def test_sample_of_long_values_stays_small_valid_json() -> None:
    frame = pd.DataFrame({"s": ["z" * 5000] * 10, "t": ["y" * 5000] * 10})
    outcome = run(expect.accepted_values("s", ["a"]), frame)
    assert outcome.failing_rows == 10
    assert outcome.sample is not None and len(outcome.sample) <= SAMPLE_CHARS
    sample_rows(outcome)


def test_row_count_bounds_and_messages() -> None:
    three = pd.DataFrame({"x": [1, 2, 3]})
    assert run(expect.row_count(min=3), three).passed
    assert run(expect.row_count(max=3), three).passed
    assert run(expect.row_count(min=1, max=3), three).passed
    low = run(expect.row_count(min=4), three)
    assert (low.passed, low.failing_rows, low.sample) == (False, 0, None)
    assert low.message == "3 rows, expected at least 4"
    high = run(expect.row_count(max=2), three)
    assert not high.passed and high.message == "3 rows, expected at most 2"
    both = run(expect.row_count(min=5, max=9), three)
    assert both.message == "3 rows, expected at least 5 and at most 9"
    assert low.blocking and low.name == "row_count"


def test_in_range_bounds_are_inclusive_and_work_on_dates_and_strings() -> None:
    dates = pd.DataFrame({"d": pd.to_datetime(["2024-01-01", "2024-12-31", "2025-01-01"])})
    outcome = run(
        expect.in_range("d", pd.Timestamp("2024-01-01"), pd.Timestamp("2024-12-31")), dates
    )
    assert outcome.failing_rows == 1
    assert sample_rows(outcome)[0]["d"].startswith("2025-01-01")
    words = pd.DataFrame({"s": ["apple", "kiwi", "zebra"]})
    assert run(expect.in_range("s", min="b", max="y"), words).failing_rows == 2


def test_names_and_severity_are_carried() -> None:
    exp = expect.not_null("x", severity="warn", name="x_present")
    assert (exp.name, exp.severity) == ("x_present", "warn")
    outcome = run(exp, pd.DataFrame({"x": [None, 1.0]}))
    assert (outcome.name, outcome.severity, outcome.passed) == ("x_present", "warn", False)
    assert expect.unique("a", "b").name == "unique_a_b"
    assert expect.relationship("c", to="customers", field="id").name == (
        "relationship_c_to_customers"
    )


def test_severity_and_kind_are_str_enums_stored_as_plain_strings() -> None:
    exp = expect.not_null("x", severity="warn")
    assert (exp.severity, exp.kind) == (Severity.WARN, Kind.NOT_NULL)
    assert exp.describe() == "not_null('x')" and f"{exp.severity}" == "warn"
    outcome = run(exp, pd.DataFrame({"x": [None]}))
    row = outcome_row(outcome, "m1", "r1", None)
    assert json.loads(json.dumps(row))["severity"] == "warn"
    assert CheckOutcome("c", "error", False).severity is Severity.ERROR


def test_relationship_reads_the_other_asset_by_name() -> None:
    asked: list[str] = []

    def read(name: str) -> pd.DataFrame:
        asked.append(name)
        return pd.DataFrame({"key": [10, None, 20]})

    exp = expect.relationship("k", to="accounts", field="key")
    outcome = run(exp, pd.DataFrame({"k": [10, 30, 20]}), read)
    assert asked == ["accounts"]
    assert outcome.failing_rows == 1
    assert sample_rows(outcome) == [{"k": 30}]


def test_relationship_whose_upstream_cannot_be_read_fails_without_raising() -> None:
    def read(name: str) -> pd.DataFrame:
        raise FileNotFoundError(f"asset '{name}' was never materialized")

    outcome = run(
        expect.relationship("k", to="accounts", field="key"), pd.DataFrame({"k": [1]}), read
    )
    assert not outcome.passed and outcome.blocking
    assert "FileNotFoundError" in outcome.message and "accounts" in outcome.message


def test_sql_sees_the_asset_by_its_own_name_only() -> None:
    frame = pd.DataFrame({"x": [1, 2, 3]})
    outcome = evaluate(
        "payments", expect.sql("select * from payments where x >= 2"), frame, reader()
    )
    assert outcome.outcome.failing_rows == 2
    assert sample_rows(outcome.outcome) == [{"x": 2}, {"x": 3}]
    assert outcome.row_mask is None  # sql failures are not row-level (no quarantine)
    other = evaluate("payments", expect.sql(f"select * from {ASSET}"), frame, reader())
    assert not other.outcome.passed and other.outcome.failing_rows == 0


# --------------------------------------------------------------------------------------
# nulls
# --------------------------------------------------------------------------------------

NULL_COLUMNS = {
    "None_object": pd.Series(["a", None, "b"], dtype=object),
    "NaN_float": pd.Series([1.0, np.nan, 2.0]),
    "NaT_datetime": pd.Series(pd.to_datetime(["2024-01-01", None, "2024-01-02"])),
    "NA_Int64": pd.Series([1, pd.NA, 2], dtype="Int64"),
    "NA_string": pd.Series(["a", pd.NA, "b"], dtype="string"),
    "NA_boolean": pd.Series([True, pd.NA, False], dtype="boolean"),
}


@pytest.mark.parametrize("kind", list(NULL_COLUMNS))
def test_not_null_fails_on_every_kind_of_null(kind: str) -> None:
    frame = pd.DataFrame({"x": NULL_COLUMNS[kind]})
    outcome = run(expect.not_null("x"), frame)
    assert not outcome.passed
    assert outcome.failing_rows == 1
    assert sample_rows(outcome) == [{"x": None}]


@pytest.mark.parametrize("kind", list(NULL_COLUMNS))
def test_value_checks_ignore_nulls(kind: str) -> None:
    column = NULL_COLUMNS[kind]
    frame = pd.DataFrame({"x": column})
    present = column.dropna().tolist()
    checks = [
        expect.accepted_values("x", present),
        expect.in_range("x", min=min(present), max=max(present)),
        expect.relationship("x", to="other", field="x"),
    ]
    upstream = reader(other=pd.DataFrame({"x": present}))
    for exp in checks:
        outcome = run(exp, frame, upstream)
        assert outcome.passed, f"{exp.describe()}: {outcome.message}"


def test_value_checks_still_fail_on_bad_values_next_to_nulls() -> None:
    frame = pd.DataFrame({"x": pd.Series([1, pd.NA, 50, None], dtype="Int64")})
    assert run(expect.in_range("x", max=10), frame).failing_rows == 1
    assert run(expect.accepted_values("x", [1]), frame).failing_rows == 1
    upstream = reader(other=pd.DataFrame({"x": [1]}))
    assert run(expect.relationship("x", to="other", field="x"), frame, upstream).failing_rows == 1


def test_unique_with_nulls_treats_nulls_as_equal() -> None:
    """Documents current behaviour: nulls compare equal (like pandas `duplicated`).

    One null passes; two nulls in the column are duplicates of each other. (dbt's and
    Great Expectations' uniqueness tests ignore nulls instead.)
    """
    assert run(expect.unique("x"), pd.DataFrame({"x": [1.0, None, 2.0]})).passed
    two = run(expect.unique("x"), pd.DataFrame({"x": [1.0, None, 2.0, None]}))
    assert two.failing_rows == 2
    assert sample_rows(two) == [{"x": None}, {"x": None}]
    pairs = pd.DataFrame({"a": [1, 1, 1, None, None], "b": [1.0, None, None, 2.0, 3.0]})
    several = evaluate(ASSET, expect.unique("a", "b"), pairs, reader())
    assert several.outcome.failing_rows == 2
    assert several.row_mask.tolist() == [False, True, True, False, False]


# --------------------------------------------------------------------------------------
# empty frames, missing columns, warn severity
# --------------------------------------------------------------------------------------

ROW_LEVEL = [
    expect.not_null("x"),
    expect.unique("x"),
    expect.unique("x", "y"),
    expect.accepted_values("x", [1]),
    expect.in_range("x", min=0),
    expect.in_range("x", max=0),
    expect.in_range("x", 0, 1),
    expect.relationship("x", to="customers", field="id"),
    expect.sql(f"select * from {ASSET} where x < 0"),
    expect.row_count(max=0),
]


@pytest.mark.parametrize("dtype", ["int64", "float64", "object"])
@pytest.mark.parametrize("exp", ROW_LEVEL, ids=lambda e: e.describe())
def test_empty_frame_passes_row_level_checks(exp: Expectation, dtype: str) -> None:
    frame = pd.DataFrame({"x": pd.Series([], dtype=dtype), "y": pd.Series([], dtype=dtype)})
    outcome = run(exp, frame)
    assert outcome.passed, outcome.message


def test_empty_frame_fails_row_count_min() -> None:
    outcome = run(expect.row_count(min=1), pd.DataFrame({"x": pd.Series([], dtype="int64")}))
    assert not outcome.passed and outcome.blocking
    assert outcome.message == "0 rows, expected at least 1"


MISSING = [
    expect.not_null("missing"),
    expect.unique("missing"),
    expect.unique("x", "missing"),
    expect.accepted_values("missing", [1]),
    expect.in_range("missing", min=0),
    expect.relationship("missing", to="customers", field="id"),
]


@pytest.mark.parametrize("exp", MISSING, ids=lambda e: e.describe())
def test_missing_column_is_a_failed_outcome_naming_column_and_asset(exp: Expectation) -> None:
    result = evaluate(ASSET, exp, pd.DataFrame({"x": [1, 2]}), reader(customers=CUSTOMERS))
    outcome = result.outcome
    assert not outcome.passed and outcome.blocking
    assert outcome.failing_rows == 0 and outcome.sample is None
    assert "'missing'" in outcome.message
    assert f"'{ASSET}'" in outcome.message
    assert "x" in outcome.message  # the columns it does have
    assert result.row_mask is None


def test_relationship_to_a_missing_field_names_the_field_and_the_other_asset() -> None:
    outcome = run(expect.relationship("x", to="customers", field="nope"), pd.DataFrame({"x": [1]}))
    assert not outcome.passed
    assert "'nope'" in outcome.message and "'customers'" in outcome.message


def test_sql_missing_column_is_a_failed_outcome_naming_the_column() -> None:
    outcome = run(expect.sql(f"select * from {ASSET} where missing > 0"), pd.DataFrame({"x": [1]}))
    assert not outcome.passed and outcome.blocking and outcome.failing_rows == 0
    assert "missing" in outcome.message


def test_sql_missing_column_message_names_the_asset() -> None:
    outcome = run(expect.sql(f"select * from {ASSET} where missing > 0"), pd.DataFrame({"x": [1]}))
    assert ASSET in outcome.message.replace(f"from {ASSET}", "")


@pytest.mark.parametrize("case", list(CASES))
def test_warn_severity_fails_without_blocking(case: str) -> None:
    exp, _, bad, count, _, _ = CASES[case]
    warn = Expectation(exp.kind, exp.args, exp.options, "warn", exp.name, exp.to)
    outcome = run(warn, bad)
    assert not outcome.passed and outcome.failing_rows == count
    assert outcome.severity == "warn"
    assert not outcome.blocking


def test_warn_row_count_does_not_block() -> None:
    outcome = run(expect.row_count(min=5, severity="warn"), pd.DataFrame({"x": [1]}))
    assert not outcome.passed and not outcome.blocking


# --------------------------------------------------------------------------------------
# sql: errors and sandboxing
# --------------------------------------------------------------------------------------

SQL_FAILURES = {
    "syntax": ("selec * form orders", "Parser Error"),
    "missing_table": ("select * from nowhere", "nowhere"),
    "read_csv": ("select * from read_csv('/etc/passwd')", "/etc/passwd"),
    "read_text": ("select * from read_text('/etc/hostname')", "/etc/hostname"),
    "re_enable_access": (
        "set enable_external_access = true; select * from read_csv('/etc/passwd')",
        "external access",
    ),
}


@pytest.mark.parametrize("case", list(SQL_FAILURES))
def test_sql_error_is_a_failed_outcome(case: str) -> None:
    query, fragment = SQL_FAILURES[case]
    outcome = run(expect.sql(query), pd.DataFrame({"x": [1, 2]}))
    assert not outcome.passed and outcome.blocking
    assert outcome.failing_rows == 0 and outcome.sample is None
    assert outcome.message.startswith("query of check 'sql' on asset 'orders' failed: ")
    assert fragment in outcome.message


def test_sql_cannot_write_or_attach_files(tmp_path: Any) -> None:
    frame = pd.DataFrame({"x": [1, 2]})
    target = tmp_path / "out.csv"
    db = tmp_path / "other.duckdb"
    for query in (f"copy {ASSET} to '{target}'", f"attach '{db}' as other"):
        outcome = run(expect.sql(query), frame)
        assert not outcome.passed
        assert "failed" in outcome.message
    assert not target.exists() and not db.exists()


# --------------------------------------------------------------------------------------
# definition errors
# --------------------------------------------------------------------------------------

DEFINITION_ERRORS: dict[str, Callable[[], object]] = {
    "severity_fatal": lambda: expect.not_null("x", severity="fatal"),
    "severity_upper": lambda: expect.unique("x", severity="ERROR"),
    "severity_none": lambda: expect.row_count(min=1, severity=None),  # type: ignore[arg-type]
    "severity_sql": lambda: expect.sql("select 1", severity="warning"),
    "severity_relationship": lambda: expect.relationship(
        "x", to="customers", field="id", severity="info"
    ),
    "not_null_empty_column": lambda: expect.not_null(""),
    "not_null_no_column": lambda: expect.not_null(None),  # type: ignore[arg-type]
    "unique_no_column": lambda: expect.unique(),
    "unique_bad_column": lambda: expect.unique("a", 3),  # type: ignore[arg-type]
    "accepted_values_no_column": lambda: expect.accepted_values("", [1]),
    "in_range_no_column": lambda: expect.in_range("", min=0),
    "in_range_no_bounds": lambda: expect.in_range("x"),
    "in_range_none_bounds": lambda: expect.in_range("x", min=None, max=None),
    "row_count_no_bounds": lambda: expect.row_count(),
    "sql_empty": lambda: expect.sql(""),
    "sql_blank": lambda: expect.sql("   \n"),
    "sql_none": lambda: expect.sql(None),  # type: ignore[arg-type]
    "relationship_no_column": lambda: expect.relationship("", to="customers", field="id"),
    "relationship_upper_asset": lambda: expect.relationship("x", to="Customers", field="id"),
    "relationship_digit_asset": lambda: expect.relationship("x", to="1st", field="id"),
    "relationship_dash_asset": lambda: expect.relationship("x", to="a-b", field="id"),
    "relationship_empty_asset": lambda: expect.relationship("x", to="", field="id"),
    "check_severity": lambda: check(asset="orders", severity="fatal")(lambda orders: True),
    "check_asset": lambda: check(asset="Orders")(lambda orders: True),
}


@pytest.mark.parametrize("case", list(DEFINITION_ERRORS))
def test_definition_errors(case: str) -> None:
    with pytest.raises(DefinitionError) as info:
        DEFINITION_ERRORS[case]()
    assert info.value.message and info.value.hint


def test_bad_severity_error_names_the_check_and_the_value() -> None:
    with pytest.raises(DefinitionError, match="fatal") as info:
        expect.not_null("x", severity="fatal")
    assert "not_null_x" in str(info.value)


def test_relationship_with_empty_field_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError):
        expect.relationship("x", to="customers", field="")


# --------------------------------------------------------------------------------------
# @check functions
# --------------------------------------------------------------------------------------

FRAME = pd.DataFrame({"x": [1, -2, 3, -4]})


def run_fn(fn: Callable[..., Any], severity: str = "error", **frames: pd.DataFrame) -> CheckOutcome:
    chk = check(asset=ASSET, severity=severity)(fn)
    assert isinstance(chk, CheckDef)
    return run_check(chk, FRAME, reader(**frames))


def test_check_returning_true_and_false() -> None:
    def positive(orders: pd.DataFrame) -> bool:
        return bool((orders.x > -10).all())

    def negative(orders: pd.DataFrame) -> bool:
        return bool((orders.x > 0).all())

    yes = run_fn(positive)
    assert (yes.passed, yes.kind, yes.name, yes.failing_rows) == (True, "check", "positive", 0)
    no = run_fn(negative)
    assert not no.passed and no.blocking and no.message == "returned False"


def test_check_returning_numpy_false_fails() -> None:
    def negative(orders: pd.DataFrame) -> Any:
        return (orders.x > 0).all()

    assert not run_fn(negative).passed


def test_check_returning_numpy_true_passes() -> None:
    def positive(orders: pd.DataFrame) -> Any:
        return (orders.x > -10).all()

    outcome = run_fn(positive)
    assert outcome.passed, outcome.message


def test_check_result_with_failing_rows_frame() -> None:
    def no_negatives(orders: pd.DataFrame) -> CheckResult:
        bad = orders[orders.x < 0]
        return CheckResult(passed=bad.empty, failing_rows=bad, message=f"{len(bad)} negative")

    outcome = run_fn(no_negatives)
    assert not outcome.passed and outcome.failing_rows == 2
    assert outcome.message == "2 negative"
    rows = sample_rows(outcome)
    assert [r["x"] for r in rows] == [-2, -4]


def test_check_result_sample_is_capped_and_default_message() -> None:
    def many(orders: pd.DataFrame) -> CheckResult:
        return CheckResult(False, failing_rows=pd.DataFrame({"v": range(20)}))

    outcome = run_fn(many)
    assert outcome.failing_rows == 20
    assert outcome.message == "20 failing rows"
    assert len(sample_rows(outcome)) == SAMPLE_ROWS


def test_check_result_with_failing_rows_int() -> None:
    def counted(orders: pd.DataFrame) -> CheckResult:
        return CheckResult(False, message="too many", failing_rows=7)

    outcome = run_fn(counted)
    assert (outcome.passed, outcome.failing_rows, outcome.message) == (False, 7, "too many")
    assert outcome.sample is None


def test_check_result_with_failing_rows_numpy_int() -> None:
    def counted(orders: pd.DataFrame) -> CheckResult:
        return CheckResult(False, failing_rows=(orders.x < 0).sum())

    assert run_fn(counted).failing_rows == 2


def test_check_result_passed_and_warn() -> None:
    def fine(orders: pd.DataFrame) -> CheckResult:
        return CheckResult(True, metadata={"rows": len(orders)})

    assert run_fn(fine).passed

    def soft(orders: pd.DataFrame) -> CheckResult:
        return CheckResult(False, "meh")

    warned = run_fn(soft, severity="warn")
    assert not warned.passed and not warned.blocking and warned.severity == "warn"


@pytest.mark.parametrize("value", [None, 1, "yes", pd.DataFrame(), [True]])
def test_check_returning_something_else_fails_saying_what(value: Any) -> None:
    def odd(orders: pd.DataFrame) -> Any:
        return value

    outcome = run_fn(odd)
    assert not outcome.passed and outcome.blocking
    assert f"check returned {type(value).__name__}" in outcome.message
    assert "bool or a CheckResult" in outcome.message


def test_check_that_raises_fails_with_the_exception() -> None:
    def explodes(orders: pd.DataFrame) -> bool:
        raise ValueError("column x looks odd")

    outcome = run_fn(explodes)
    assert not outcome.passed and outcome.blocking and outcome.failing_rows == 0
    assert "ValueError" in outcome.message
    assert "column x looks odd" in outcome.message
    assert "test_expectations.py" in outcome.message


def test_check_reads_another_asset_by_parameter_name() -> None:
    def known_customers(orders: pd.DataFrame, customers: pd.DataFrame) -> CheckResult:
        bad = orders[~orders.x.abs().isin(customers.id)]
        return CheckResult(bad.empty, failing_rows=bad)

    chk = check(asset=ASSET)(known_customers)
    assert chk.upstream == ("customers",)
    asked: list[str] = []

    def read(name: str) -> pd.DataFrame:
        asked.append(name)
        return CUSTOMERS

    outcome = run_check(chk, FRAME, read)
    assert asked == ["customers"]
    assert outcome.failing_rows == 1
    assert sample_rows(outcome)[0]["x"] == -4


def test_check_whose_other_asset_cannot_be_read_fails() -> None:
    def needs_missing(orders: pd.DataFrame, ledger: pd.DataFrame) -> bool:
        return True

    outcome = run_fn(needs_missing)
    assert not outcome.passed and "KeyError" in outcome.message and "ledger" in outcome.message


def test_check_cannot_change_the_frame_it_judges() -> None:
    frame = pd.DataFrame({"x": [1, 2]})

    def meddles(orders: pd.DataFrame) -> bool:
        orders["y"] = 0
        orders.loc[0, "x"] = 99
        return True

    assert run_check(check(asset=ASSET)(meddles), frame, reader()).passed
    assert frame.equals(pd.DataFrame({"x": [1, 2]}))


# --------------------------------------------------------------------------------------
# pandera schemas
# --------------------------------------------------------------------------------------


class Orders(pa.DataFrameModel):
    a: int = pa.Field(ge=0, le=10)
    b: str = pa.Field(isin=["x", "y"], str_length={"max_value": 1})


ORDERS_SCHEMA = pa.DataFrameSchema(
    {
        "a": pa.Column(int, [pa.Check.ge(0), pa.Check.le(10)]),
        "b": pa.Column(str, [pa.Check.isin(["x", "y"]), pa.Check.str_length(max_value=1)]),
    }
)


@pytest.mark.parametrize("schema", [Orders, ORDERS_SCHEMA], ids=["model", "schema"])
def test_schema_passes(schema: Any) -> None:
    frame = pd.DataFrame({"a": [0, 10], "b": ["x", "y"]})
    result = validate_schema(ASSET, schema, frame)
    assert [o.passed for o in result.outcomes] == [True]
    assert result.outcomes[0].kind == "schema"
    assert result.frame is not None and result.frame.equals(frame)


@pytest.mark.parametrize("schema", [Orders, ORDERS_SCHEMA], ids=["model", "schema"])
def test_schema_is_lazy_one_outcome_per_column_and_check(schema: Any) -> None:
    frame = pd.DataFrame({"a": [1, -1, 20, 3, -5], "b": ["x", "z", "y", "zz", "x"]})
    result = validate_schema(ASSET, schema, frame)
    assert result.frame is None
    got = {o.name: o for o in result.outcomes}
    assert set(got) == {
        "schema.a.greater_than_or_equal_to(0)",
        "schema.a.less_than_or_equal_to(10)",
        "schema.b.isin(['x', 'y'])",
        "schema.b.str_length(None, 1)",
    }
    assert {n: o.failing_rows for n, o in got.items()} == {
        "schema.a.greater_than_or_equal_to(0)": 2,
        "schema.a.less_than_or_equal_to(10)": 1,
        "schema.b.isin(['x', 'y'])": 2,
        "schema.b.str_length(None, 1)": 1,
    }
    for outcome in result.outcomes:
        assert not outcome.passed and outcome.blocking and outcome.kind == "schema"
        sample_rows(outcome)
    assert "column 'a'" in got["schema.a.greater_than_or_equal_to(0)"].message
    assert result.row_mask.tolist() == [False, True, True, True, True]


def test_schema_coercion_model() -> None:
    class Coerced(pa.DataFrameModel):
        a: int
        b: float

        class Config:
            coerce = True

    result = validate_schema(ASSET, Coerced, pd.DataFrame({"a": ["1", "2"], "b": [1, 2]}))
    assert result.outcomes[0].passed
    assert result.frame is not None
    assert result.frame["a"].dtype == np.int64 and result.frame["b"].dtype == np.float64
    assert result.frame["a"].tolist() == [1, 2]


def test_schema_coercion_dataframe_schema() -> None:
    schema = pa.DataFrameSchema({"a": pa.Column(int), "b": pa.Column(float)}, coerce=True)
    result = validate_schema(ASSET, schema, pd.DataFrame({"a": ["1", "2"], "b": [1, 2]}))
    assert result.frame is not None
    assert dict(result.frame.dtypes) == {"a": np.int64, "b": np.float64}


def test_schema_coercion_failure_is_row_level() -> None:
    schema = pa.DataFrameSchema({"a": pa.Column(int)}, coerce=True)
    result = validate_schema(ASSET, schema, pd.DataFrame({"a": ["1", "x", "3"]}))
    assert result.frame is None
    assert all(not o.passed for o in result.outcomes)
    assert any("coerce_dtype" in o.name for o in result.outcomes)
    assert result.row_mask.tolist() == [False, True, False]


@pytest.mark.parametrize("schema", [Orders, ORDERS_SCHEMA], ids=["model", "schema"])
def test_schema_missing_column(schema: Any) -> None:
    result = validate_schema(ASSET, schema, pd.DataFrame({"a": [1]}))
    (outcome,) = result.outcomes
    assert outcome.name == "schema.b.column_in_dataframe"
    assert not outcome.passed and outcome.blocking
    assert outcome.message == "column 'b' is missing"
    assert result.row_mask is None and result.frame is None


def test_schema_wrong_dtype_is_a_whole_column_failure() -> None:
    result = validate_schema(ASSET, Orders, pd.DataFrame({"a": [1.5, 2.0], "b": ["x", "y"]}))
    (outcome,) = result.outcomes
    assert not outcome.passed and "dtype" in outcome.name and "float64" in outcome.message
    assert result.row_mask is None


@pytest.mark.parametrize("schema", [object(), {"a": int}, "Orders", int, 42, None])
def test_non_pandera_schema_is_a_failed_outcome(schema: Any) -> None:
    result = validate_schema(ASSET, schema, pd.DataFrame({"a": [1]}))
    (outcome,) = result.outcomes
    assert not outcome.passed and outcome.blocking and outcome.kind == "schema"
    assert f"'{ASSET}'" in outcome.message
    assert type(schema).__name__ in outcome.message


def _pydantic_model() -> Any:
    import pydantic

    class Row(pydantic.BaseModel):
        a: int

    return Row


@pytest.mark.parametrize("make", [_pydantic_model], ids=["pydantic"])
def test_non_pandera_object_with_validate_is_a_failed_outcome(make: Callable[[], Any]) -> None:
    result = validate_schema(ASSET, make(), pd.DataFrame({"a": [1], "b": ["x"]}))
    (outcome,) = result.outcomes
    assert not outcome.passed


# --------------------------------------------------------------------------------------
# validate(): schema + expectations + checks, and quarantine
# --------------------------------------------------------------------------------------


class NonNegative(pa.DataFrameModel):
    a: int = pa.Field(ge=0)


def quarantine_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": [1, -1, 200, 300, 4, 5, 6, 7, 8, 9],
            "b": ["p", "q", "r", None, "s", "t", "u", "v", "w", "x"],
        }
    )


def validate_frame(
    defn: AssetDef, frame: pd.DataFrame, checks: list[CheckDef] | None = None
) -> Validation:
    return validate(defn, checks or [], frame, reader(customers=CUSTOMERS))


def test_quarantine_removes_schema_and_expectation_failures() -> None:
    defn = make_asset(
        schema=NonNegative,
        checks=[expect.not_null("b"), expect.in_range("a", max=100), expect.row_count(min=1)],
        quarantine=True,
        max_quarantined=0.5,
    )
    result = validate_frame(defn, quarantine_frame())
    assert result.passed and not result.error and not result.blocking
    assert result.frame["a"].tolist() == [1, 4, 5, 6, 7, 8, 9]
    assert result.quarantined is not None
    quarantined = result.quarantined
    assert list(quarantined.columns) == ["a", "b", REASON_COLUMN]
    assert quarantined["a"].tolist() == [-1, 200, 300]
    assert quarantined[REASON_COLUMN].tolist() == [
        "schema.a.greater_than_or_equal_to(0)",
        "in_range_a",
        "not_null_b; in_range_a",
    ]
    failed = [o for o in result.outcomes if not o.passed]
    assert {o.name: o.failing_rows for o in failed} == {
        "schema.a.greater_than_or_equal_to(0)": 1,
        "not_null_b": 1,
        "in_range_a": 2,
    }
    for outcome in failed:
        assert outcome.quarantined and not outcome.blocking
        assert "quarantined" in outcome.message
    assert result.warnings == failed
    row_count = next(o for o in result.outcomes if o.name == "row_count")
    assert row_count.passed and not row_count.quarantined


def test_quarantine_of_relationship_failures() -> None:
    defn = make_asset(
        checks=[expect.relationship("cid", to="customers", field="id")],
        quarantine=True,
        max_quarantined=0.5,
    )
    result = validate_frame(defn, pd.DataFrame({"cid": [1, 2, 9, 3]}))
    assert result.passed
    assert result.frame["cid"].tolist() == [1, 2, 3]
    assert result.quarantined is not None
    assert result.quarantined[REASON_COLUMN].tolist() == ["relationship_cid_to_customers"]


def test_quarantine_keeps_coerced_dtypes() -> None:
    schema = pa.DataFrameSchema({"a": pa.Column(int, pa.Check.ge(0))}, coerce=True)
    defn = make_asset(schema=schema, quarantine=True, max_quarantined=0.5)
    result = validate_frame(defn, pd.DataFrame({"a": ["1", "-2", "3", "4"]}))
    assert result.passed
    assert result.frame["a"].dtype == np.int64
    assert result.frame["a"].tolist() == [1, 3, 4]
    assert result.quarantined is not None
    assert result.quarantined["a"].tolist() == ["-2"]  # as it came, before coercion


def test_quarantine_removes_values_that_cannot_be_coerced() -> None:
    schema = pa.DataFrameSchema({"a": pa.Column(int)}, coerce=True)
    defn = make_asset(schema=schema, quarantine=True, max_quarantined=0.5)
    result = validate_frame(defn, pd.DataFrame({"a": ["1", "y", "3", "x"]}))
    assert result.passed
    assert result.frame["a"].dtype == np.int64 and result.frame["a"].tolist() == [1, 3]
    assert result.quarantined is not None
    assert (
        result.quarantined[REASON_COLUMN].tolist()
        == ["schema.a.coerce_dtype('int64'); schema.a.dtype('int64')"] * 2
    )


@pytest.mark.xfail(
    reason="when one value cannot be coerced, pandera runs the column's other checks on the "
    "uncoerced strings; they fail for the whole column (TypeError), the failure is not "
    "row-level, so quarantine removes nothing and the asset is blocked",
    strict=True,
)
def test_quarantine_of_uncoercible_value_next_to_a_column_check() -> None:
    schema = pa.DataFrameSchema({"a": pa.Column(int, pa.Check.ge(0))}, coerce=True)
    defn = make_asset(schema=schema, quarantine=True, max_quarantined=0.5)
    result = validate_frame(defn, pd.DataFrame({"a": ["1", "-2", "3", "x"]}))
    assert result.passed, [o.message for o in result.blocking]
    assert result.frame["a"].tolist() == [1, 3]


def test_quarantine_never_removes_row_count_failures() -> None:
    defn = make_asset(
        checks=[expect.row_count(min=20), expect.not_null("b")],
        quarantine=True,
        max_quarantined=0.5,
    )
    result = validate_frame(defn, quarantine_frame())
    row_count = next(o for o in result.outcomes if o.name == "row_count")
    assert not row_count.passed and not row_count.quarantined and row_count.blocking
    assert result.blocking == [row_count]
    assert not result.passed
    assert len(result.frame) == 9  # the not_null failure is still quarantined


def test_quarantine_does_not_remove_sql_or_check_or_whole_column_failures() -> None:
    def small(orders: pd.DataFrame) -> bool:
        return bool((orders.a < 100).all())

    defn = make_asset(
        schema=pa.DataFrameSchema({"a": pa.Column(int), "z": pa.Column(int)}),
        checks=[expect.sql(f"select * from {ASSET} where a > 250")],
        quarantine=True,
        max_quarantined=0.5,
    )
    result = validate_frame(defn, quarantine_frame(), [check(asset=ASSET)(small)])
    blocking = {o.name for o in result.blocking}
    assert blocking == {"schema.z.column_in_dataframe", "sql", "small"}
    assert not result.passed
    assert len(result.frame) == 10 and result.quarantined is None


def test_quarantine_warn_failures_are_kept_and_reported() -> None:
    defn = make_asset(checks=[expect.not_null("b", severity="warn")], quarantine=True)
    result = validate_frame(defn, quarantine_frame())
    assert result.passed and result.quarantined is None
    assert len(result.frame) == 10
    (warning,) = result.warnings
    assert warning.name == "not_null_b" and not warning.quarantined


def test_checks_see_the_frame_after_quarantine() -> None:
    seen: list[int] = []

    def count_rows(orders: pd.DataFrame) -> bool:
        seen.append(len(orders))
        return bool(orders.b.notna().all())

    defn = make_asset(checks=[expect.not_null("b")], quarantine=True, max_quarantined=0.5)
    result = validate_frame(defn, quarantine_frame(), [check(asset=ASSET)(count_rows)])
    assert seen == [9]
    assert result.passed


def test_exceeding_max_quarantined_fails_the_asset() -> None:
    defn = make_asset(checks=[expect.in_range("a", max=100)], quarantine=True, max_quarantined=0.1)
    result = validate_frame(defn, quarantine_frame())  # 2 of 10 rows fail
    assert not result.passed
    assert "2 of 10 rows" in result.error and "max_quarantined=0.1" in result.error
    assert not result.blocking  # it is the share that fails, not any one check
    assert result.quarantined is not None and len(result.quarantined) == 2


def test_max_quarantined_is_inclusive_and_defaults_to_five_percent() -> None:
    frame = pd.DataFrame({"a": range(20)}).assign(a=lambda f: f.a.where(f.a != 3, -1))
    one_in_twenty = make_asset(checks=[expect.in_range("a", min=0)], quarantine=True)
    assert one_in_twenty.max_quarantined == 0.05
    assert validate_frame(one_in_twenty, frame).passed
    two = frame.assign(a=frame.a.where(frame.a != 4, -1))
    result = validate_frame(one_in_twenty, two)
    assert not result.passed and result.error


def test_without_quarantine_failures_block() -> None:
    defn = make_asset(schema=NonNegative, checks=[expect.not_null("b")])
    frame = quarantine_frame()
    result = validate_frame(defn, frame)
    assert not result.passed and result.quarantined is None and not result.error
    assert {o.name for o in result.blocking} == {
        "schema.a.greater_than_or_equal_to(0)",
        "not_null_b",
    }
    assert all(not o.quarantined for o in result.outcomes)
    assert result.frame.equals(frame)


def test_validate_coerces_and_passes_clean_data() -> None:
    schema = pa.DataFrameSchema({"a": pa.Column(float)}, coerce=True)
    defn = make_asset(schema=schema, checks=[expect.in_range("a", 0, 10)])
    result = validate_frame(defn, pd.DataFrame({"a": [1, 2]}))
    assert result.passed and result.frame["a"].dtype == np.float64
    assert [o.name for o in result.outcomes] == ["schema", "in_range_a"]


def test_quarantine_keeps_null_rows_of_nullable_columns() -> None:
    defn = make_asset(checks=[expect.in_range("a", min=0)], quarantine=True, max_quarantined=0.9)
    frame = pd.DataFrame({"a": pd.array([1, None, -3, 4], dtype="Int64")})
    result = validate_frame(defn, frame)
    assert result.quarantined is not None
    assert result.quarantined["a"].tolist() == [-3]
    assert len(result.frame) == 3


def test_quarantine_with_duplicate_index_removes_only_failing_rows() -> None:
    defn = make_asset(checks=[expect.in_range("a", min=0)], quarantine=True, max_quarantined=0.9)
    frame = pd.DataFrame({"a": [1, -1, 2]}, index=[0, 0, 1])
    result = validate_frame(defn, frame)
    assert result.frame["a"].tolist() == [1, 2]
    assert result.quarantined is not None and result.quarantined["a"].tolist() == [-1]


def test_row_count_holds_for_the_published_frame() -> None:
    defn = make_asset(
        checks=[expect.row_count(min=1), expect.not_null("b")],
        quarantine=True,
        max_quarantined=1.0,
    )
    result = validate_frame(defn, pd.DataFrame({"b": [None, None]}))
    assert result.frame.empty
    assert not result.passed


# --------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------

VALUES = st.lists(st.one_of(st.none(), st.integers(-4, 4)), max_size=15)
DTYPES = st.sampled_from(["float64", "Int64", "object"])
BOUND = st.one_of(st.none(), st.integers(-5, 5))


def frame_of(values: list[int | None], dtype: str) -> pd.DataFrame:
    return pd.DataFrame({"x": pd.Series(values, dtype=dtype)})


@settings(max_examples=80, deadline=None)
@given(values=VALUES, dtype=DTYPES)
def test_unique_counts_rows_whose_value_repeats(values: list[int | None], dtype: str) -> None:
    counts = Counter(values)  # None counts as a value: nulls are equal to each other
    expected = sum(1 for v in values if counts[v] > 1)
    outcome = run(expect.unique("x"), frame_of(values, dtype))
    assert outcome.failing_rows == expected
    assert outcome.passed == (expected == 0)


@settings(max_examples=80, deadline=None)
@given(values=VALUES, dtype=DTYPES, low=BOUND, high=BOUND)
def test_in_range_counts_non_null_values_outside(
    values: list[int | None], dtype: str, low: int | None, high: int | None
) -> None:
    if low is None and high is None:
        low = 0
    if low is not None and high is not None and low > high:
        low, high = high, low  # expect.in_range refuses min > max
    expected = sum(
        1
        for v in values
        if v is not None and ((low is not None and v < low) or (high is not None and v > high))
    )
    outcome = run(expect.in_range("x", min=low, max=high), frame_of(values, dtype))
    assert outcome.failing_rows == expected
    assert outcome.passed == (expected == 0)


@settings(max_examples=40, deadline=None)
@given(values=VALUES, dtype=DTYPES)
def test_not_null_counts_nulls(values: list[int | None], dtype: str) -> None:
    outcome = run(expect.not_null("x"), frame_of(values, dtype))
    assert outcome.failing_rows == values.count(None)
