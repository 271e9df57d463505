"""Watching and ending the processes a test started: liveness read from /proc, process
groups, and polling until something happens."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def process_state(pid: int) -> str:
    """The state letter of process `pid` in /proc ("R", "S", "Z", ...), "" if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie nobody reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return process_state(pid) not in ("", "Z")


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def wait_for_group(pgid: int, timeout: float = 60) -> float:
    """Seconds until every process of group `pgid` is gone (worker processes may outlive a
    killed scheduler for a while); fails, killing them, if they are still there after
    `timeout` seconds."""
    started = time.monotonic()
    while group_members(pgid):
        if time.monotonic() - started > timeout:
            left = group_members(pgid)
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"processes {left} outlived their killed run by {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - started


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """Kill a process started in a session of its own and whatever is left of its group
    (its children: a forkserver, Dask nannies and their workers)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.05) -> None:
    """Return once `predicate()` is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(poll)
