"""Hostile input: bad asset names are definition errors naming the module and the fix;
valid names that are SQL words stay queryable; names with LIKE wildcards, quotes or SQL
match exactly in lineage, history and logs, never another asset.

The contract (docs/cli.md): every bad input gets one line on stderr starting `error:` that
names the culprit and the fix, exit 2 for usage/definition/selection errors (and SQL errors
in `query`), exit 1 for a failed asset or a catalog/store problem; never a traceback; and
nothing already published is lost or changed.

Bad names at decoration time are in test_definitions.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import invoke, run_cli, write_project
from tests.helpers.output import check_cli_result, error_line
from tests.helpers.state import catalog_path, catalog_state
from vibepiper.text import quoted

pytestmark = pytest.mark.usefixtures("forget_project_modules")

# -- names that are not valid, and names that are SQL words -------------------------------

NAME_MODULE = """
import pandas as pd
from vibepiper import asset

@asset(name={name!r})
def made() -> pd.DataFrame:
    return pd.DataFrame({{"a": [1]}})

@asset
def fine() -> pd.DataFrame:
    return pd.DataFrame({{"a": [2]}})
"""

BAD_ASSET_NAMES = {
    "dot dot": "..",
    "parent path": "../x",
    "backslash": "a\\b",
    "single quote": "x'y",
    "double quote": 'x"y',
    "sql text": "x; drop table runs",
    "unicode": "ünïcode",
    "zero-width space": "\u200bzero",
    "uppercase": "ASSET",
    "leading digit": "1st",
    "empty": "",
    "a space": " ",
    "a dot": "x.y",
    "a glob": "x*",
    "a selector": "tag:x",
    "trailing newline": "orders\n",
    "very long (300 characters)": "a" * 300,
}

NAME_BUGS: dict[str, str] = {}  # all fixed


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            v,
            id=k,
            marks=[pytest.mark.xfail(strict=True, reason=NAME_BUGS[k])] if k in NAME_BUGS else [],
        )
        for k, v in BAD_ASSET_NAMES.items()
    ],
)
def test_a_bad_asset_name_is_a_definition_error_on_the_cli(
    project_dir: Callable[..., Path], name: str
) -> None:
    root = project_dir({"hostile_names": NAME_MODULE.format(name=name)})

    result = invoke(root, "list")

    assert result.exit_code == 2, result.output
    line = error_line(result.stderr)
    assert f"asset name {name!r} is not valid" in line
    assert "hostile_names" in line  # the module
    assert "lowercase letters" in line  # the fix
    assert not catalog_path(root).exists()


def test_a_bad_asset_name_through_the_real_cli(project_dir: Callable[..., Path]) -> None:
    root = project_dir({"hostile_names": NAME_MODULE.format(name="x; drop table runs")})
    for args in (["materialize"], ["status"]):
        result = run_cli(root, *args)
        assert result.returncode == 2
        assert "'x; drop table runs' is not valid" in error_line(result.stderr)
    assert not (root / ".vibepiper" / "store").exists()


SQL_WORD_NAMES = ["runs", "lineage", "catalog", "assets", "quarantine", "select", "main", "_"]


def test_valid_names_that_are_sql_words_or_catalog_tables_stay_queryable(
    project_dir: Callable[..., Path],
) -> None:
    source = "import pandas as pd\nfrom vibepiper import asset\n" + "".join(
        f"\n@asset(name={n!r})\ndef made_{i}() -> pd.DataFrame:\n"
        f"    return pd.DataFrame({{'v': [{i}]}})\n"
        for i, n in enumerate(SQL_WORD_NAMES)
    )
    root = project_dir({"sql_words": source})
    assert run_cli(root, "materialize").returncode == 0

    for i, name in enumerate(SQL_WORD_NAMES):
        result = invoke(root, "query", "--json", f'select v from assets."{name}"')
        assert result.exit_code == 0, (name, result.output)
        assert json.loads(result.stdout) == [{"v": i}]
    # the catalog tables keep their names
    runs = invoke(root, "query", "--json", "select count(*) as n from runs")
    assert json.loads(runs.stdout) == [{"n": 1}]
    lineage = invoke(root, "query", "--json", "select count(*) as n from lineage")
    assert json.loads(lineage.stdout) == [{"n": 0}]


# -- names matched exactly, never as a pattern ---------------------------------------------

LIKE_MODULE = """
import pandas as pd
from vibepiper import Context, asset

@asset
def a_b(context: Context) -> pd.DataFrame:
    context.log.info("made a_b")
    return pd.DataFrame({"v": [1]})

@asset
def axb(context: Context) -> pd.DataFrame:
    context.log.info("made axb")
    return pd.DataFrame({"v": [2]})

@asset
def a_bc(a_b: pd.DataFrame, context: Context) -> pd.DataFrame:
    context.log.info("made a_bc")
    return a_b.assign(w=3)

@asset
def ab(context: Context) -> pd.DataFrame:
    context.log.info("made ab")
    return pd.DataFrame({"v": [4]})
"""
LIKE_ASSETS = {"a_b", "axb", "a_bc", "ab"}


@pytest.fixture(scope="module")
def like_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_project(tmp_path_factory.mktemp("like") / "proj", {"like_names": LIKE_MODULE})
    result = invoke(root, "materialize")
    assert result.exit_code == 0, result.output
    return root


def _name_commands(name: str) -> dict[str, list[str]]:
    return {
        "history": ["history", "--json", "--", name],
        "lineage": ["lineage", "--format", "json", "--", name],
        "logs": ["logs", "--json", "--", "latest", name],
    }


def _check_name_answer(root: Path, name: str) -> None:
    for command, args in _name_commands(name).items():
        result = invoke(root, *args)
        check_cli_result(result)
        if name not in LIKE_ASSETS:
            assert result.exit_code == 2, (command, result.output)
            line = error_line(result.stderr)
            assert f"unknown asset {quoted(name)}" in line
            assert result.stdout == ""
            continue
        assert result.exit_code == 0, (command, result.output)
        answer = json.loads(result.stdout)
        if command == "history":
            assert answer and {row["asset"] for row in answer} == {name}
        elif command == "logs":
            assert [row["message"] for row in answer] == [f"made {name}"]
        else:
            around = {"a_b": {"a_b", "a_bc"}, "a_bc": {"a_b", "a_bc"}}.get(name, {name})
            assert {node["name"] for node in answer["nodes"]} == around


@pytest.mark.parametrize(
    "name",
    [
        *sorted(LIKE_ASSETS),
        "a%",
        "a_",
        "%",
        "_",
        "a_b%",
        "a\\_b",
        "_b",
        "a__b",
        "a_b'",
        "a_b' OR '1'='1",
        "a_b'; DROP TABLE runs; --",
        'a_b"',
        "a_b\\",
        "A_B",
        "a_b ",
        " a_b",
        "",
    ],
)
def test_lineage_history_and_logs_match_names_exactly(like_project: Path, name: str) -> None:
    before = catalog_state(like_project)
    _check_name_answer(like_project, name)
    assert catalog_state(like_project) == before


printable_name = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("ab_x%\\'\";-= *?[]")),
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
    ),
    max_size=12,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=st.one_of(st.sampled_from(sorted(LIKE_ASSETS)), printable_name))
def test_fuzz_hostile_names_get_an_error_naming_them_never_another_asset(
    like_project: Path, name: str
) -> None:
    _check_name_answer(like_project, name)
