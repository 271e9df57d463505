"""Hostile input: bad selectors, unknown names (with newlines), absurd depths and limits,
click usage errors and a home that is a file are one line and exit 2, changing nothing.

The contract (docs/cli.md): every bad input gets one line on stderr starting `error:` that
names the culprit and the fix, exit 2 for usage/definition/selection errors (and SQL errors
in `query`), exit 1 for a failed asset or a catalog/store problem; never a traceback; and
nothing already published is lost or changed.

Invalid selectors at the `resolve` level are in test_selection.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import invoke, run_cli
from tests.helpers.output import error_line
from tests.helpers.state import catalog_state, project_hashes, store_hashes

pytestmark = pytest.mark.usefixtures("forget_project_modules")

SELECTORS = [
    "../x",
    "a/b",
    "'; drop table runs; --",
    "tag:",
    "group:",
    "+",
    "++x",
    "x++",
    "@",
    "1+",
    "+-1x",
    "nomatch*",
    "CLEAN",
    "ünï©ødé ☃",
    "\u202eclean",  # right-to-left override
    "clean%",
]

SELECTOR_COMMANDS = {
    "materialize": ["materialize"],
    "materialize --exclude": ["materialize", "--exclude"],
    "status": ["status"],
    "list": ["list"],
    "lineage": ["lineage"],
    "history": ["history"],
    "show": ["show"],
    "explain": ["explain"],
    "logs latest NAME": ["logs", "latest"],
}


@pytest.mark.parametrize("command", list(SELECTOR_COMMANDS))
@pytest.mark.parametrize("selector", SELECTORS)
def test_a_bad_selector_or_asset_is_one_line_exit_2_and_changes_nothing(
    shared_shop: Path, selector: str, command: str
) -> None:
    root = shared_shop
    before = catalog_state(root), store_hashes(root)

    result = invoke(root, *SELECTOR_COMMANDS[command], selector)

    assert result.exit_code == 2, result.output
    line = error_line(result.stderr)
    # names the culprit (escaped when it holds invisible characters)
    assert any(f"'{term}" in line or repr(term)[:-1] in line for term in selector.split()), line
    assert "vibepiper list" in line or "use an asset name" in line  # and the fix
    assert result.stdout == ""
    assert (catalog_state(root), store_hashes(root)) == before


def test_bad_selectors_through_the_real_cli(shared_shop: Path) -> None:
    root = shared_shop
    before = catalog_state(root)
    for args in (
        ["materialize", "'; drop table runs; --"],
        ["status", "../x"],
        ["history", "x' OR '1'='1"],
        ["logs", "latest", "%"],
    ):
        result = run_cli(root, *args)
        assert result.returncode == 2, args
        error_line(result.stderr)
    assert catalog_state(root) == before


def test_a_selector_with_an_absurd_depth_is_a_selection_error(shared_shop: Path) -> None:
    result = invoke(shared_shop, "status", "9" * 5000 + "+clean")
    assert result.exit_code == 2
    error_line(result.stderr)


@pytest.mark.parametrize(
    "args",
    [["history", "clean\n"], ["show", "x\ny"], ["explain", "x\ny"], ["logs", "x\ny"]],
    ids=["history", "show", "explain", "logs"],
)
def test_an_unknown_name_with_a_newline_is_still_one_line(
    shared_shop: Path, args: list[str]
) -> None:
    result = invoke(shared_shop, *args)
    assert result.exit_code == 2
    error_line(result.stderr)


@pytest.mark.parametrize("args", [["history", "clean"], ["runs"]], ids=["history", "runs"])
def test_an_absurd_limit_is_a_usage_error_naming_the_option(
    shared_shop: Path, args: list[str]
) -> None:
    before = catalog_state(shared_shop)
    result = invoke(shared_shop, *args, "--limit", str(10**30))
    assert catalog_state(shared_shop) == before
    assert result.exit_code == 2
    assert "--limit" in error_line(result.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ["materialize", "--no-such-option"],
        ["show"],
        ["show", "clean", "--limit", "ten"],
        ["lineage", "clean", "--format", "xml"],
        ["no-such-command"],
        ["show", "clean", "extra"],
    ],
    ids=[
        "unknown option",
        "missing argument",
        "bad integer",
        "bad choice",
        "unknown command",
        "extra argument",
    ],
)
def test_click_usage_errors_are_one_line_too(shared_shop: Path, args: list[str]) -> None:
    result = invoke(shared_shop, *args)
    assert result.exit_code == 2
    line = error_line(result.stderr)
    assert line.endswith("--help`"), line  # the fix: where to read the usage


@pytest.mark.parametrize("args", [["status"], ["query", "select 1"]], ids=["status", "query"])
def test_a_home_that_is_a_file_is_one_line(built_shop: Path, args: list[str]) -> None:
    before = project_hashes(built_shop)
    result = run_cli(built_shop, "--home", "pyproject.toml", *args)
    assert project_hashes(built_shop) == before
    assert result.returncode == 1  # a catalog/store problem, not a usage error
    assert "pyproject.toml" in error_line(result.stderr)
