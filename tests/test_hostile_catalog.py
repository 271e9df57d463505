"""Hostile input: a bad catalog (garbage, a directory, a newer or unreadable schema
version, someone else's DuckDB database, a missing table) is refused by every command with
one line naming it, and left untouched.

The contract (docs/cli.md): every bad input gets one line on stderr starting `error:` that
names the culprit and the fix, exit 2 for usage/definition/selection errors (and SQL errors
in `query`), exit 1 for a failed asset or a catalog/store problem; never a traceback; and
nothing already published is lost or changed.

A catalog of garbage for `history` and a newer catalog for history/materialize/query are
in test_catalog.py.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import invoke, run_cli
from tests.helpers.output import error_line
from tests.helpers.state import catalog_files, catalog_path, store_hashes

pytestmark = pytest.mark.usefixtures("forget_project_modules")


def _replace_catalog(root: Path, content: bytes | None) -> None:
    path = catalog_path(root)
    path.unlink()
    for extra in path.parent.glob("catalog.duckdb.*"):  # a .wal
        extra.unlink()
    if content is None:
        path.mkdir()
        (path / "keep").write_text("a file in the folder")
    else:
        path.write_bytes(content)


def _set_schema_version(root: Path, value: str) -> None:
    con = duckdb.connect(str(catalog_path(root)))
    try:
        con.execute("UPDATE vibepiper_meta SET value = ? WHERE key = 'schema_version'", [value])
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _foreign_database(root: Path) -> None:
    """A DuckDB database of someone else's, with a `runs` table of its own."""
    path = catalog_path(root)
    for old in path.parent.glob("catalog.duckdb*"):
        old.unlink()
    con = duckdb.connect(str(catalog_path(root)))
    try:
        con.execute("CREATE TABLE runs (x INTEGER); INSERT INTO runs VALUES (42)")
        con.execute("CREATE TABLE mine AS SELECT 1 AS a")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _drop_a_table(root: Path) -> None:
    con = duckdb.connect(str(catalog_path(root)))
    try:
        con.execute("DROP VIEW current_materializations")
        con.execute("DROP TABLE lineage")
        con.execute("CHECKPOINT")
    finally:
        con.close()


BAD_CATALOGS: dict[str, Callable[[Path], None]] = {
    "text": lambda root: _replace_catalog(root, b"this is not a database\n" * 200),
    "random bytes": lambda root: _replace_catalog(root, random.Random(5).randbytes(16384)),
    "empty file": lambda root: _replace_catalog(root, b""),
    "a directory": lambda root: _replace_catalog(root, None),
    "newer schema version": lambda root: _set_schema_version(root, "99"),
    "schema version not a number": lambda root: _set_schema_version(root, "three"),
    "a DuckDB database that is not a catalog": _foreign_database,
    "a catalog missing a table and a view": _drop_a_table,
}

CATALOG_COMMANDS = {
    "status": ["status"],
    "materialize": ["materialize"],
    "history": ["history", "clean"],
    "query": ["query", "select 1"],
    "doctor": ["doctor"],
}

CATALOG_BUGS: dict[str, str] = {}  # all fixed


def _catalog_case(kind: str) -> Any:
    marks = (
        [pytest.mark.xfail(strict=True, reason=CATALOG_BUGS[kind])] if kind in CATALOG_BUGS else []
    )
    return pytest.param(kind, marks=marks, id=kind)


CATALOG_COMBINATION_BUGS: dict[tuple[str, str], str] = {}  # all fixed


@pytest.mark.parametrize("command", list(CATALOG_COMMANDS))
@pytest.mark.parametrize("kind", [_catalog_case(k) for k in BAD_CATALOGS])
def test_every_command_refuses_a_bad_catalog_naming_it_and_leaves_it_untouched(
    built_shop: Path,
    kind: str,
    command: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if (kind, command) in CATALOG_COMBINATION_BUGS:
        reason = CATALOG_COMBINATION_BUGS[kind, command]
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    monkeypatch.setenv("VIBEPIPER_NO_SNAPSHOT", "1")  # every command imports the project
    root = built_shop
    BAD_CATALOGS[kind](root)
    path = catalog_path(root)
    catalog_before = catalog_files(root)
    store_before = store_hashes(root)

    result = invoke(root, *CATALOG_COMMANDS[command])

    assert result.exit_code == 1, result.output
    line = error_line(result.stderr)
    assert str(path) in line
    assert result.stdout == ""
    assert catalog_files(root) == catalog_before
    assert store_hashes(root) == store_before


def test_a_bad_catalog_is_refused_by_the_real_cli_too(built_shop: Path) -> None:
    """One case of the matrix above through a real process (exit codes, stderr)."""
    root = built_shop
    _replace_catalog(root, random.Random(6).randbytes(8192))
    before = catalog_files(root), store_hashes(root)
    for args in (["status"], ["doctor"], ["materialize"]):
        result = run_cli(root, *args)
        assert result.returncode == 1, args
        assert str(catalog_path(root)) in error_line(result.stderr)
    assert (catalog_files(root), store_hashes(root)) == before
