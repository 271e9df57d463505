"""Our own OS lock around every connection to the catalog file.

DuckDB lets one process hold a database file read-write, and refuses any other at once.
Worse, duckdb 2.0 reads the file header before taking its own lock, so processes that
take turns can lose an acknowledged commit. A `flock` on a separate file, held from before
the connection opens until after it closes (exclusive for writers, shared for readers),
serialises them. The kernel drops it when its holder dies, even by SIGKILL.

A reader may not be allowed to write the home (another user's project, a read-only
mount): it then takes its shared lock on a read-only descriptor (flock works there), or
goes without one if no lock file exists, since no one who may write has made one yet.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from vibepiper.errors import CatalogBusyError, CatalogError

DEFAULT_TIMEOUT = 60.0
_POLL = (0.001, 0.05)  # first and longest pause between attempts, in seconds


def lock_timeout() -> float:
    value = os.environ.get("VIBEPIPER_LOCK_TIMEOUT")
    try:
        return float(value) if value else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT


@contextlib.contextmanager
def hold(
    path: Path,
    *,
    exclusive: bool,
    timeout: float | None = None,
    what: str = "the catalog",
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the lock on `path` (created if needed) for the duration of the block; if it is
    taken, `on_wait` is told by whom, once, and we wait up to `timeout` seconds."""
    limit = lock_timeout() if timeout is None else timeout
    fd = _open(path, exclusive)
    if fd is None:  # a reader of a home it may not write, where no writer has been yet
        yield
        return
    try:
        _acquire(fd, path, exclusive, limit, what, on_wait)
        if exclusive:
            _write_owner(fd)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


# What an open for writing meets on a home this user may not write.
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def _open(path: Path, exclusive: bool) -> int | None:
    """A descriptor of the lock file: read-write if we may, else, for a shared lock,
    read-only (or None if there is no lock file to open)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno not in _NOT_WRITABLE:
            raise
        if exclusive:
            raise not_writable(path.parent, exc) from None
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None


def not_writable(home: Path, exc: OSError) -> CatalogError:
    """The one-line error of a command that must write to `home` and may not."""
    culprit = Path(exc.filename) if exc.filename else home
    culprit = culprit if culprit.exists() else culprit.parent
    why = "a read-only file system" if exc.errno == errno.EROFS else "permission denied"
    return CatalogError(
        f"cannot write to the home {home}: {why} on {culprit} ({ownership(culprit)})",
        "this command needs write access there: run it as a user who may write to it, or "
        "pass --home DIR with a folder you can write; reading commands (status, history, "
        "show, query) work without it",
    )


def ownership(path: Path) -> str:
    """'owned by alice, mode 644'."""
    import pwd

    try:
        info = os.stat(path)
    except OSError:
        return "its owner is unknown"
    try:
        owner = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        owner = f"uid {info.st_uid}"
    return f"owned by {owner}, mode {stat.S_IMODE(info.st_mode):o}"


def _acquire(
    fd: int,
    path: Path,
    exclusive: bool,
    limit: float,
    what: str,
    on_wait: Callable[[str], None] | None,
) -> None:
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = time.monotonic() + limit
    pause = _POLL[0]
    while True:
        try:
            fcntl.flock(fd, mode)
            return
        except BlockingIOError:
            if on_wait is not None:
                on_wait(describe_holder(path))
                on_wait = None
            if time.monotonic() >= deadline:
                raise CatalogBusyError(
                    f"{what} is locked by {describe_holder(path)} and stayed locked for "
                    f"{limit:g} s ({path})",
                    "wait for that process to finish, or raise VIBEPIPER_LOCK_TIMEOUT",
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, _POLL[1])


def _write_owner(fd: int) -> None:
    command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
    try:  # who holds the lock, for the message of whoever waits: a courtesy, not a need
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command[:200]}\n".encode(), 0)
    except OSError:  # a full disk, say: the lock itself is held all the same
        pass


def describe_holder(path: Path) -> str:
    """'process 123 (vibepiper materialize)' for the process holding the lock, if known."""
    pids = _holders_from_proc_locks(path)
    last_writer = _last_writer(path)
    if not pids and last_writer:
        pids = [last_writer[0]]
    if not pids:
        return "another process"
    descriptions = []
    for pid in pids[:3]:
        command = _command_of(pid) or (
            last_writer[1] if last_writer and last_writer[0] == pid else ""
        )
        descriptions.append(f"process {pid}" + (f" ({command})" if command else ""))
    return ", ".join(descriptions)


def _holders_from_proc_locks(path: Path) -> list[int]:
    try:
        inode = os.stat(path).st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    pids = []
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; blocked waiters carry "->".
        if len(fields) >= 6 and fields[1] == "FLOCK" and "->" not in fields:
            dev_inode = fields[5].split(":")
            if len(dev_inode) == 3 and dev_inode[2] == str(inode) and fields[4].isdigit():
                pid = int(fields[4])
                if pid != os.getpid():
                    pids.append(pid)
    return pids


def _last_writer(path: Path) -> tuple[int, str] | None:
    try:
        pid_text, _, command = path.read_text().strip().partition(" ")
        return int(pid_text), command
    except (OSError, ValueError):
        return None


def _command_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    parts = [p.decode(errors="replace") for p in raw.split(b"\0") if p]
    if parts and os.path.basename(parts[0]).startswith("python") and len(parts) > 1:
        parts = parts[1:]
    return " ".join([os.path.basename(parts[0]), *parts[1:]])[:120] if parts else ""
