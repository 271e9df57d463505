"""A run that cannot record says so; a killed run leaves no temporary folder outside the
project's home. Real processes throughout: the CLI as a subprocess, a real lock holder,
real SIGKILLs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import catalog_rows, run_cli, start_cli, write_project
from tests.helpers.processes import wait_until
from vibepiper.processes import temp_base

HELPERS = Path(__file__).parent / "helpers"

GATED = """
import os
import time

import pandas as pd
from vibepiper import asset


@asset
def slow() -> pd.DataFrame:
    open(os.environ["MARK"], "w").close()  # it has begun
    deadline = time.monotonic() + float(os.environ.get("WAIT", "0"))
    while not os.path.exists(os.environ.get("GO", "")) and time.monotonic() < deadline:
        time.sleep(0.02)
    return pd.DataFrame({"x": [1, 2, 3]})


@asset
def after(slow: pd.DataFrame) -> pd.DataFrame:
    return slow.assign(y=slow.x * 2)
"""

SUMMARY = re.compile(r"^run \S+ [a-z ]+: ")  # "run 2026...-4bf6b5 succeeded: 2 succeeded"


def wait_for(path: Path, timeout: float = 60) -> None:
    wait_until(path.exists, timeout, f"{path} to appear", poll=0.02)


def summary_line(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if SUMMARY.match(line)]
    assert len(lines) == 1, stdout
    return lines[0]


def store_files(home: Path) -> dict[str, int]:
    """Each published file of the store, by its path, with its inode (kept or replaced)."""
    return {str(p.relative_to(home)): p.stat().st_ino for p in (home / "store").glob("*/*.parquet")}


# -- 1. a run that cannot record never prints success ---------------------------------------


def test_a_run_whose_catalog_writes_fail_says_so_and_the_next_run_records_it(
    tmp_path: Path,
) -> None:
    root = write_project(tmp_path / "proj", {"gated": GATED})
    home = root / ".vibepiper"
    mark, go = tmp_path / "began", tmp_path / "go"
    env = {"MARK": str(mark), "GO": str(go), "WAIT": "60", "VIBEPIPER_LOCK_TIMEOUT": "1"}
    run = start_cli(root, "materialize", env=env)
    holder = None
    try:
        wait_for(mark)  # the run has started (its run row is written): now a reader holds on
        lock = str(home / "catalog.lock")
        holder = subprocess.Popen(
            [sys.executable, str(HELPERS / "hold_lock.py"), lock, "--shared"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        go.touch()
        stdout, stderr = run.communicate(timeout=120)
    finally:
        run.kill()
        if holder is not None:
            holder.communicate(timeout=30)  # closes its stdin: the lock is released

    assert run.returncode == 1, stdout + stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.strip()]
    assert len(errors) == 1, stderr
    assert errors[0].startswith("error: the catalog could not be written, so run "), errors[0]
    assert "is not recorded: the catalog is locked by process" in errors[0]
    assert (
        "what it published (slow, after) is in the store but not in the catalog, "
        "and the next run will record or redo it: "
        "run `vibepiper materialize` again when the catalog is free"
    ) in errors[0]
    closing = summary_line(stdout)
    assert "succeeded" not in closing
    assert closing.endswith(" failed: 2 not recorded"), closing
    first_run = closing.split()[1]
    assert catalog_rows(root, "SELECT run_id, status FROM runs") == [(first_run, "running")]
    assert catalog_rows(root, "SELECT count(*) FROM materializations") == [(0,)]
    published = store_files(home)
    assert len(published) == 2  # in the store, not in the catalog

    again = run_cli(root, "materialize", env={"MARK": str(mark), "GO": str(go)})

    assert again.returncode == 0, again.stdout + again.stderr
    assert summary_line(again.stdout).endswith(" succeeded: 2 succeeded")
    runs = catalog_rows(root, "SELECT run_id, status FROM runs ORDER BY run_id")
    assert runs[0] == (first_run, "abandoned") and runs[1][1] == "succeeded", runs
    recorded = catalog_rows(
        root, "SELECT asset, status FROM materializations WHERE run_id = ?", [runs[1][0]]
    )
    assert sorted(recorded) == [("after", "succeeded"), ("slow", "succeeded")]
    assert store_files(home) == published  # the same versions: the files were kept
    doctor = run_cli(root, "doctor", "--json")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    report = json.loads(doctor.stdout)
    assert report["healthy"] and report["findings"] == [], report


# -- 2. killed runs leave no temporary folder outside the project ---------------------------

SLEEPER = """
import os
import time

