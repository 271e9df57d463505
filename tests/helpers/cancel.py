"""A project whose `slow` asset waits to be released, for cancelling runs: start
`materialize` in a session of its own, wait until `first` is recorded and `slow` computes,
then check that a cancelled run left everything clean and that the next run completes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import EXECUTOR_ARGS, run_cli, start_cli, write_project
from tests.helpers.processes import kill_group, wait_until
from tests.helpers.state import assert_store_matches_catalog, last_run, states

CANCELLABLE = """
import os
import time
from pathlib import Path

import pandas as pd
from vibepiper import asset

HERE = Path(__file__).parent


def wait_for_release():  # long enough that a run that waited for it cannot pass for cancelled
    end = time.monotonic() + 600
    while not (HERE / "release").exists() and time.monotonic() < end:
        time.sleep(0.05)


@asset
def first() -> pd.DataFrame:
    return pd.DataFrame({"x": [1, 2, 3]})


@asset
def slow(first: pd.DataFrame) -> pd.DataFrame:
    try:
        (HERE / "slow.pid").write_text(str(os.getpid()))
        wait_for_release()
    except BaseException:
        if (HERE / "stubborn").exists():  # ignores being interrupted once
            wait_for_release()
        raise
    return first.assign(y=1)


@asset
def last(slow: pd.DataFrame) -> pd.DataFrame:
    return slow
"""


def cancellable_project(root: Path) -> Path:
    return write_project(root, {"exec_assets": CANCELLABLE})


def start_materializing(root: Path, executor: str) -> subprocess.Popen[str]:
    """Start `vibepiper materialize` (its own session) and return once `first` is recorded
    as succeeded in the catalog and `slow` is computing."""
    proc = start_cli(root, "materialize", *EXECUTOR_ARGS[executor], new_session=True)

    def first_done() -> bool:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"materialize ended early ({proc.returncode}): {out}{err}")
        if not (root / ".vibepiper" / "catalog.duckdb").exists():
            return False
        runs = run_cli(root, "runs", "--json")
        assert runs.returncode == 0, runs.stderr
        rows = json.loads(runs.stdout)
        # (the counts are null until the run's first assets are recorded)
        return bool(rows) and rows[0]["status"] == "running" and bool(rows[0]["succeeded"])

    wait_until(first_done, 60, "`first` to be recorded as succeeded", poll=0.2)
    wait_until((root / "slow.pid").exists, 30, "`slow` to start", poll=0.2)
    return proc


def assert_cancelled_cleanly(root: Path) -> None:
    run_id, status, _ = last_run(root)
    assert status == "cancelled"
    assert states(root, run_id) == {
        "first": ("succeeded", None),
        "slow": ("failed", "cancelled"),
        "last": ("blocked", "not run: the run was cancelled"),
    }
    store = root / ".vibepiper" / "store"
    assert not [p for p in store.glob("slow/**/*") if p.is_file()]
    assert not (store / "last").exists()
    assert_store_matches_catalog(root)
    doctor = run_cli(root, "doctor", "--json")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert json.loads(doctor.stdout)["healthy"] is True


def assert_rerun_completes(root: Path) -> None:
    (root / "release").touch()
    again = run_cli(root, "materialize")
    assert again.returncode == 0, again.stdout + again.stderr
    assert {a: s for a, (s, _) in states(root).items()} == {
        "first": "skipped",
        "slow": "succeeded",
        "last": "succeeded",
    }
    assert_store_matches_catalog(root)


# Fixtures (tests/conftest.py loads this module as a plugin)


@pytest.fixture
def cancellable(tmp_path: Path) -> Path:
    return cancellable_project(tmp_path / "proj")


@pytest.fixture
def materializing(cancellable: Path) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    """Start `materialize` (see tests/helpers/cancel.py); killed at the end if still alive."""
    started: list[subprocess.Popen[str]] = []

    def start(executor: str) -> subprocess.Popen[str]:
        started.append(start_materializing(cancellable, executor))
        return started[-1]

    yield start
    for proc in started:
        kill_group(proc)
