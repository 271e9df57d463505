"""Timeouts beyond the executor contract (test_executor_contract.py): a timeout in a
retried attempt, and a timed-out thread that keeps its pool slot until it returns."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import catalog_rows, run_cli, write_project
from tests.helpers.state import read_asset, states


def project(root: Path, source: str, tool: str = "", module: str = "exec_assets") -> Path:
    return write_project(root, {module: source}, tool=tool)


RETRIED_THEN_SLEEPY = """
import time

import pandas as pd
from vibepiper import asset


@asset(timeout=1, retries=2, retry_delay=0.01)
def second_try_sleeps(context) -> pd.DataFrame:
    if context.attempt == 1:
        raise RuntimeError("the first try fails at once")
    time.sleep(30)
    return pd.DataFrame({"x": [1]})
"""


def test_an_asset_timed_out_in_its_second_attempt_records_two_attempts(tmp_path: Path) -> None:
    root = project(tmp_path / "proj", RETRIED_THEN_SLEEPY)
    done = run_cli(root, "materialize", "--executor", "inprocess", timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = catalog_rows(root, "SELECT status, error, attempts FROM materializations")
    assert [(status, attempts) for status, _, attempts in rows] == [("failed", 2)]
    assert rows[0][1].startswith("timed out after 1 s")


POOL_HOG = """
import time
from pathlib import Path

import pandas as pd
from vibepiper import asset

HERE = Path(__file__).parent


@asset(pool="warehouse", timeout=1)
def hog() -> pd.DataFrame:
    (HERE / "hog.start").write_text(str(time.time()))
    time.sleep(3)  # a thread cannot be stopped: it holds its connection for 3 s
    return pd.DataFrame({"x": [1]})


@asset
def gate() -> pd.DataFrame:
    return pd.DataFrame({"g": [1]})


@asset(pool="warehouse")
def light(gate: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"start": [time.time()]})
"""


def test_a_timed_out_thread_keeps_its_pool_slot(tmp_path: Path) -> None:
    root = project(tmp_path / "proj", POOL_HOG, tool="\n[tool.vibepiper.pools]\nwarehouse = 1\n")
    done = run_cli(root, "materialize", "--executor", "threads", "--workers", "3")
    assert done.returncode == 1, done.stdout + done.stderr
    assert states(root)["hog"][1].startswith("timed out after 1 s")
    hog_start = float((root / "hog.start").read_text())
    light_start = float(read_asset(root, "light")["start"][0])
    assert light_start >= hog_start + 3  # not while hog's thread still sleeps
