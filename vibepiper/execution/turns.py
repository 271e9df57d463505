"""Runs of one project take turns (the run lock), and Ctrl-C or SIGTERM cancel a run."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

from vibepiper.catalog.catalog import Catalog
from vibepiper.execution.executors import Executor
from vibepiper.processes import on_stop_signals


@contextlib.contextmanager
def run_turn(catalog: Catalog) -> Iterator[None]:
    """Runs of one project take turns: a second `materialize` waits for the first to
    finish, then skips as fresh what the first published. So one asset is never computed
    and published by two runs at once. (`doctor --repair` takes a turn too; readers never
    wait for a run.)"""
    from vibepiper.catalog import lock

    turns = catalog.home / "run.lock"
    if not turns.exists():  # the first run: an unusable catalog is refused before it is made
        catalog.ensure()
    catalog.make_home()

    def waiting(holder: str) -> None:
        print(f"waiting for the run of {holder} to finish", file=sys.stderr, flush=True)

    with lock.hold(
        turns,
        exclusive=True,
        timeout=_run_wait(),
        what="the project's runs",
        on_wait=waiting,
    ):
        yield


def _run_wait() -> float:
    """How long a run waits for another run of the project (VIBEPIPER_RUN_TIMEOUT seconds;
    by default a day: a run waits for the one before it, however long it takes)."""
    value = os.environ.get("VIBEPIPER_RUN_TIMEOUT")
    try:
        return float(value) if value else 86_400.0
    except ValueError:
        return 86_400.0


@contextlib.contextmanager
def cancelled_by_signals(cancel: threading.Event, executor: Executor) -> Iterator[None]:
    """Ctrl-C or SIGTERM cancels the run; a second one exits at once.

    Exiting at once is safe: a catalog transaction not committed is rolled back when the
    catalog is next opened, files are published by an atomic rename, and the next run marks
    this one abandoned and removes the temporary files it left. (Outside the main
    thread, signals cannot be handled: nothing is installed.)
    """

    def handle(signum: int, frame: Any) -> None:
        if cancel.is_set():
            executor.abort()
            os._exit(130)
        cancel.set()
        with contextlib.suppress(Exception):
            print(
                "cancelling: no new asset starts and running ones stop; "
                "press Ctrl-C again to exit at once",
                file=sys.stderr,
                flush=True,
            )
        executor.interrupt("cancelled")

    with on_stop_signals(handle):
        yield
