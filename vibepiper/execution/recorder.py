"""Buffering a run's catalog rows and writing them in a few transactions."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from vibepiper.catalog.catalog import Batch, Catalog
from vibepiper.versioning.freshness import Current

FLUSH_EVERY = 1.0  # seconds between catalog writes during a run


class Recorder:
    """Buffers catalog rows; a timer writes them about FLUSH_EVERY seconds after they come.

    So a run costs a few transactions, yet what it did shows up in the catalog within a
    second or so even while a long asset is computing.
    """

    def __init__(self, catalog: Catalog, before_write: Callable[[], None] | None = None) -> None:
        self.catalog = catalog
        # called before each write: the store makes the files the rows refer to durable
        self.before_write = before_write
        self.pending = Batch()
        self.guard = threading.Lock()  # protects `pending` and `timer`
        self.writing = threading.Lock()  # one write at a time, in order
        self.timer: threading.Timer | None = None
        self.failure: BaseException | None = None

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
        """Write everything pending now; raise if an earlier background write failed."""
        with self.guard:
            timer, self.timer = self.timer, None
        if timer is not None:
            timer.cancel()
        self._write()
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure

    def _flush_in_background(self) -> None:
        with self.guard:
            self.timer = None
        try:
            self._write()
        except Exception as exc:  # kept, and raised by the next flush() in the run's thread
            self.failure = exc

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
