"""The `runs` command: newest first, with counts of each state; ambiguous run-id prefixes
fail; a run without assets counts zeros."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_project
from tests.helpers.cancel import CANCELLABLE, cancellable_project
from tests.helpers.output import one_line_error


def project(root: Path, source: str, tool: str = "", module: str = "exec_assets") -> Path:
    return write_project(root, {module: source}, tool=tool)


@pytest.fixture
def cancellable(tmp_path: Path) -> Path:
    return cancellable_project(tmp_path / "proj")


def test_runs_lists_newest_first_with_counts_and_ambiguous_prefixes_fail(
    cancellable: Path,
) -> None:
    root = cancellable
    (root / "release").touch()
    (root / "exec_assets.py").write_text(
        (root / "exec_assets.py")
        .read_text()
        .replace("return first.assign(y=1)", "raise RuntimeError('slow broke')")
    )
    failing = run_cli(root, "materialize")
    assert failing.returncode == 1, failing.stdout + failing.stderr
    fixed = CANCELLABLE.replace("return first.assign(y=1)", "return first.assign(y=2)")
    (root / "exec_assets.py").write_text(fixed)
    passing = run_cli(root, "materialize", "slow+")
    assert passing.returncode == 0, passing.stdout + passing.stderr

    listed = run_cli(root, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["status"] for r in rows] == ["succeeded", "failed"]
    assert [r["started_at"] for r in rows] == sorted((r["started_at"] for r in rows), reverse=True)
    newest, oldest = rows
    assert (newest["assets"], newest["succeeded"], newest["failed"], newest["blocked"]) == (
        2,
        2,
        0,
        0,
    )
    assert (oldest["assets"], oldest["succeeded"], oldest["failed"], oldest["blocked"]) == (
        3,
        1,
        1,
        1,
    )
    assert newest["selection"] == "slow+"
    limited = json.loads(run_cli(root, "runs", "--json", "--limit", "1").stdout)
    assert [r["run_id"] for r in limited] == [newest["run_id"]]

    same = [a == b for a, b in zip(newest["run_id"], oldest["run_id"], strict=False)]
    common = newest["run_id"][: same.index(False)]  # e.g. the date both runs share
    one_line_error(run_cli(root, "logs", common), "more than one run", common)


# -- 7. settings errors ------------------------------------------------------------------

SIMPLE = """
import pandas as pd
from vibepiper import asset


@asset
def simple() -> pd.DataFrame:
    return pd.DataFrame({"x": [1]})
"""


def test_runs_counts_are_zero_for_a_run_without_assets(tmp_path: Path) -> None:
    root = project(tmp_path / "proj", SIMPLE)
    assert run_cli(root, "check").returncode == 0
    listed = run_cli(root, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["kind"] == "check"
    counts = [row[k] for k in ("assets", "succeeded", "skipped", "failed", "blocked")]
    assert counts == [0, 0, 0, 0, 0]
