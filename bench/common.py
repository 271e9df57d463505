"""What the benchmark scripts share: CPU accounting, the git state, the machine, timing, saving.

The scripts run as `python bench/<name>.py`, which puts this folder on `sys.path`, so they
import it as `common`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BUSY_SHARE = 0.10  # the machine is busy when other processes use more than this share of it

T = TypeVar("T")


def cpu_count() -> int:
    """The number of CPUs (1 when unknown)."""
    return os.cpu_count() or 1


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (None without /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal ...; guest time is inside user
    ticks = [int(v) for v in fields[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process and of the children it has waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class OtherCpu:
    """The CPU that other processes use from now on (from /proc/stat).

    This process's CPU, and its waited-for children's, is not counted as other.
    """

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.busy = busy_cpu_seconds()
        self.own = own_cpu_seconds()

    def seconds(self) -> float | None:
        """CPU seconds other processes used so far (None without /proc/stat)."""
        now_busy = busy_cpu_seconds()
        if self.busy is None or now_busy is None:
            return None
        return max(0.0, (now_busy - self.busy) - (own_cpu_seconds() - self.own))

    def share(self) -> float | None:
        """`seconds()` as a share of all the CPUs over the time so far."""
        others = self.seconds()
        if others is None:
            return None
        return others / ((time.perf_counter() - self.wall) * cpu_count())


def git_state(package: Path) -> dict[str, Any]:
    """Which code was measured: its folder, its commit ("" outside a git checkout), whether it
    had local edits and which (`git status --porcelain`; None outside a checkout)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=package, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    changes = git("status", "--porcelain", "--", ".") if commit else None
    return {"package": str(package), "commit": commit, "dirty": bool(changes), "changes": changes}


def machine() -> dict[str, Any]:
    """The machine and Python the figures were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def time_runs(work: Callable[[], T], repeat: int) -> tuple[T, list[float]]:
    """Run `work` once to warm up, then `repeat` timed times: the warm-up's value, the times."""
    first = work()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return first, times


def save_report(report: dict[str, Any], name: str, path: Path | None, started: dt.datetime) -> Path:
    """Write `report` as JSON to `path`, by default to results/<name>-<UTC start time>.json."""
    out = path or RESULTS_DIR / f"{name}-{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return out