import pandas as pd
from vibepiper import asset


@asset
def sleeper() -> pd.DataFrame:
    with open(os.environ["MARK"], "w") as mark:  # it has begun (and what is in LOOK now)
        mark.write(" ".join(os.listdir(os.environ["LOOK"])) if "LOOK" in os.environ else "")
    time.sleep(float(os.environ.get("SLEEP", "0")))
    return pd.DataFrame({"x": [1]})
"""


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path (a socket's path must fit in 107 bytes; pytest's
    tmp_path is often longer than that leaves room for)."""
    path = Path(tempfile.mkdtemp(prefix="vp-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def group_gone(pgid: int, timeout: float = 30) -> None:
    """Kill what is left of the process group `pgid` (a killed run's fork server and
    workers) and wait until it is gone."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, f"process group {pgid} outlived its run"
        time.sleep(0.05)


def folders(where: Path) -> list[str]:
    return sorted(p.name for p in where.iterdir()) if where.is_dir() else []


def test_a_killed_processes_run_leaves_no_temp_folder_outside_the_home(
    short_dir: Path, tmp_path: Path
) -> None:
    root = write_project(short_dir / "p", {"sleepy": SLEEPER})
    home = root / ".vibepiper"
    system_temp = tmp_path / "system-temp"  # the run's TMPDIR: what lands there is ours
    system_temp.mkdir()
    mark = tmp_path / "began"
    env = {"TMPDIR": str(system_temp), "MARK": str(mark), "SLEEP": "60"}
    processes = ["--executor", "processes", "--workers", "1"]
    with (tmp_path / "killed.log").open("w") as log:
        run = start_cli(
            root,
            "materialize",
            *processes,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            new_session=True,
        )
    try:
        wait_for(mark)  # a worker computes: the fork server and its socket are there
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        group_gone(run.pid)

    assert folders(system_temp) == [], (tmp_path / "killed.log").read_text()
    dead = [home / "tmp" / name for name in folders(home / "tmp")]
    assert [p.name.startswith(f"pymp-{run.pid}-") for p in dead] == [True], dead
    assert any(f.is_socket() for f in dead[0].iterdir())

    again = run_cli(root, "materialize", *processes, env={**env, "SLEEP": "0"}, timeout=120)

    assert again.returncode == 0, again.stdout + again.stderr
    assert not dead[0].exists()  # removed at the run's start
    assert folders(home / "tmp") == []  # and the run's own, at its end (and tmp, empty)
    assert folders(system_temp) == []


def test_a_home_too_long_for_a_socket_keeps_its_temp_folder_short(tmp_path: Path) -> None:
    root = write_project(tmp_path / ("x" * 80) / "p", {"sleepy": SLEEPER})
    base = temp_base(root / ".vibepiper")
    assert base is not None and len(str(base)) + len("/pymp-4194304-abcdefgh/listener-x") < 107
    assert not base.is_relative_to(root)  # a short folder of the project's own, elsewhere

    done = run_cli(
        root, "materialize", "--executor", "processes", "--workers", "1",
        env={"MARK": str(tmp_path / "began"), "LOOK": str(base)},
    )  # fmt: skip

    try:
        assert done.returncode == 0, done.stdout + done.stderr
        seen = (tmp_path / "began").read_text().split()  # while the run went on
        assert [name.startswith("pymp-") for name in seen] == [True], seen
        assert not base.exists()  # removed at the end
    finally:
        shutil.rmtree(base, ignore_errors=True)
        with contextlib.suppress(OSError):  # vibepiper-UID, if no other project uses it
            base.parent.rmdir()
