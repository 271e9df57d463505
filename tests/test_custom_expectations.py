"""Expectation kinds a project registers with `@register_expectation` (docs/expectations.md).

Evaluated directly (pass, fail, what the function may return, severities, quarantine),
then through a project: an error blocks downstream, a warning does not, both are recorded
in the catalog; a change to the expectation's code makes its asset stale; a bad
registration or an unknown name is one line and exit code 2 (SPEC §4).

The registry is per process: names registered by the tests below are distinct from one
another and from the `shop` project's (`even`, registered by module `shop`).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vibepiper import CheckResult, Project, asset, expect, register_expectation
from vibepiper.definitions.expect import Expectation, Severity
from vibepiper.errors import DefinitionError
from vibepiper.validation.expectations import ExpectResult, evaluate
from vibepiper.validation.validate import REASON_COLUMN, validate

from .conftest import catalog_rows, run_cli

FRAME = pd.DataFrame({"order_id": [1, 2, 3, 4], "qty": [2, 3, 4, 5]})


def no_reads(name: str) -> pd.DataFrame:
    raise KeyError(name)


def run(exp: Expectation, frame: pd.DataFrame = FRAME) -> ExpectResult:
    return evaluate("orders", exp, frame, no_reads)


@register_expectation("t_even")
def t_even(frame: pd.DataFrame, column: str) -> pd.Series:
    """Every value of `column` is even."""
    return frame[column] % 2 != 0


# --------------------------------------------------------------------------------------
# evaluated directly
# --------------------------------------------------------------------------------------


def test_passes() -> None:
    result = run(t_even("qty"), FRAME[FRAME.qty % 2 == 0])
    assert result.outcome.passed and result.outcome.failing_rows == 0
    assert result.outcome.sample is None and result.outcome.message == ""


def test_fails_with_count_message_sample_and_mask_like_a_builtin() -> None:
    exp = t_even("qty")
    assert (exp.kind, exp.name, exp.severity, exp.row_level) == (
        "t_even",
        "t_even_qty",
        "error",
        True,
    )
    result = run(exp)
    outcome = result.outcome
    assert not outcome.passed and outcome.blocking and outcome.kind == "expect"
    assert outcome.failing_rows == 2
    assert outcome.message == "t_even('qty') failed for 2 of 4 rows"
    assert json.loads(outcome.sample or "") == [
        {"order_id": 2, "qty": 3},
        {"order_id": 4, "qty": 5},
    ]
    assert list(result.row_mask) == [False, True, False, True]


def test_warn_severity_reports_without_blocking() -> None:
    exp = t_even("qty", severity="warn", name="qty_even")
    outcome = run(exp).outcome
    assert (outcome.name, outcome.severity, outcome.passed) == ("qty_even", Severity.WARN, False)
    assert outcome.severity == "warn" and not outcome.blocking and outcome.failing_rows == 2


def test_by_name_is_the_same_expectation() -> None:
    assert expect.custom("t_even", "qty") == t_even("qty")
    assert expect.custom("t_even", "qty", severity="warn").severity == "warn"


# key -> (what the function returns, passed, failing rows, message start, sampled);
# in the message, {d} is the expectation described: t_forms('key')
FORMS: dict[str, tuple[object, bool, int, str, bool]] = {
    "frame": (FRAME[FRAME.qty > 3], False, 2, "{d} found 2 failing rows", True),
    "empty_frame": (FRAME.iloc[:0], True, 0, "", False),
    "count": (3, False, 3, "{d} found 3 failing rows", False),
    "zero": (0, True, 0, "", False),
    "false": (False, False, 0, "{d} failed", False),
    "numpy_true": (np.True_, True, 0, "", False),
    "result": (CheckResult(False, message="too few boxes"), False, 0, "too few boxes", False),
    "result_rows": (
        CheckResult(False, failing_rows=FRAME.head(1)),
        False,
        1,
        "{d} found 1 failing row",
        True,
    ),
    "ndarray": (np.array([True, False, False, False]), False, 1, "{d} failed for 1 of 4", True),
    "str": ("yes", False, 0, "{d} returned str; return a boolean Series", False),
    "negative": (-1, False, 0, "{d} returned a negative count (-1)", False),
    "int_series": (FRAME.qty, False, 0, "{d} returned a Series of int64, not a boolean", False),
    "short_mask": (pd.Series([True]), False, 0, "{d} returned a mask over 1 row that", False),
}


@register_expectation("t_forms")
def t_forms(frame: pd.DataFrame, key: str) -> object:
    return FORMS[key][0]


@pytest.mark.parametrize("key", list(FORMS))
def test_what_the_function_may_return(key: str) -> None:
    _, passed, count, message, sampled = FORMS[key]
    outcome = run(t_forms(key)).outcome
    assert (outcome.passed, outcome.failing_rows) == (passed, count)
    assert outcome.message.startswith(message.format(d=f"t_forms({key!r})"))
    assert outcome.message or passed
    assert (outcome.sample is not None) is sampled


@register_expectation
def t_raises(frame: pd.DataFrame) -> bool:
    return bool(1 / 0)


@register_expectation
def t_needs_column(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].isna()


def test_a_function_that_raises_is_a_failed_outcome_naming_the_exception_and_line() -> None:
    outcome = run(t_raises()).outcome
    assert not outcome.passed and outcome.blocking
    assert outcome.message.startswith("t_raises() could not be evaluated: ZeroDivisionError")
    assert "test_custom_expectations.py:" in outcome.message


def test_a_missing_column_is_named_like_a_builtins() -> None:
    outcome = run(t_needs_column("nope")).outcome
    assert (
        outcome.message == "column 'nope' not found in asset 'orders' (its columns: order_id, qty)"
    )


@register_expectation("t_in_other")
def t_in_other(frame: pd.DataFrame, column: str, to: pd.DataFrame, field: str) -> pd.Series:
    return ~frame[column].isin(to[field])


def test_to_reads_another_asset_and_depends_on_it() -> None:
    exp = t_in_other("qty", to="boxes", field="size")
    assert exp.to == "boxes" and exp.name == "t_in_other_qty_size_to_boxes"
    boxes = pd.DataFrame({"size": [2, 3, 4]})
    outcome = evaluate("orders", exp, FRAME, {"boxes": boxes}.__getitem__).outcome
    assert outcome.failing_rows == 1

    @asset(checks=[exp])
    def orders() -> pd.DataFrame:
        return FRAME

    assert orders.upstream == ("boxes",)


@register_expectation("t_total_at_most", scope="table")
def t_total_at_most(frame: pd.DataFrame, column: str, limit: int) -> CheckResult:
    total = frame[column].sum()
    return CheckResult(total <= limit, message=f"total {total} is above {limit}")


def test_quarantine_removes_the_failing_rows_of_a_row_level_one() -> None:
    @asset(quarantine=True, max_quarantined=0.5, checks=[t_even("qty"), t_total_at_most("qty", 6)])
    def orders() -> pd.DataFrame:
        return FRAME

    result = validate(orders, (), FRAME, no_reads)
    assert result.passed, result.outcomes
    assert list(result.frame.qty) == [2, 4]
    assert result.quarantined is not None and list(result.quarantined.qty) == [3, 5]
    assert list(result.quarantined[REASON_COLUMN]) == ["t_even_qty", "t_even_qty"]
    quarantined, total = result.outcomes
    assert quarantined.quarantined and not quarantined.blocking
    assert total.passed  # a table-scope one judges what quarantine left: 2 + 4


# --------------------------------------------------------------------------------------
# definition errors: one line, naming the expectation, saying how to fix it
# --------------------------------------------------------------------------------------


def _other_even(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column] % 2 == 1


DEFINITION_ERRORS: dict[str, tuple[Callable[[], object], str]] = {
    "registered_twice": (
        lambda: register_expectation("t_even")(_other_even),
        "expectation 't_even' is registered twice: by tests.test_custom_expectations.t_even "
        "and by tests.test_custom_expectations._other_even; give one of them another name",
    ),
    "builtin_name": (
        lambda: register_expectation("not_null")(_other_even),
        "expectation 'not_null' is a built-in (expect.not_null); register yours under another name",
    ),
    "unknown_name": (
        lambda: expect.custom("t_evn", "qty"),
        "no expectation is registered as 't_evn' (did you mean 't_even'?); register it "
        "with @register_expectation('t_evn')",
    ),
    "builtin_by_name": (
        lambda: expect.custom("unique", "qty"),
        "expectation 'unique' is a built-in; declare it with expect.unique(...)",
    ),
    "missing_argument": (
        lambda: t_even(),
        "expectation 't_even': missing a required argument: 'column'; call it as "
        "t_even(column, severity=..., name=...)",
    ),
    "unknown_keyword": (
        lambda: t_even("qty", colour="red"),
        "expectation 't_even': got an unexpected keyword argument 'colour'",
    ),
    "bad_severity": (
        lambda: t_even("qty", severity="fatal"),
        "t_even 't_even_qty': severity='fatal' is not valid",
    ),
    "bad_name": (
        lambda: register_expectation("Even Qty")(_other_even),
        "expectation name 'Even Qty' is not valid",
    ),
    "reserved_parameter": (
        lambda: register_expectation("t_sev")(lambda frame, severity: True),
        "expectation 't_sev': parameter 'severity' is reserved",
    ),
    "no_data_parameter": (
        lambda: register_expectation("t_nothing")(lambda: True),
        "expectation 't_nothing': its function takes no data parameter",
    ),
    "bad_scope": (
        lambda: register_expectation("t_scope", scope="column")(_other_even),  # type: ignore[call-overload]
        "expectation 't_scope': scope='column' is not valid",
    ),
}


@pytest.mark.parametrize("case", list(DEFINITION_ERRORS))
def test_definition_error(case: str) -> None:
    make, start = DEFINITION_ERRORS[case]
    with pytest.raises(DefinitionError) as caught:
        make()
    text = str(caught.value)
    assert text.startswith(start) and "\n" not in text
    assert caught.value.exit_code == 2


def test_pickled_by_name_for_other_processes() -> None:
    exp = t_even("qty", severity="warn")
    assert pickle.loads(pickle.dumps(exp)) == exp
    assert pickle.loads(pickle.dumps(exp)).custom == t_even


def test_registering_the_same_function_again_replaces_it() -> None:
    again = register_expectation("t_even")(t_even.fn)  # what importing its module again does
    assert expect.custom("t_even", "qty").custom is again


# --------------------------------------------------------------------------------------
# through a project
# --------------------------------------------------------------------------------------

SHOP = '''
import pandas as pd
from vibepiper import asset, register_expectation


@register_expectation("even")
def even(frame: pd.DataFrame, column: str) -> pd.Series:
    """Every value of `column` is even."""
    return frame[column] % 2 != 0


@asset(checks=[even("qty", severity="SEVERITY")])
def orders() -> pd.DataFrame:
    return pd.DataFrame({"order_id": [1, 2, 3], "qty": QTY})


@asset
def totals(orders: pd.DataFrame) -> pd.DataFrame:
    return orders[["qty"]].sum().to_frame().T
'''


def shop(project_dir: Callable[..., Path], severity: str = "error", qty: str = "[2, 3, 5]") -> Path:
    return project_dir({"shop": SHOP.replace("SEVERITY", severity).replace("QTY", qty)})


def checks_recorded(root: Path) -> list[tuple[object, ...]]:
    return catalog_rows(
        root,
        "SELECT check_name, severity, passed, failing_rows, message, sample FROM check_results",
    )


def test_an_error_blocks_publication_and_downstream(project_dir: Callable[..., Path]) -> None:
    root = shop(project_dir)
    result = Project(root).materialize()
    assert result.states == {"orders": "check_failed", "totals": "blocked"}
    [(name, severity, passed, count, message, sample)] = checks_recorded(root)
    assert (name, severity, passed, count) == ("even_qty", "error", False, 2)
    assert message == "even('qty') failed for 2 of 3 rows"
    assert json.loads(sample) == [{"order_id": 2, "qty": 3}, {"order_id": 3, "qty": 5}]


def test_a_warning_publishes_and_is_recorded(project_dir: Callable[..., Path]) -> None:
    root = shop(project_dir, severity="warn")
    result = Project(root).materialize()
    assert result.states == {"orders": "succeeded", "totals": "succeeded"}
    assert [r[:4] for r in checks_recorded(root)] == [("even_qty", "warn", False, 2)]
    assert list(Project(root).read("orders").qty) == [2, 3, 5]


def test_a_passing_one_publishes(project_dir: Callable[..., Path]) -> None:
    root = shop(project_dir, qty="[2, 4, 6]")
    assert Project(root).materialize().ok
    assert [r[:4] for r in checks_recorded(root)] == [("even_qty", "error", True, 0)]


def test_changing_its_code_makes_the_asset_stale(project_dir: Callable[..., Path]) -> None:
    root = shop(project_dir, qty="[2, 4, 6]")
    assert Project(root).materialize().ok
    module = root / "shop.py"
    source = module.read_text()
    module.write_text(source.replace('"""Every value of `column` is even."""', '"""Even."""'))
    assert Project(root).status()["orders"].fresh  # its docstring is not its code
    module.write_text(source.replace("% 2 != 0", "% 2 == 1"))
    verdict = Project(root).status()["orders"]
    assert not verdict.fresh
    assert [str(c) for c in verdict.causes] == ["expectation even() changed"]


def test_the_cli_exits_2_with_one_line_for_a_name_registered_twice(
    project_dir: Callable[..., Path],
) -> None:
    twice = (
        SHOP + '\n\n@register_expectation("even")\ndef even_again(frame, column):\n    return 0\n'
    )
    root = project_dir({"shop": twice.replace("SEVERITY", "error").replace("QTY", "[2]")})
    proc = run_cli(root, "materialize")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        "error: expectation 'even' is registered twice: by shop.even and by shop.even_again "
        "(in module shop); give one of them another name: @register_expectation('even_2')"
    )
    with pytest.raises(DefinitionError, match="registered twice"):
        Project(root)


def test_the_cli_exits_2_with_one_line_for_an_unknown_name(
    project_dir: Callable[..., Path],
) -> None:
    unknown = SHOP.replace('even("qty", severity="SEVERITY")', 'expect.custom("evn", "qty")')
    unknown = unknown.replace("import asset,", "import asset, expect,").replace("QTY", "[2]")
    proc = run_cli(project_dir({"shop": unknown}), "materialize")
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: no expectation is registered as 'evn' (did you mean 'even'?)")
    assert "(in module shop)" in line
