"""Keeping each asset's log lines: whatever is logged in the thread that computes it
(`context.log`, or any logger its code or its libraries use) while it computes."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MAX_LINES = 10_000  # per asset and run: a runaway loop cannot fill the catalog
MAX_MESSAGE = 4_000  # characters kept of one message


@dataclass(frozen=True)
class LogLine:
    """One line an asset logged."""

    created: float  # seconds since the epoch
    level: str
    logger: str
    message: str


class _Capture(logging.Handler):
    """On the root logger: hands each record to the capture open in its thread, if any."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.local = threading.local()  # .lines: the open capture's list; .sink: its sink
        self.in_worker = False  # captured lines are shown by the run, not here

    def emit(self, record: logging.LogRecord) -> None:
        lines: list[LogLine] | None = getattr(self.local, "lines", None)
        last = logging.lastResort
        if (
            last is not None
            and record.levelno >= last.level
            and not (self.in_worker and lines is not None)
            and not _handled_elsewhere(record)
        ):
            last.handle(record)  # as Python does when no handler is set up
        if lines is None or len(lines) >= MAX_LINES:
            return
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
        except Exception:  # a bad format string in user code must not fail the asset
            message = f"{record.msg!r} (could not format its arguments)"
        line = LogLine(record.created, record.levelname, record.name, message[:MAX_MESSAGE])
        lines.append(line)
        sink = getattr(self.local, "sink", None)
        if sink is not None:
            with contextlib.suppress(Exception):  # the run is gone: keep computing
                sink(line)


def _handled_elsewhere(record: logging.LogRecord) -> bool:
    """Whether another handler on the record's way up to the root takes it."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        if any(h is not _handler for h in logger.handlers):
            return True
        logger = logger.parent if logger.propagate else None
    return False


_handler = _Capture()
_install = threading.Lock()


@contextlib.contextmanager
def capture(
    into: list[LogLine] | None = None, sink: Callable[[LogLine], None] | None = None
) -> Iterator[list[LogLine]]:
    """Collect the log lines of this thread into the yielded list (`into`, if given, so
    that someone else can see the lines so far) until the block ends; `sink` is also
    handed each line as it comes (a worker process sends it to the run)."""
    with _install:
        root = logging.getLogger()
        if _handler not in root.handlers:
            root.addHandler(_handler)
            assets = logging.getLogger("vibepiper.asset")
            if assets.level == logging.NOTSET:  # context.log.info is kept, whatever the root's
                assets.setLevel(logging.INFO)
    lines: list[LogLine] = [] if into is None else into
    _handler.local.lines, _handler.local.sink = lines, sink
    try:
        yield lines
    finally:
        _handler.local.lines = _handler.local.sink = None


def echo(line: LogLine) -> None:
    """Show a line an asset logged elsewhere (a worker) as if it had been logged here."""
    if line.logger.startswith("vibepiper.asset."):
        logging.getLogger(line.logger).log(logging.getLevelName(line.level), line.message)


def in_worker() -> None:
    """This process is a worker: the run shows what its assets log."""
    _handler.in_worker = True
    log_informative()


def log_informative() -> None:
    """Let INFO lines through when nobody configured logging (as in the CLI and workers).

    Without it, a library's `logger.info(...)` stops at the root's default WARNING level
    before any handler sees it. A level someone set on purpose is left alone.
    """
    root = logging.getLogger()
    if root.level == logging.WARNING and all(h is _handler for h in root.handlers):
        root.setLevel(logging.INFO)
