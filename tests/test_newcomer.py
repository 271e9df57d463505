"""What a new user trips over first (issue "what a new user trips over"): each case is
what they typed, and the one line (or the help) they should get back."""

from __future__ import annotations

from pathlib import Path

import pytest

from vibepiper import asset, expect
from vibepiper.errors import DefinitionError

from .conftest import run_cli, write_project

SHOP = """
import pandas as pd
from vibepiper import asset, expect

@asset(OPTIONS)
def orders() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2]})
"""


def one_line(stderr: str) -> str:
    [line] = stderr.strip().splitlines()
    return line


def test_bare_vibepiper_prints_its_help_and_succeeds(tmp_path: Path) -> None:
    done = run_cli(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("Usage: vibepiper [OPTIONS] COMMAND [ARGS]...\n")
    assert "\nCommands:\n" in done.stdout and "  materialize " in done.stdout


@pytest.mark.parametrize("word", ["run", "build"])
def test_dbt_words_for_a_run_point_to_materialize(tmp_path: Path, word: str) -> None:
    done = run_cli(tmp_path, word, "--select", "orders")
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith(f"error: there is no command '{word}': to compute assets, use ")
    assert "`vibepiper materialize`" in line and f"like dbt {word}" in line


def test_a_misspelt_command_still_gets_the_closest_one(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "histroy")
    assert done.returncode == 2
    assert "Did you mean 'history'?" in one_line(done.stderr)


@pytest.mark.parametrize(
    ("value", "shown", "fix"),
    [('"pipeline"', "'pipeline'", '["pipeline"]'), ("3", "3", '["shop"]')],
)
def test_modules_that_is_not_a_list_is_one_line(
    tmp_path: Path, value: str, shown: str, fix: str
) -> None:
    root = write_project(tmp_path / "proj", {"pipeline": SHOP.replace("OPTIONS", "")})
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('["pipeline"]', value))
    done = run_cli(root, "list")
    assert done.returncode == 2
    assert one_line(done.stderr) == (
        f"error: modules = {shown} in [tool.vibepiper] of {pyproject} is not a list; "
        f"write it as a list of module names: modules = {fix}"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            'tag="core"',
            "asset 'orders': @asset has no option 'tag' (did you mean 'tags'?)",
        ),
        (
            'checks=expect.unique("id")',
            "asset 'orders': checks= takes a list of expectations, not one expectation",
        ),
        (
            "checks=[expect.unique]",
            "asset 'orders': unique in checks= is not an expectation",
        ),
    ],
)
def test_misused_asset_options_are_one_line_naming_the_asset(
    tmp_path: Path, options: str, message: str
) -> None:
    root = write_project(tmp_path / "proj", {"shop": SHOP.replace("OPTIONS", options)})
    done = run_cli(root, "materialize")
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith(f"error: {message}"), line
    assert "build_asset" not in line and "not iterable" not in line


def test_the_python_api_raises_the_same_definition_errors() -> None:
    def orders() -> None: ...

    with pytest.raises(DefinitionError, match="has no option 'tag'"):
        asset(tag="core")(orders)
    with pytest.raises(DefinitionError, match="checks= takes a list"):
        asset(checks=expect.unique("id"))(orders)
    assert asset(checks=(expect.unique("id"),))(orders).checks == (expect.unique("id"),)
