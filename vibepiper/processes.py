"""Whether a process of this machine is still alive (to clean up after one that died)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


# Temporary folders of a run's processes (the `processes` executor's fork server keeps its
# socket in one). They live under the project's home, where the next run removes those of
# dead processes, not in the system's temporary folder, where a killed run would leave them.
TEMP_PREFIX = "pymp-"  # then the owner's pid and a random part: pymp-1234-x8k2j1qa
# A socket's path must fit in 107 bytes (AF_UNIX): 40 of them go to the folder of one process
# and the file in it ("/pymp-4194304-abcdefgh/listener-abcdefgh").
_MAX_BASE = 107 - 40


def temp_base(home: Path, *, create: bool = False) -> Path | None:
    """The folder for the temporary folders of a project's processes: `<home>/tmp`, or, if
    that path is too long for a socket in it, one of the project's own in the system's
    temporary folder; None if neither can be used (a process then uses the system's)."""
    base = home.absolute() / "tmp"
    if len(os.fsencode(base)) > _MAX_BASE:
        import hashlib
        import tempfile

        key = hashlib.sha256(os.fsencode(home.absolute())).hexdigest()[:12]
        base = Path(tempfile.gettempdir()).absolute() / f"vibepiper-{os.getuid()}" / key
        if len(os.fsencode(base)) > _MAX_BASE:
            return None
        if create and not _own_folder(base.parent):
            return None
    if create:
        try:
            base.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return None
    return base


def _own_folder(path: Path) -> bool:
    """Create `path` (private to this user) if needed; False if it is someone else's, or
    not a plain folder (a shared temporary folder is anybody's to plant things in)."""
    import stat

    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()


def new_temp_dir(home: Path) -> Path | None:
    """A new temporary folder of this process under the project's home (see temp_base)."""
    import tempfile

    base = temp_base(home, create=True)
    if base is None:
        return None
    try:
        return Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=base))
    except OSError:
        return None


def remove_dead_temp_dirs(home: Path) -> list[Path]:
    """Remove the temporary folders of the project's processes that are gone (a run killed
    with SIGKILL cannot remove its own); return what was removed."""
    import shutil

    base = temp_base(home)
    if base is None or not base.is_dir():
        return []
    removed = []
    for folder in base.glob(f"{TEMP_PREFIX}*-*"):
        pid_text = folder.name[len(TEMP_PREFIX) :].partition("-")[0]
        try:
            since = folder.lstat().st_mtime
        except OSError:
            continue
        if pid_text.isdigit() and not pid_alive(int(pid_text), since=since):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@contextlib.contextmanager
def on_stop_signals(handle: Callable[[int, Any], None]) -> Iterator[None]:
    """Call `handle(signum, frame)` on SIGINT and SIGTERM while the block runs, then put
    the previous handlers back. Only the main thread may install handlers: elsewhere,
    nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def die_with_parent(parent: int) -> Callable[[], None]:
    """A `preexec_fn` for a child that must die with its parent `parent` (`vibepiper
    serve`'s runs: no run of a dead daemon goes on while a restarted one reconciles).
    Linux only (prctl's PR_SET_PDEATHSIG), looked up here, before the fork: the child,
    between fork and exec, only calls it (a process with threads must not load
    libraries there)."""
    prctl = _prctl()

    def setup() -> None:
        if prctl is not None:
            prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
        if os.getppid() != parent:  # the daemon died before that took effect
            os._exit(1)

    return setup


def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
