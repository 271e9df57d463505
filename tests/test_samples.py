"""Failing-row samples have one shape for every kind of check (issue 16, defect 9).

A sample is a JSON array of at most SAMPLE_ROWS objects, one per failing row: every column
of the row, the failing column(s) first, long values shortened (never a row cut short),
and no key that is not a column (such as a "row" label from the frame's index).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pytest

from tests.conftest import catalog_rows, run_cli, write_project
from vibepiper import CheckResult, check, expect, register_expectation
from vibepiper.definitions.expect import Expectation
from vibepiper.validation.checks import run_check
from vibepiper.validation.expectations import evaluate
from vibepiper.validation.outcome import SAMPLE_ROWS, SAMPLE_VALUE_CHARS, CheckOutcome
from vibepiper.validation.schema_check import validate_schema

WIDE = 30  # columns before the failing one: more than a 200-character cut would show


def _wide(rows: int = 8) -> pd.DataFrame:
    """Many long text columns, then `amount` (negative in odd rows), then `tail`."""
    columns: dict[str, Any] = {f"c{i:02}": [f"value {i} " * 6] * rows for i in range(WIDE)}
    columns["amount"] = [(-1 if r % 2 else 1) * (r + 1) for r in range(rows)]
    columns["tail"] = ["x" * 5000] * rows
    return pd.DataFrame(columns)


def _rows(outcome: CheckOutcome) -> list[dict[str, Any]]:
    assert not outcome.passed, outcome.message
    assert outcome.sample is not None, outcome
    rows = json.loads(outcome.sample)
    assert isinstance(rows, list) and 1 <= len(rows) <= SAMPLE_ROWS
    assert all(isinstance(r, dict) for r in rows)
    return rows


def _assert_whole_rows(rows: list[dict[str, Any]], columns: list[str], first: list[str]) -> None:
    for row in rows:
        assert list(row)[: len(first)] == first, list(row)[:5]
        assert sorted(row) == sorted(columns), sorted(set(row) ^ set(columns))
        for value in row.values():
            assert len(json.dumps(value, ensure_ascii=False)) <= SAMPLE_VALUE_CHARS + 2


def _evaluate(exp: Expectation, frame: pd.DataFrame) -> CheckOutcome:
    customers = pd.DataFrame({"id": [1, 2, 3]})
    return evaluate("orders", exp, frame, {"customers": customers}.__getitem__).outcome


@register_expectation("positive_sample_test")
def _positive(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column] <= 0


BUILTINS = {
    "not_null": (expect.not_null("amount"), lambda f: f.assign(amount=[None, 1.0] * 4)),
    "unique": (expect.unique("tail", "amount"), lambda f: f.assign(amount=1)),
    "accepted_values": (expect.accepted_values("amount", [1]), lambda f: f),
    "in_range": (expect.in_range("amount", min=0), lambda f: f),
    "relationship": (expect.relationship("amount", to="customers", field="id"), lambda f: f),
    "registered": (_positive("amount"), lambda f: f),
}


@pytest.mark.parametrize("kind", list(BUILTINS))
def test_an_expectation_samples_whole_rows_failing_column_first(kind: str) -> None:
    exp, make = BUILTINS[kind]
    frame = make(_wide())
    rows = _rows(_evaluate(exp, frame))
    first = ["tail", "amount"] if kind == "unique" else ["amount"]
    _assert_whole_rows(rows, list(frame.columns), first)
    assert "row" not in rows[0]


def test_a_long_value_is_shortened_with_an_ellipsis() -> None:
    rows = _rows(_evaluate(expect.in_range("amount", min=0), _wide()))
    tail = rows[0]["tail"]
    assert tail.endswith("…") and tail.startswith("xxx") and len(tail) <= SAMPLE_VALUE_CHARS


@pytest.mark.parametrize("keep", [[1, 3], [1, 2, 5]], ids=["evenly_spaced", "uneven"])
def test_a_filtered_frame_has_the_same_shape_whatever_its_index(keep: list[int]) -> None:
    """pandas keeps a RangeIndex for evenly spaced rows and an Index otherwise: the
    sample used to carry a "row" key only in the second case."""
    frame = pd.DataFrame({"id": range(6), "x": [1, -1, -2, -3, 1, -5]}).iloc[keep]

    @check(asset="orders")
    def negative(orders: pd.DataFrame) -> CheckResult:
        return CheckResult(False, failing_rows=orders)

    rows = _rows(run_check(negative, frame, {}.__getitem__))
    assert [list(r) for r in rows] == [["id", "x"]] * len(keep)


def test_a_meaningful_index_is_a_column_as_it_is_stored() -> None:
    totals = pd.DataFrame({"customer": ["a", "b", "a"], "x": [1, -2, -3]})
    grouped = totals.groupby("customer").sum()  # indexed by customer

    @check(asset="orders")
    def by_customer(orders: pd.DataFrame) -> CheckResult:
        return CheckResult(False, failing_rows=grouped[grouped.x < 0])

    rows = _rows(run_check(by_customer, totals, {}.__getitem__))
    assert rows == [{"customer": "a", "x": -2}, {"customer": "b", "x": -2}]


@pytest.mark.parametrize(
    "failing",
    [
        [{"id": 1, "x": -1}],
        pd.Series([-1, -2], name="x"),
        [-1, -2],
    ],
    ids=["list_of_dicts", "series", "list_of_values"],
)
def test_a_check_result_of_any_form_gives_objects(failing: Any) -> None:
    @check(asset="orders")
    def anything(orders: pd.DataFrame) -> CheckResult:
        return CheckResult(False, failing_rows=failing)

    rows = _rows(run_check(anything, pd.DataFrame({"x": [1]}), {}.__getitem__))
    assert all(isinstance(r, dict) and r for r in rows)


def test_sql_samples_whole_rows() -> None:
    frame = _wide()
    rows = _rows(_evaluate(expect.sql("select * from orders where amount < 0"), frame))
    _assert_whole_rows(rows, list(frame.columns), [])
    assert [r["amount"] for r in rows] == [-2, -4, -6, -8]


def test_a_schema_check_samples_whole_rows_failing_column_first() -> None:
    schema = pa.DataFrameSchema({"amount": pa.Column(int, pa.Check.ge(0))})
    frame = _wide()
    result = validate_schema("orders", schema, frame)
    [outcome] = result.outcomes
    _assert_whole_rows(_rows(outcome), list(frame.columns), ["amount"])


def test_values_keep_their_json_types_exactly() -> None:
    frame = pd.DataFrame(
        {
            "x": [-1, -2],
            "f": [0.1 + 0.2, float("nan")],
            "d": pd.to_datetime(["2026-01-02 03:04:05", None]),
            "s": ["é", None],
        }
    )
    rows = _rows(_evaluate(expect.in_range("x", min=0), frame))
    assert rows[0] == {"x": -1, "f": 0.1 + 0.2, "d": "2026-01-02T03:04:05", "s": "é"}
    assert rows[1] == {"x": -2, "f": None, "d": None, "s": None}


ASSETS = f"""
import pandas as pd
from vibepiper import asset, expect

@asset(checks=[expect.in_range("amount", min=0, severity="warn")])
def orders() -> pd.DataFrame:
    columns = {{f"note{{i:02}}": ["a long remark " * 4] * 6 for i in range({WIDE})}}
    return pd.DataFrame({{**columns, "amount": [5, -3, 7, -4, 1, 2]}})
"""


def test_the_catalog_and_check_show_the_failing_column(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"shop": ASSETS})
    done = run_cli(root, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    [(sample,)] = catalog_rows(
        root, "SELECT sample FROM check_results WHERE check_name = 'in_range_amount'"
    )
    rows = json.loads(sample)
    assert [r["amount"] for r in rows] == [-3, -4]
    assert all(next(iter(r)) == "amount" and len(r) == WIDE + 1 for r in rows)
    checked = run_cli(root, "check")
    samples = [line for line in checked.stdout.splitlines() if line.startswith("      {")]
    assert samples and all('"amount": -' in line for line in samples), checked.stdout
    # Each printed row is whole: the same row as in the catalog, every column.
    assert [json.loads(line) for line in samples] == rows
