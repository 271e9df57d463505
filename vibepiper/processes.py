"""Whether a process of this machine is still alive (to clean up after one that died)."""

from __future__ import annotations

import os


def pid_alive(pid: int | None) -> bool:
    """True if a process with this id exists (ids can be reused: a hint, not a proof)."""
    if pid is None or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A process that has exited but was not reaped yet: dead, for us."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rpartition(b")")[2].split()[0] == b"Z"
    except (OSError, IndexError):
        return False
