"""Hostile SQL in `vibepiper query`: writes, escapes from the sandbox (files, extensions,
secrets, ATTACH, PRAGMA, hidden second statements) are refused with one line (exit 2) and
change nothing; every kind of reading statement runs.

The contract (docs/cli.md): every bad input gets one line on stderr starting `error:` that
names the culprit and the fix, exit 2 for usage/definition/selection errors (and SQL errors
in `query`), exit 1 for a failed asset or a catalog/store problem; never a traceback; and
nothing already published is lost or changed.

The first FORBIDDEN list of `query` is in test_catalog.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import invoke, run_cli
from tests.helpers.output import error_line
from tests.helpers.state import catalog_path, catalog_state, project_hashes

pytestmark = pytest.mark.usefixtures("forget_project_modules")

REFUSED_SQL = {
    "drop table runs": "DROP TABLE runs",
    "delete from runs": "DELETE FROM runs",
    "delete from catalog.materializations": "DELETE FROM catalog.materializations",
    "update runs": "UPDATE runs SET status = 'x'",
    "create table in the catalog": "CREATE TABLE catalog.x AS SELECT 1",
    "alter a catalog table": "ALTER TABLE catalog.runs ADD COLUMN z INTEGER",
    "read_parquet of /tmp/*.parquet": "SELECT * FROM read_parquet('/tmp/*.parquet')",
    "read_blob": "SELECT * FROM read_blob('/etc/hostname')",
    "parquet_metadata": "SELECT * FROM parquet_metadata('{store}/clean/*.parquet')",
    "export database": "EXPORT DATABASE '{out}/export'",
    "copy to /dev/stdout": "COPY (SELECT * FROM runs) TO '/dev/stdout'",
    "create secret": "CREATE SECRET s (TYPE s3)",
    "force install": "FORCE INSTALL httpfs",
    "load an extension file": "LOAD '{out}/evil.duckdb_extension'",
    "attach the catalog again": "ATTACH '{catalog}' AS rw",
    "pragma enable_profiling": "PRAGMA enable_profiling",
    "pragma threads": "PRAGMA threads=1",
    "pragma memory_limit": "PRAGMA memory_limit='1GB'",
    "set global lock_configuration": "SET GLOBAL lock_configuration = false",
    "reset lock_configuration": "RESET lock_configuration",
    "select then drop": "select 1; drop table runs",
    "select then catalog drop": "select 1; DROP TABLE catalog.runs",
    "block comment before a write": "/* read only */ DELETE FROM catalog.runs",
    "line comment hiding a write": "select 1 -- harmless\n; DELETE FROM catalog.runs",
    "a transaction around a write": "BEGIN; DELETE FROM catalog.runs; COMMIT",
    "use catalog, then drop": "USE catalog; DROP TABLE runs",
    "two reads (only one statement runs)": "SELECT 1; SELECT 2",
}


@pytest.mark.parametrize(
    "case",
    [
        *REFUSED_SQL,
        "create table x",
        "drop view runs",
        "create macro",
        "insert into a view",
    ],
)
def test_query_refuses_writes_and_escapes_with_one_line_and_changes_nothing(
    shared_shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    root = shared_shop
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("HOME", str(out))  # where DuckDB would put extensions and secrets
    sql = {
        **REFUSED_SQL,
        "create table x": "CREATE TABLE x AS SELECT 1",
        "drop view runs": "DROP VIEW runs",
        "create macro": "CREATE MACRO m(x) AS x",
        "insert into a view": "INSERT INTO runs SELECT * FROM runs",
    }[case].format(out=out, store=root / ".vibepiper" / "store", catalog=catalog_path(root))
    before = catalog_state(root), project_hashes(root)

    result = invoke(root, "query", sql)

    assert (catalog_state(root), project_hashes(root)) == before
    assert list(out.iterdir()) == []
    assert result.exit_code == 2, result.output  # docs/cli.md: a SQL error in query is 2
    assert error_line(result.stderr).startswith("error: query failed: ")
    assert result.stdout == ""


@pytest.mark.parametrize(
    "sql",
    [
        "WITH r AS (SELECT * FROM runs) SELECT count(*) FROM r",
        "DESCRIBE runs",
        "SHOW TABLES",
        "SUMMARIZE runs",
        "EXPLAIN SELECT * FROM runs",
        "PRAGMA table_info('runs')",
        "CALL duckdb_tables()",
        "PIVOT materializations ON status USING count(*) GROUP BY asset",
    ],
)
def test_query_runs_every_kind_of_reading_statement(shared_shop: Path, sql: str) -> None:
    result = invoke(shared_shop, "query", sql)
    assert result.exit_code == 0, result.output + result.stderr


def test_query_writes_are_refused_by_the_real_cli_too(shared_shop: Path, tmp_path: Path) -> None:
    root = shared_shop
    before = catalog_state(root), project_hashes(root)
    for sql in (
        "/* read only */ select 1; DROP TABLE catalog.runs",
        "SELECT * FROM read_parquet('/tmp/*.parquet')",
    ):
        result = run_cli(root, "query", sql, env={"HOME": str(tmp_path)})
        assert result.returncode == 2, sql
        assert error_line(result.stderr).startswith("error: query failed: ")
    assert (catalog_state(root), project_hashes(root)) == before


@pytest.mark.parametrize("sql", ["", "   ", ";", "-- only a comment"])
def test_query_with_no_statement_is_a_usage_error(shared_shop: Path, sql: str) -> None:
    result = invoke(shared_shop, "query", "--", sql)
    assert result.exit_code == 2
    error_line(result.stderr)
