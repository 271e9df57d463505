"""A run's catalog rows: shaped from its results, buffered, and written in a few
transactions."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from vibepiper import clock
from vibepiper.catalog.catalog import Batch, Catalog, utcnow
from vibepiper.errors import CatalogBusyError, CatalogError, VibePiperError
from vibepiper.execution import states
from vibepiper.text import first_line
from vibepiper.validation.outcome import outcome_row

if TYPE_CHECKING:
    from vibepiper.execution.states import AssetResult, RunResult

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
        self.started = False  # the run's first rows are written

    def add(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:  # (most of a run's: a fresh asset has no checks, logs, lineage)
            return
        with self.guard:
            getattr(self.pending, table).extend(rows)
            if self.timer is None:
                self.timer = threading.Timer(FLUSH_EVERY, self._flush_in_background)
                self.timer.daemon = True
                self.timer.start()

    def start(self) -> None:
        """Write the rows so far (the run's first) now. (Without it, the first write
        starts the run: a run that computes nothing is recorded in one transaction.)"""
        with self.writing, self.guard:
            batch, self.pending = self.pending, Batch()
            self.started = True
        self.catalog.start_run(batch)

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
                if self.started:
                    self.catalog.write(batch)
                else:  # the run's first write: it marks the dead runs abandoned too
                    self.catalog.start_run(batch)
                    self.started = True
            except BaseException:
                with self.guard:  # keep the rows for the next attempt
                    batch.extend(self.pending)
                    self.pending = batch
                raise
            self.recorded.update(row["materialization_id"] for row in batch.materializations)

    def record(
        self, run_id: str, result: AssetResult, config: Mapping[str, Any], partition: str = ""
    ) -> None:
        """Add the rows of one unit's result: its materialization, check results, log
        lines and, if it made data (succeeded, or rejected by its checks), its lineage and
        what its checks read. (Only a succeeded one becomes current: see the catalog's
        views.)"""
        mid, now = result.materialization_id, utcnow()
        self.add(
            "materializations",
            [
                {
                    "materialization_id": mid,
                    "run_id": run_id,
                    "asset": result.asset,
                    "partition_key": partition or None,
                    "status": result.state,
                    "code_version": result.code_version,
                    # a skipped asset's parts are its current materialization's: not
                    # written again at every run that finds it fresh
                    "code_parts": json.dumps(result.code_parts, sort_keys=True)
                    if result.code_parts and result.state != states.SKIPPED
                    else None,
                    "data_version": result.data_version,
                    "row_count": result.row_count,
                    "started_at": _started_at(result, now),
                    "finished_at": now,
                    "error": result.error or (result.message if not result.ok else None),
                    "attempts": result.attempts,
                    "config": config_json(config),
                    "reason": _reason(result),
                    "quarantined_rows": result.quarantined,
                }
            ],
        )
        self.add("check_results", [outcome_row(o, mid, run_id, now) for o in result.checks])
        self.add("logs", log_rows(run_id, result.asset, mid, result.logs))
        if result.state in (states.SUCCEEDED, states.CHECK_FAILED):
            reads = result.check_reads.items()
            self.add(
                "check_reads",
                [{"materialization_id": mid, "asset": a, "data_version": v} for a, v in reads],
            )
            self.add(
                "lineage",
                [
                    {"materialization_id": mid, "upstream_asset": a, "upstream_data_version": v}
                    for a, v in result.inputs.items()
                ],
            )
            self.add(
                "column_lineage",
                [
                    {
                        "materialization_id": mid,
                        "column_name": column,
                        "upstream_asset": up,
                        "upstream_column": source,
                    }
                    for column, up, source in result.column_lineage
                ],
            )


RUN_ID = re.compile(r"^\d{8}T\d{6}\.\d{3}-[0-9a-f]{6}$")  # what new_run_id makes


def new_run_id() -> str:
    """A run id that sorts by start time (to the millisecond), e.g. 20261126T011254.123-4bf6b5."""
    now = clock.now()
    return f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}-{os.urandom(3).hex()}"


def run_row(
    run_id: str,
    selection: str,
    *,
    status: str,
    kind: str = "materialize",
    trigger: str = "manual",
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
) -> dict[str, Any]:
    """The `runs` row of a run of this process."""
    return {
        "run_id": run_id,
        "started_at": started_at or utcnow(),
        "finished_at": finished_at,
        "status": status,
        "selection": selection,
        "pid": os.getpid(),
        "host": _hostname(),
        "command": " ".join(sys.argv)[:500],
        "kind": kind,
        "trigger": trigger,
    }


REVALIDATED = "revalidated, not recomputed: "


def _reason(result: AssetResult) -> str | None:
    """Why it was computed (or validated again), for the `reason` column."""
    reasons = "; ".join(result.reasons)
    if result.revalidated and reasons:
        return REVALIDATED + reasons
    return reasons or result.message or None


def log_rows(
    run_id: str, asset: str, materialization_id: str, lines: Iterable[Any], first: int = 0
) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "materialization_id": materialization_id,
            "asset": asset,
            "seq": seq,
            "logged_at": datetime.fromtimestamp(line.created, UTC).replace(tzinfo=None),
            "level": line.level,
            "logger": line.logger,
            "message": line.message,
        }
        for seq, line in enumerate(lines, start=first)
    ]


def _hostname() -> str:
    import socket

    return socket.gethostname()


def config_json(config: Mapping[str, Any]) -> str:
    """The configuration values as JSON; values JSON cannot hold are given by repr."""
    if not config:  # most assets: no configuration
        return "{}"
    try:
        return json.dumps(dict(config), default=repr)
    except Exception:  # e.g. a value whose own methods raise
        return json.dumps({k: _safe_repr(v) for k, v in config.items()})


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _started_at(result: AssetResult, now: datetime) -> datetime:
    if result.started_at is not None:
        return clock.from_real(result.started_at)
    return now


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
