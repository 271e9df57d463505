"""Whether a process of this machine is still alive (to clean up after one that died)."""

from __future__ import annotations

import os
import time

# How much later than the moment it is known to have existed (its file's last write, its
# run's start) a process may seem to have started before its pid counts as reused: clock
# ticks, and a wall clock stepped forward, blur the comparison.
REUSE_MARGIN = 2.0


def pid_alive(pid: int | None, since: float | None = None) -> bool:
    """True if the process `pid`, which existed at the Unix time `since`, is still running.

    Ids are reused (pid_max is often 32768): a process with this id that started after
    `since` is another one, so the process in question is dead. Without `since`, a live
    pid is a hint, not a proof.
    """
    if pid is None or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        pass
    fields = _stat(pid)
    if fields is None:  # no /proc: the pid is all we have
        return True
    if fields[0] == b"Z":  # exited, not reaped yet: dead, for us
        return False
    if since is not None:
        started = _started(fields)
        if started is not None and started > since + REUSE_MARGIN:
            return False
    return True


def _stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rpartition(b")")[2].split() or None
    except OSError:
        return None


def _started(fields: list[bytes]) -> float | None:
    """When the process started (Unix time), from its start in clock ticks after boot."""
    try:
        ticks = int(fields[19])  # field 22 of proc(5); fields here start at field 3
        since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        now = time.time()
        return now - since_boot + ticks / os.sysconf("SC_CLK_TCK")
    except (IndexError, ValueError, OSError, AttributeError):
        return None
