"""DuckDB connections with the settings every VibePiper connection needs.

Extension auto-install and auto-load are off: DuckDB would otherwise try the network
(measured: a 2.5 s wait on DNS). Parquet, JSON and ICU are built in.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


def connect(database: str = ":memory:", *, read_only: bool = False) -> Any:
    import duckdb

    return duckdb.connect(database, read_only=read_only, config=DUCKDB_CONFIG)


_interrupted = threading.Event()


@contextlib.contextmanager
def noticing_interrupts() -> Iterator[None]:
    """Within the block, Ctrl-C is remembered as well as raised as KeyboardInterrupt.

    DuckDB turns a KeyboardInterrupt raised while it runs into an error of its own (a
    RuntimeError('Query interrupted'), an InvalidInputException "... failed:
    KeyboardInterrupt", ...), which code that handles errors would take for something
    else; `interrupted()` tells that it was Ctrl-C. Only the main thread receives signals,
    and a handler other than Python's default is left alone.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def remember(signum: int, frame: Any) -> None:
        _interrupted.set()
        raise KeyboardInterrupt

    _interrupted.clear()
    signal.signal(signal.SIGINT, remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def interrupted() -> bool:
    """Whether Ctrl-C was pressed within the current `noticing_interrupts` block."""
    return _interrupted.is_set()


def raise_if_interrupted(exc: BaseException) -> None:
    """Raise KeyboardInterrupt (from `exc`) if `exc` is what became of a Ctrl-C."""
    if interrupted():
        raise KeyboardInterrupt from exc
