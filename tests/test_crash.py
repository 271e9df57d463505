"""A run whose process is killed: nothing half-published, its run marked abandoned by the
next run, and the next run completes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .conftest import VIBEPIPER, catalog_rows, run_cli

SLOW = """
import time
import pandas as pd
from vibepiper import asset

@asset
def first() -> pd.DataFrame:
    return pd.DataFrame({"x": [1]})

@asset
def slow(first: pd.DataFrame) -> pd.DataFrame:
    time.sleep(30)
    return first
"""


def test_a_killed_run_is_marked_abandoned_and_the_next_run_completes(
    project_dir: Callable[..., Path],
) -> None:
    root = project_dir({"slow_assets": SLOW})
    proc = subprocess.Popen(
        [*VIBEPIPER, "materialize"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until `first` is recorded (flushed within ~1 s)
        time.sleep(0.2)
        if (root / ".vibepiper" / "catalog.duckdb").exists() and run_cli(
            root, "query", "--csv", "SELECT status FROM materializations WHERE asset = 'first'"
        ).stdout.strip().endswith("succeeded"):
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert catalog_rows(root, "SELECT status FROM runs") == [("running",)]
    assert not list((root / ".vibepiper" / "store").glob("slow/*.parquet"))

    module = root / "slow_assets.py"
    module.write_text(module.read_text().replace("time.sleep(30)", "time.sleep(0)"))
    done = run_cli(root, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    runs = catalog_rows(root, "SELECT status, finished_at IS NOT NULL FROM runs ORDER BY run_id")
    assert runs == [("abandoned", True), ("succeeded", True)]
    states = dict(
        catalog_rows(
            root,
            "SELECT asset, status FROM materializations "
            "WHERE run_id = (SELECT max(run_id) FROM runs)",
        )
    )
    assert states == {"first": "skipped", "slow": "succeeded"}
