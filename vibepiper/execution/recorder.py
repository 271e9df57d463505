"""Buffering a run's catalog rows and writing them in a few transactions."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from vibepiper.catalog.catalog import Batch, Catalog
from vibepiper.errors import CatalogBusyError, CatalogError, VibePiperError
from vibepiper.text import first_line
from vibepiper.versioning.freshness import Current

if TYPE_CHECKING:
    from vibepiper.execution.states import RunResult

FLUSH_EVERY = 1.0  # seconds between catalog writes during a run


class Recorder:
    """Buffers catalog rows; a timer writes them about FLUSH_EVERY seconds after they come.

    So a run costs a few transactions, yet what it did shows up in the catalog within a
    second or so even while a long asset is computing. Rows a write could not take (the
    catalog locked by a long reader, say) are kept and go with the next write.
    """

    def __init__(self, catalog: Catalog, before_write: Callable[[], None] | None = None) -> None:
        self.catalog = catalog
        # called before each write: the store makes the files the rows refer to durable
        self.before_write = before_write
        self.pending = Batch()
        self.guard = threading.Lock()  # protects `pending` and `timer`
        self.writing = threading.Lock()  # one write at a time, in order
        self.timer: threading.Timer | None = None
        self.recorded: set[str] = set()  # materialization ids written to the catalog

    def add(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        with self.guard:
            getattr(self.pending, table).extend(rows)
            if self.timer is None:
                self.timer = threading.Timer(FLUSH_EVERY, self._flush_in_background)
                self.timer.daemon = True
                self.timer.start()

    def start(self) -> dict[str, Current]:
        """Write the rows so far (the run's first) and read the current materializations."""
        with self.writing, self.guard:
            batch, self.pending = self.pending, Batch()
        return self.catalog.start_run(batch)

    def flush(self) -> None:
        """Write everything pending now, with what earlier writes could not take; raise if
        this write fails (its rows stay pending)."""
        with self.guard:
            timer, self.timer = self.timer, None
        if timer is not None:
            timer.cancel()
        self._write()

    def _flush_in_background(self) -> None:
        with self.guard:
            self.timer = None
        # If it fails, its rows stay pending: the next write takes them (at the latest the
        # run's last, in the run's thread, which raises if it fails too).
        with contextlib.suppress(Exception):
            self._write()

    def _write(self) -> None:
        with self.writing:
            with self.guard:
                batch, self.pending = self.pending, Batch()
            try:
                if self.before_write is not None:
                    self.before_write()
                self.catalog.write(batch)
            except BaseException:
                with self.guard:  # keep the rows for the next attempt
                    batch.extend(self.pending)
                    self.pending = batch
                raise
            self.recorded.update(row["materialization_id"] for row in batch.materializations)


class RunNotRecorded(CatalogError):
    """A run's last catalog write failed: the files it published are in the store, but the
    catalog does not know them, and its run row still says `running`.

    `run` is what the run did; `unrecorded` names its succeeded assets whose rows are
    missing (the next run records or recomputes them, and marks this run `abandoned`).
    """

    def __init__(
        self,
        message: str,
        hint: str = "",
        run: RunResult | None = None,
        unrecorded: Sequence[str] = (),
    ) -> None:
        super().__init__(message, hint)
        self.run = run
        self.unrecorded = tuple(unrecorded)


def not_recorded(run: RunResult, unrecorded: Sequence[str], cause: BaseException) -> RunNotRecorded:
    """The error of `run`, whose last catalog write failed with `cause`."""
    if isinstance(cause, VibePiperError):
        why = cause.message
    else:
        why = f"{type(cause).__name__}: {first_line(cause)}"
    if isinstance(cause, CatalogBusyError):
        fix = "run `vibepiper materialize` again when the catalog is free"
    elif isinstance(cause, VibePiperError) and cause.hint:
        fix = f"{cause.hint}, then run `vibepiper materialize` again"
    else:
        fix = "run `vibepiper materialize` again once the catalog can be written"
    if unrecorded:
        names = ", ".join(unrecorded[:8]) + (
            f" and {len(unrecorded) - 8} more" if len(unrecorded) > 8 else ""
        )
        meaning = (
            f"what it published ({names}) is in the store but not in the catalog, "
            "and the next run will record or redo it"
        )
    else:
        meaning = "the next run will mark it abandoned"
    return RunNotRecorded(
        f"the catalog could not be written, so run {run.run_id} is not recorded: {why}",
        f"{meaning}: {fix}",
        run,
        unrecorded,
    )
