"""A sandbox for a test's Dask worker (tests/test_s3_dask.py), copied as `sitecustomize.py`
onto the worker's PYTHONPATH, so that every process of the worker (nanny and worker)
installs it at startup, before any other code runs.

An audit hook denies (PermissionError) any file-system access that names a path under the
folders in S3_DASK_FORBIDDEN (os.pathsep-separated: the scheduler-side project, whose
`.vibepiper/` is in it) and appends the event, the path and the stack to S3_DASK_AUDIT_LOG,
which the test wants empty. One access is denied without counting as a violation (it goes
to S3_DASK_TOLERATED_LOG): the import system listing a forbidden folder that is on
`sys.path` (VibePiper's loader puts the project folder first there, where a worker whose
machine has no such folder finds nothing); denied, it is taken for an unreadable folder.

Once installed, the hook is probed (a listdir of each folder must be denied) and the
process's pid appended to S3_DASK_ARMED: the test's proof that the sandbox works.

`os.stat` raises no audit event: Python's import machinery may stat a `sys.path` entry
under a forbidden folder (which tells only whether it exists). What does not go through
Python's file API (a C library opening files itself) is not seen either.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import traceback

_GIVEN = [p for p in os.environ.get("S3_DASK_FORBIDDEN", "").split(os.pathsep) if p]
FORBIDDEN = tuple({f(p) for p in _GIVEN for f in (os.path.normpath, os.path.realpath)})
LOG = os.environ.get("S3_DASK_AUDIT_LOG", "")
TOLERATED = os.environ.get("S3_DASK_TOLERATED_LOG", "")
ARMED = os.environ.get("S3_DASK_ARMED", "")

# The audit events (https://docs.python.org/3/library/audit_events.html) that name a path.
EVENTS = frozenset(
    {
        "open",
        "os.listdir",
        "os.scandir",
        "os.mkdir",
        "os.rmdir",
        "os.rename",  # and os.replace
        "os.remove",  # and os.unlink
        "os.link",
        "os.symlink",
        "os.truncate",
        "os.chdir",
        "os.chmod",
        "os.chown",
        "os.utime",
        "os.chflags",
        "os.listxattr",
        "os.getxattr",
        "os.setxattr",
        "os.removexattr",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "subprocess.Popen",
        "shutil.rmtree",
        "shutil.copyfile",
        "shutil.copymode",
        "shutil.copystat",
        "shutil.copytree",
        "shutil.move",
        "shutil.make_archive",
        "shutil.unpack_archive",
        "glob.glob",
        "glob.glob/2",
        "pathlib.Path.glob",
        "pathlib.Path.rglob",
        "sqlite3.connect",
    }
)

_state = threading.local()
_probing = False


def _paths(args: tuple[object, ...]) -> list[str]:
    found = []
    for arg in args:
        if isinstance(arg, str | bytes | os.PathLike):
            with contextlib.suppress(TypeError, ValueError):
                found.append(os.path.abspath(os.fsdecode(arg)))
    return found


def _forbidden(path: str) -> bool:
    return any(path == f or path.startswith(f + os.sep) for f in FORBIDDEN)


def _import_listing(event: str, hits: list[str]) -> bool:
    """Whether this is the import system listing a forbidden folder that is on sys.path
    (its FileFinder fills its cache of the folder's names): denied all the same, which it
    takes for an unreadable folder (nothing is imported from it), but not a violation."""
    try:
        caller = sys._getframe(2).f_code  # _hook <- the function that made the event
    except ValueError:  # made by no Python function
        return False
    return (
        event == "os.listdir"
        and caller.co_name == "_fill_cache"
        and "importlib" in caller.co_filename
        and all(h in FORBIDDEN and h in sys.path for h in hits)
    )


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event not in EVENTS or getattr(_state, "busy", False):
        return
    hits = [p for p in _paths(args) if _forbidden(p)]
    if not hits:
        return
    where = TOLERATED if _import_listing(event, hits) else LOG
    if not _probing and where:
        _state.busy = True  # the log's own open, and the stack's source lines, pass
        try:
            stack = "".join(traceback.format_stack(sys._getframe().f_back))
            with open(where, "a") as log:
                log.write(f"pid {os.getpid()}: {event} {hits}\n{stack}\n")
        except Exception:
            pass
        finally:
            _state.busy = False
    raise PermissionError(13, f"the test's sandbox denies {event} of {hits[0]}")


def _arm() -> None:
    global _probing
    if not FORBIDDEN:
        return
    sys.addaudithook(_hook)
    _probing = True
    try:
        for folder in _GIVEN:
            try:
                os.listdir(folder)
            except PermissionError:
                continue
            except FileNotFoundError:
                pass
            return  # not denied: no proof, and the test sees no ARMED file
    finally:
        _probing = False
    if ARMED:
        with open(ARMED, "a") as armed:
            armed.write(f"{os.getpid()}\n")


_arm()
