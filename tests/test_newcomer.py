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


def test_a_command_run_from_a_subfolder_finds_the_project_above(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"pipeline": SHOP.replace("OPTIONS", "")})
    inner = root / "notebooks" / "drafts"
    inner.mkdir(parents=True)
    (root / "notebooks" / "pyproject.toml").write_text('[project]\nname = "notes"\n')
    done = run_cli(inner, "materialize")
    assert done.returncode == 0, done.stderr
    assert f"using the project in {root / 'pyproject.toml'}" in done.stderr
    assert (root / ".vibepiper" / "catalog.duckdb").exists()
    assert not (inner / ".vibepiper").exists()
    listed = run_cli(inner, "list")
    assert listed.returncode == 0 and "orders" in listed.stdout


def test_in_the_project_folder_itself_nothing_is_said_about_it(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"pipeline": SHOP.replace("OPTIONS", "")})
    done = run_cli(root, "list")
    assert done.returncode == 0 and "using the project" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("status", "--project", "proj"),
        ("status", "--project=proj"),
        ("list", "orders", "-m", "pipeline", "--project", "proj"),
    ],
)
def test_global_options_may_follow_the_command(tmp_path: Path, args: tuple[str, ...]) -> None:
    write_project(tmp_path / "proj", {"pipeline": SHOP.replace("OPTIONS", "")})
    done = run_cli(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    assert "orders" in done.stdout


def test_an_option_value_named_like_a_command_is_left_alone(tmp_path: Path) -> None:
    from vibepiper.cli.main import hoist_global_options

    commands = {"list", "status", "query"}
    assert hoist_global_options(["--project", "list", "status"], commands) == [
        "--project",
        "list",
        "status",
    ]
    assert hoist_global_options(["query", "--", "--project", "x"], commands) == [
        "query",
        "--",
        "--project",
        "x",
    ]
    assert hoist_global_options(["status", "--json", "--home", "h"], commands) == [
        "--home",
        "h",
        "status",
        "--json",
    ]


def test_init_writes_a_project_into_a_fresh_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "README.md").write_text("# shop\n")
    (repo / ".gitignore").write_text("*.log")
    done = run_cli(repo, "init", ".")
    assert done.returncode == 0, done.stderr
    assert (repo / "pyproject.toml").exists() and (repo / "assets.py").exists()
    assert (repo / "README.md").read_text() == "# shop\n"
    assert (repo / ".gitignore").read_text() == "*.log\n.vibepiper/\n__pycache__/\n"
    assert run_cli(repo, "materialize").returncode == 0


def test_init_refuses_a_folder_with_work_in_it_and_names_what_is_there(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "notes.txt").write_text("mine")
    done = run_cli(repo, "init", ".")
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "is not empty (it holds notes.txt)" in line and ".git" in line
    assert not (repo / "pyproject.toml").exists()
    assert (repo / "notes.txt").read_text() == "mine"


ORDERED = """
import pandas as pd
from vibepiper import asset

@asset
def setup() -> pd.DataFrame:
    return pd.DataFrame({"ok": [True]})

@asset
def raw() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2]})

@asset(deps=["setup"])
def report(raw: pd.DataFrame) -> pd.DataFrame:
    return raw
"""


def test_cli_lineage_marks_order_only_edges_in_every_format(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"pipeline": ORDERED})
    text = run_cli(root, "lineage", "report", "--upstream")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert [ln for ln in lines if "setup" in ln] == ["  <- setup  [never run, stale] (order only)"]
    assert [ln for ln in lines if "raw" in ln] == ["  <- raw  [never run, stale]"]
    import json

    graph = json.loads(run_cli(root, "lineage", "report", "--format", "json").stdout)
    assert sorted(graph["edges"]) == [["raw", "report"], ["setup", "report"]]
    assert graph["order_only_edges"] == [["setup", "report"]]
    dot = run_cli(root, "lineage", "report", "--format", "dot").stdout
    assert '"setup" -> "report" [style=dashed];' in dot and '"raw" -> "report";' in dot
    mermaid = run_cli(root, "lineage", "setup", "--format", "mermaid").stdout
    assert "  setup -.-> report" in mermaid.splitlines()


