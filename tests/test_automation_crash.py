"""Exactly once across crashes: `vibepiper serve` SIGKILLed at random moments while ticks
fall due (and runs go on), then restarted. Afterwards every minute of the schedule has
exactly one tick, every tick that launched a run has exactly one run, no run was
launched without a tick, and `doctor` finds the store and catalog sound."""

from __future__ import annotations

import random
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import run_cli, start_cli, write_project
from tests.test_automation import FAST, one_run_each, rows, schedule_toml, ticks

ASSETS = """
import time
import pandas as pd
from vibepiper import asset

@asset(max_age=30)
def ticking() -> pd.DataFrame:
    time.sleep(0.3)  # a window for a kill in the middle of a run
    return pd.DataFrame({"a": range(1000)})

@asset
def follows(ticking: pd.DataFrame) -> pd.DataFrame:
    return ticking.tail(3)
"""


def crash_and_restart(tmp_path: Path, trials: int, seed: int) -> None:
    tool = schedule_toml("minutely", "* * * * *", select="ticking+", catchup="all")
    tool = tool.replace('catchup = "all"', 'catchup = "all"\nmax_catchup = 1000')
    root = write_project(tmp_path / "proj", {"shop": ASSETS}, tool=tool + FAST)
    pick = random.Random(seed)
    env = {"VIBEPIPER_CLOCK": f"2026-05-01T00:00:30+00:00*30@{time.time()!r}"}
    for _ in range(trials):
        server = start_cli(root, "serve", env=env, stdout=None, stderr=None)
        time.sleep(pick.uniform(0.2, 1.6))
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=60)
    settle = run_cli(root, "serve", "--once", env=env, timeout=600)
    assert settle.returncode in (0, 1), settle.stdout + settle.stderr
    found = [t for t in ticks(root) if t["schedule"] == "minutely"]
    assert [t["status"] for t in found if t["status"] in ("queued", "launched")] == []
    due = [datetime.fromisoformat(t["scheduled_for"]) for t in found if t["run_id"]]
    assert due, "no tick fell due"
    assert due == sorted(due)
    # no minute lost, none twice: one tick per minute from the first to the last
    assert due == [due[0] + timedelta(minutes=i) for i in range(len(due))]
    assert not [t for t in found if t["status"] == "skipped"]
    one_run_each(root)
    statuses = {r["status"] for r in rows(root, "SELECT status FROM runs")}
    assert statuses <= {"succeeded", "abandoned", "failed"}, statuses
    doctor = run_cli(root, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    kinds = rows(root, "SELECT status, count(*) AS n FROM ticks GROUP BY ALL ORDER BY ALL")
    print(f"{trials} kills: ticks {kinds}")  # (-s shows how many kills hit a run)


@pytest.mark.slow
def test_serve_killed_at_random_moments_runs_each_due_tick_exactly_once(
    tmp_path: Path,
) -> None:
    crash_and_restart(tmp_path, trials=50, seed=18)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # 200 restarts of serve: near 300 s when the other worker is busy
def test_serve_killed_two_hundred_times_runs_each_due_tick_exactly_once(
    tmp_path: Path,
) -> None:
    crash_and_restart(tmp_path, trials=200, seed=1818)
