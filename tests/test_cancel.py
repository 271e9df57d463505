"""Cancelling a run beyond Ctrl-C (which every executor passes: test_executor_contract.py):
SIGINT or SIGTERM to the command's pid or its group, a second SIGINT that exits at once,
and the `cancel` event of the Python API. Real signals, real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import catalog_rows, run_cli, write_project
from tests.helpers.cancel import (
    assert_cancelled_cleanly,
    assert_rerun_completes,
)
from tests.helpers.processes import alive
from tests.helpers.state import assert_store_matches_catalog


def project(root: Path, source: str, tool: str = "", module: str = "exec_assets") -> Path:
    return write_project(root, {module: source}, tool=tool)


TARGET = {True: "group", False: "pid"}  # the signal goes to the process group, or its pid


@pytest.mark.parametrize(
    ("executor", "signum", "to_group"),
    [
        # (SIGINT to the group, a terminal's Ctrl-C, is in test_executor_contract.py)
        ("inprocess", signal.SIGINT, False),
        ("inprocess", signal.SIGTERM, False),
        ("processes", signal.SIGTERM, False),
        pytest.param(
            "processes",
            signal.SIGTERM,
            True,
            id="processes-SIGTERM-group",
        ),
    ],
    ids=lambda v: v.name if isinstance(v, signal.Signals) else TARGET.get(v, v),
)
def test_a_signal_cancels_the_run(
    executor: str,
    signum: signal.Signals,
    to_group: bool,
    cancellable: Path,
    materializing: Callable[[str], subprocess.Popen[str]],
) -> None:
    proc = materializing(executor)
    slow_pid = int((cancellable / "slow.pid").read_text())
    (os.killpg if to_group else os.kill)(proc.pid, signum)
    out, err = proc.communicate(timeout=300)  # `slow` is never released: it did not wait
    assert proc.returncode == 130, out + err
    assert "cancelling" in err
    assert "cancelled" in out
    assert_cancelled_cleanly(cancellable)
    if executor == "processes":
        assert slow_pid != proc.pid
        assert not alive(slow_pid)
    assert_rerun_completes(cancellable)


@pytest.mark.parametrize("executor", ["threads", "inprocess"])
def test_a_second_sigint_exits_at_once(
    executor: str, cancellable: Path, materializing: Callable[[str], subprocess.Popen[str]]
) -> None:
    if executor == "inprocess":
        (cancellable / "stubborn").touch()  # `slow` survives the first interruption
    proc = materializing(executor)
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(1.0)
    assert proc.poll() is None, proc.communicate()  # still waiting for `slow` to end
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=300)  # `slow` is never released: it did not wait
    assert proc.returncode == 130, out + err
    assert "cancelling" in err

    # The catalog still opens: the run is left 'running', then the next run marks it
    # abandoned and completes.
    runs = run_cli(cancellable, "runs", "--json")
    assert runs.returncode == 0, runs.stderr
    [row] = json.loads(runs.stdout)
    assert row["status"] == "running"
    assert_store_matches_catalog(cancellable)
    (cancellable / "stubborn").unlink(missing_ok=True)
    assert_rerun_completes(cancellable)
    assert catalog_rows(cancellable, "SELECT status FROM runs ORDER BY started_at") == [
        ("abandoned",),
        ("succeeded",),
    ]


SLOW_ONLY = """
import time
from pathlib import Path

import pandas as pd
from vibepiper import asset


@asset
def slow() -> pd.DataFrame:
    (Path(__file__).parent / "slow.started").touch()
    time.sleep(2)
    return pd.DataFrame({"x": [1]})


@asset
def after(slow: pd.DataFrame) -> pd.DataFrame:
    return slow
"""


def cancel_once(started: Path) -> threading.Event:
    """An event set 0.3 s after the file `started` appears (the asset is computing)."""
    cancel = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not started.exists() and not cancel.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        cancel.set()

    threading.Thread(target=watch, daemon=True).start()
    return cancel


def test_the_cancel_event_stops_an_inprocess_asset(tmp_path: Path) -> None:
    from vibepiper import Project

    root = project(tmp_path / "proj", SLOW_ONLY, module="exec_cancel_api")
    cancel = cancel_once(root / "slow.started")
    try:
        result = Project(root).materialize(executor="inprocess", cancel=cancel)
    finally:
        cancel.set()  # ends the watcher
    assert result.cancelled
    assert result.results["after"].message == "not run: the run was cancelled"
    assert (result.results["slow"].state, result.results["slow"].message) == (
        "failed",
        "cancelled",
    )


def test_the_cancel_event_stops_a_threads_run(tmp_path: Path) -> None:
    from vibepiper import Project

    root = project(tmp_path / "proj", SLOW_ONLY, module="exec_cancel_threads")
    cancel = cancel_once(root / "slow.started")
    try:
        result = Project(root).materialize(executor="threads", workers=2, cancel=cancel)
    finally:
        cancel.set()  # ends the watcher
    assert result.cancelled
    assert (result.results["slow"].state, result.results["slow"].message) == (
        "failed",
        "cancelled",
    )
    assert result.results["after"].state == "blocked"
    runs = Project(root).runs()
    assert runs["status"].tolist() == ["cancelled"]
    assert not list((root / ".vibepiper" / "store").glob("slow/*"))