SLOW_PROPERTY = """
import time

import pytest
from hypothesis import given, settings, strategies as st


@pytest.mark.timeout(2)
@settings(deadline=None, max_examples=3)
@given(st.integers())
def test_past_its_timeout(x):
    time.sleep(1.5)
"""


def test_a_property_test_past_its_timeout_fails_loudly(tmp_path: Path) -> None:
    """Our pytest settings end a test past its timeout with a failure that says so, even
    inside hypothesis (whose callbacks wrapped the signal method's exception)."""
    import subprocess
    import sys

    (tmp_path / "test_slow_property.py").write_text(SLOW_PROPERTY)
    repo = Path(__file__).resolve().parents[1]
    config = ["-o", "addopts=", "-c", str(repo / "pyproject.toml"), "--rootdir", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *config, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0, done.stdout
    assert "+ Timeout +" in done.stdout + done.stderr


TWO = """
import pandas as pd
from vibepiper import asset

@asset
def raw() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2]})

@asset
def report(raw: pd.DataFrame) -> pd.DataFrame:
    return raw
"""


@pytest.mark.parametrize(
    "args",
    [
        ("--select", "report"),
        ("-s", "report"),
        ("--select=report",),
        ("-s", "raw+", "-s", "report"),
    ],
)
def test_select_is_also_an_option_as_in_dbt(tmp_path: Path, args: tuple[str, ...]) -> None:
    root = write_project(tmp_path / "proj", {"pipeline": TWO})
    assert run_cli(root, "materialize", "raw").returncode == 0
    done = run_cli(root, "materialize", "--force", *args, "--exclude", "raw")
    assert done.returncode == 0, done.stderr
    assert "report" in done.stdout and "raw " not in done.stdout
    import json

    listed = json.loads(run_cli(root, "list", *args, "--json").stdout)
    assert "report" in [row["name"] for row in listed]


@pytest.mark.parametrize("typed", [",", "raw,", ",report", "raw,,report"])
def test_an_empty_side_of_a_comma_echoes_what_was_typed(tmp_path: Path, typed: str) -> None:
    root = write_project(tmp_path / "proj", {"pipeline": TWO})
    done = run_cli(root, "list", typed)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith(f"error: selector '{typed}' has nothing on one side of a comma")
    assert "write a,b" in line


def test_the_site_shows_each_check_once_with_when_it_last_ran(tmp_path: Path) -> None:
    root = tmp_path / "cities"
    assert run_cli(tmp_path, "init", "cities").returncode == 0
    assert run_cli(root, "materialize").returncode == 0
    for _ in range(2):  # each `check` records its results again
        assert run_cli(root, "check").returncode == 0
    assert run_cli(root, "docs", "--out", "site").returncode == 0
    page = (root / "site" / "assets" / "countries.html").read_text()
    checks = page.split("<h3>Checks</h3>")[1].split("</table>")[0]
    import re

    rows = re.findall(r"<tr class=\"passed\"><td>([a-z_]+)</td>.*?</tr>", checks)
    assert sorted(rows) == ["not_null_population", "unique_country"]
    assert "<th>checked (UTC)</th>" in checks
    assert len(re.findall(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</td>", checks)) == 2


def test_without_a_terminal_each_asset_says_when_it_starts(tmp_path: Path) -> None:
    import re

    root = write_project(tmp_path / "proj", {"pipeline": TWO})
    done = run_cli(root, "materialize")  # stdout is a pipe, as in CI
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    started = [
        i
        for i, ln in enumerate(lines)
        if re.fullmatch(r" {6}(raw|report) +started +at \d\d:\d\d:\d\d UTC", ln)
    ]
    finished = [
        i for i, ln in enumerate(lines) if re.match(r"\[\d/2\] (raw|report) +succeeded", ln)
    ]
    assert len(started) == 2 and len(finished) == 2
    assert started[0] < finished[0] < started[1] < finished[1]
    again = run_cli(root, "materialize")  # nothing starts when everything is fresh
    assert "started" not in again.stdout


def test_outside_any_project_one_line_says_how_to_get_into_one(tmp_path: Path) -> None:
    inner = tmp_path / "nowhere" / "deeper"
    inner.mkdir(parents=True)
    done = run_cli(inner, "status")
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith(
        f"error: no VibePiper project here: no pyproject.toml with [tool.vibepiper] in {inner}"
    )
    assert "`vibepiper init DIR`" in line and "--project DIR" in line
