"""Configuration overrides: `--set asset.param=value`, `Project.materialize(config=...)` and
`[tool.vibepiper.config.ASSET]` give values to an asset's configuration parameters (those
with a default). The values reach the function in every executor, are recorded with the
materialization, and are part of the code version: freshness follows them exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXECUTOR_ARGS, catalog_rows, run_cli, write_project
from tests.helpers.output import ok_json, one_line_error
from vibepiper.definitions.config import parse_set, parse_value
from vibepiper.errors import UsageError

SHOP = """
import pandas as pd
from vibepiper import asset

@asset
def orders(min_amount: int = 0, region: str = "all") -> pd.DataFrame:
    amounts = [5, 10, 20]
    return pd.DataFrame({"amount": [a for a in amounts if a >= min_amount], "region": region})

@asset
def big(orders: pd.DataFrame) -> pd.DataFrame:
    return orders.assign(n=len(orders))

@asset(version="1")
def pinned(factor: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({"x": [factor]})
"""


def shop(root: Path, tool: str = "") -> Path:
    return write_project(root, {"shop": SHOP}, tool=tool)


def latest_states(root: Path) -> dict[str, str]:
    """Each asset's state in the latest run."""
    rows = catalog_rows(
        root,
        "SELECT asset, status FROM materializations WHERE run_id = "
        "(SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1)",
    )
    return dict(rows)


def recorded_config(root: Path, asset: str) -> dict[str, Any]:
    """The configuration recorded with the latest materialization of `asset`."""
    rows = catalog_rows(
        root,
        "SELECT config FROM materializations WHERE asset = ? AND status = 'succeeded' "
        "ORDER BY finished_at DESC LIMIT 1",
        [asset],
    )
    return dict(json.loads(rows[0][0]))


def amounts(root: Path) -> list[int]:
    rows = ok_json(run_cli(root, "query", "select amount from orders order by 1", "--json"))
    return [r["amount"] for r in rows]


def materialize(root: Path, *args: str) -> None:
    done = run_cli(root, "materialize", *args)
    assert done.returncode == 0, done.stdout + done.stderr


# -- values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10", 10),
        ("-2.5", -2.5),
        ("true", True),
        ('"10"', "10"),
        ("'eu'", "eu"),
        ("eu", "eu"),  # a bare word that is not TOML: a string
        ("eu west", "eu west"),
        ("", ""),
        ("[1, 2]", [1, 2]),
        ("{a = 1}", {"a": 1}),
        ("1\nx = 2", "1\nx = 2"),  # one value, never more TOML
    ],
)
def test_a_value_is_read_as_toml_else_as_a_string(text: str, value: Any) -> None:
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def test_a_setting_is_asset_dot_parameter_equals_value() -> None:
    assert parse_set("orders.min_amount=10") == ("orders", "min_amount", 10)
    assert parse_set("orders.region=a=b") == ("orders", "region", "a=b")
    for bad in ("orders=10", "orders.min_amount", ".x=1", "orders.=1", "a.b.c=1"):
        with pytest.raises(UsageError, match=r"ASSET\.PARAMETER=VALUE"):
            parse_set(bad)


# -- the command line -----------------------------------------------------------------


def test_set_recomputes_then_skips_then_goes_back_to_the_default(tmp_path: Path) -> None:
    root = shop(tmp_path / "shop")
    materialize(root)
    assert amounts(root) == [5, 10, 20]

    materialize(root, "--set", "orders.min_amount=10")
    assert latest_states(root) == {"orders": "succeeded", "big": "succeeded", "pinned": "skipped"}
    assert amounts(root) == [10, 20]
    assert recorded_config(root, "orders") == {"min_amount": 10, "region": "all"}

    materialize(root, "--set", "orders.min_amount=10")
    assert set(latest_states(root).values()) == {"skipped"}

    status = ok_json(run_cli(root, "status", "--json", "--set", "orders.min_amount=10"))
    assert all(row["fresh"] for row in status)
    stale = ok_json(run_cli(root, "status", "--json"))
    orders = next(row for row in stale if row["name"] == "orders")
    assert not orders["fresh"] and orders["reasons"] == ["configuration changed"]
    explained = run_cli(root, "explain", "orders", "--set", "orders.min_amount=10")
    assert explained.returncode == 0 and "fresh" in explained.stdout, explained.stdout
    dry = run_cli(root, "materialize", "--dry-run", "--set", "orders.min_amount=10")
    assert "run " not in dry.stdout, dry.stdout

    materialize(root)
    assert latest_states(root)["orders"] == "succeeded"
    assert amounts(root) == [5, 10, 20]
    assert recorded_config(root, "orders") == {"min_amount": 0, "region": "all"}
    materialize(root)
    assert set(latest_states(root).values()) == {"skipped"}


