"""What `vibepiper query` says when it will not answer (issue 16, defect 12).

A SQL error says what DuckDB found, with the read-only hint only when the error is about
writing; a refused statement is named as the user typed it (INSTALL, not DuckDB's LOAD)
with the reason; more than one statement is refused (exit 2) instead of silently
showing only the last result.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import invoke, run_cli
from tests.helpers.output import error_line, one_line_error

pytestmark = pytest.mark.usefixtures("forget_project_modules")


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("selec 1", 'syntax error at or near "selec"'),
        ("select nope from runs", 'column "nope" not found'),
        ("select * from nowhere", "nowhere does not exist"),
        ("select 'a'::int", "Could not convert string 'a'"),
    ],
)
def test_a_sql_error_is_not_blamed_on_the_read_only_catalog(
    shared_shop: Path, sql: str, says: str
) -> None:
    result = invoke(shared_shop, "query", sql)
    assert result.exit_code == 2, result.output
    line = error_line(result.stderr)
    assert line.startswith("error: query failed: ") and says in line, line
    assert "read-only" not in line, line
    assert line.endswith("see `vibepiper query --help`"), line


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("PRAGMA enable_profiling", "settings"),
        ("select * from read_csv('/etc/hostname')", "not files"),
    ],
)
def test_an_error_about_the_sandbox_says_why(shared_shop: Path, sql: str, says: str) -> None:
    result = invoke(shared_shop, "query", sql)
    assert result.exit_code == 2, result.output
    line = error_line(result.stderr)
    assert line.startswith("error: query failed: ") and says in line, line


@pytest.mark.parametrize(
    ("sql", "kind", "why"),
    [
        ("INSTALL httpfs", "INSTALL", "extensions"),
        ("FORCE INSTALL httpfs", "FORCE INSTALL", "extensions"),
        ("LOAD httpfs", "LOAD", "extensions"),
        ("/* hello */ delete from runs", "DELETE", "read-only"),
        ("SET threads = 1", "SET", "settings"),
        ("USE catalog", "USE", "settings"),
        ("BEGIN", "BEGIN", "read-only"),
        ("WITH r AS (SELECT 1) INSERT INTO runs SELECT * FROM r", "INSERT", "read-only"),
    ],
)
def test_a_refused_statement_is_named_as_typed_with_the_reason(
    shared_shop: Path, sql: str, kind: str, why: str
) -> None:
    result = invoke(shared_shop, "query", sql)
    assert result.exit_code == 2, result.output
    line = error_line(result.stderr)
    assert line.startswith(f"error: query failed: {kind} statements are refused: "), line
    assert why in line, line


@pytest.mark.parametrize("sql", ["select 1; select 2", "select 1;\n-- two\nselect 2;"])
def test_more_than_one_statement_is_refused_in_one_line(shared_shop: Path, sql: str) -> None:
    result = run_cli(shared_shop, "query", sql)
    line = one_line_error(result, "2 statements", "one")
    assert line.startswith("error: query failed: "), line
    assert result.stdout == ""


def test_one_statement_with_a_trailing_semicolon_runs(shared_shop: Path) -> None:
    result = invoke(shared_shop, "query", "select 41 + 1 as answer;", "--json")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == '[\n{"answer": 42}\n]'