def test_an_override_equal_to_the_default_changes_nothing_and_same_data_cuts_off(
    tmp_path: Path,
) -> None:
    root = shop(tmp_path / "shop")
    materialize(root)
    materialize(root, "--set", "orders.region=all", "--set", "orders.min_amount=0")
    assert set(latest_states(root).values()) == {"skipped"}
    materialize(root, "--set", "orders.min_amount=1")  # same rows: big stays fresh
    assert latest_states(root) == {"orders": "succeeded", "big": "skipped", "pinned": "skipped"}


def test_an_asset_with_a_pinned_version_is_recomputed_for_an_override(tmp_path: Path) -> None:
    root = shop(tmp_path / "shop")
    materialize(root)
    materialize(root, "--set", "pinned.factor=2.5")
    assert latest_states(root)["pinned"] == "succeeded"
    assert recorded_config(root, "pinned") == {"factor": 2.5}
    materialize(root, "--set", "pinned.factor=2.5")
    assert latest_states(root)["pinned"] == "skipped"
    materialize(root)
    assert latest_states(root)["pinned"] == "succeeded"


@pytest.mark.parametrize(
    "executor", ["threads", "processes", pytest.param("dask", marks=pytest.mark.slow)]
)
def test_overrides_reach_the_function_in_every_executor(tmp_path: Path, executor: str) -> None:
    if executor == "dask":
        pytest.importorskip("distributed")
    root = shop(tmp_path / "shop")
    materialize(root, *EXECUTOR_ARGS[executor], "--set", "orders.min_amount=20")
    assert latest_states(root) == {"orders": "succeeded", "big": "succeeded", "pinned": "succeeded"}
    assert amounts(root) == [20]
    materialize(root, *EXECUTOR_ARGS[executor], "--set", "orders.min_amount=20")
    assert set(latest_states(root).values()) == {"skipped"}


def test_the_snapshot_and_a_full_import_agree_on_code_versions(tmp_path: Path) -> None:
    root = shop(tmp_path / "shop")
    materialize(root, "--set", "orders.min_amount=10")
    fresh = run_cli(
        root, "status", "--json", "--set", "orders.min_amount=10",
        env={"VIBEPIPER_NO_SNAPSHOT": "1"},
    )  # fmt: skip
    assert all(row["fresh"] for row in ok_json(fresh))


def test_unknown_asset_or_parameter_is_one_line_with_a_suggestion(tmp_path: Path) -> None:
    root = shop(tmp_path / "shop")
    line = one_line_error(
        run_cli(root, "materialize", "--set", "ordrs.min_amount=1"), "'ordrs'", "'orders'"
    )
    assert "ordrs.min_amount" in line
    line = one_line_error(
        run_cli(root, "status", "--set", "orders.min_amout=1"), "'min_amout'", "'min_amount'"
    )
    assert "min_amount, region" in line
    one_line_error(run_cli(root, "materialize", "--set", "big.orders=1"), "'orders'", "big", "none")
    one_line_error(run_cli(root, "materialize", "--set", "orders=1"), "ASSET.PARAMETER=VALUE")
    one_line_error(run_cli(root, "explain", "orders", "--set", "orders.x"), "orders.x")
    assert not (root / ".vibepiper" / "catalog.duckdb").exists() or not catalog_rows(
        root, "SELECT * FROM runs"
    )


# -- pyproject.toml ---------------------------------------------------------------------


def test_pyproject_config_applies_everywhere_and_set_wins(tmp_path: Path) -> None:
    root = shop(tmp_path / "shop", "\n[tool.vibepiper.config.orders]\nmin_amount = 10\n")
    materialize(root)
    assert amounts(root) == [10, 20]
    assert recorded_config(root, "orders")["min_amount"] == 10
    assert all(row["fresh"] for row in ok_json(run_cli(root, "status", "--json")))
    materialize(root, "--set", "orders.min_amount=20")
    assert amounts(root) == [20]
    materialize(root)
    assert latest_states(root)["orders"] == "succeeded"
    assert amounts(root) == [10, 20]


@pytest.mark.parametrize(
    ("tool", "words"),
    [
        ("[tool.vibepiper.config.ordrs]\nmin_amount = 1\n", ["ordrs", "'orders'"]),
        ("[tool.vibepiper.config.orders]\nminamount = 1\n", ["orders.minamount", "min_amount"]),
        ("[tool.vibepiper.config]\norders = 1\n", ["orders"]),
        ("[tool.vibepiper]\nconfig = 1\n", ["config"]),
    ],
)
def test_a_wrong_pyproject_config_is_one_line_naming_the_file_and_key(
    tmp_path: Path, tool: str, words: list[str]
) -> None:
    root = write_project(tmp_path / "shop", {"shop": SHOP})
    text = (root / "pyproject.toml").read_text()
    if tool.startswith("[tool.vibepiper]\n"):  # a key of the existing table
        text = text.replace("[tool.vibepiper]\n", tool)
    else:
        text += "\n" + tool
    (root / "pyproject.toml").write_text(text)
    one_line_error(run_cli(root, "materialize"), "pyproject.toml", *words)


# -- the Python API ---------------------------------------------------------------------


def test_project_materialize_takes_config(tmp_path: Path, forget_project_modules: None) -> None:
    from vibepiper import Project

    root = shop(tmp_path / "shop")
    project = Project(root)
    result = project.materialize("orders", config={"orders": {"min_amount": 20}})
    assert result.states["orders"] == "succeeded"
    assert list(project.read("orders")["amount"]) == [20]
    assert project.status("orders", config={"orders": {"min_amount": 20}})["orders"].fresh
    assert not project.status("orders")["orders"].fresh
    assert project.plan("orders", config={"orders": {"min_amount": 20}})["orders"].fresh
    again = project.materialize("orders", config={"orders": {"min_amount": 20}})
    assert again.states["orders"] == "skipped"
    with pytest.raises(UsageError, match="did you mean 'region'"):
        project.materialize(config={"orders": {"regoin": "eu"}})


def test_check_require_fresh_judges_with_the_same_overrides(tmp_path: Path) -> None:
    root = shop(tmp_path / "shop")
    materialize(root, "--set", "orders.min_amount=10")
    same = run_cli(root, "check", "--require-fresh", "--set", "orders.min_amount=10")
    assert same.returncode == 0, same.stdout + same.stderr
    other = run_cli(root, "check", "--require-fresh")
    assert other.returncode == 1 and "configuration changed" in other.stdout, other.stdout


def test_overrides_are_judged_from_the_snapshot_without_importing(tmp_path: Path) -> None:
    marked = SHOP + '\nfrom pathlib import Path\nPath(__file__).with_name("imported").touch()\n'
    root = write_project(tmp_path / "shop", {"shop": marked})
    materialize(root, "--set", "orders.min_amount=10")
    (root / "imported").unlink()
    materialize(root, "--set", "orders.min_amount=10")
    assert set(latest_states(root).values()) == {"skipped"}
    stale = ok_json(run_cli(root, "status", "--json", "--set", "orders.min_amount=0"))
    assert [r["name"] for r in stale if not r["fresh"]] == ["orders", "big"]
    assert not (root / "imported").exists()
    materialize(root)  # back to the default: computes, so the code is imported
    assert (root / "imported").exists()
