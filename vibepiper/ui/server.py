"""Serving the UI from `vibepiper serve`: uvicorn in a thread beside the daemon, its own
view of the project (loaded again when a definition file changes), and runs started from
the UI launched as `vibepiper materialize` processes."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vibepiper.errors import UsageError
from vibepiper.versioning.source_cache import Identities

if TYPE_CHECKING:
    from vibepiper.project import Project

MISSING = "the web UI needs Starlette and uvicorn: pip install 'vibepiper[ui]' (or pass --no-ui)"


def available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("starlette", "uvicorn", "python_multipart"))


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Current:
    """The project as it is now: loaded again when one of its definition files changed."""

    def __init__(self, make: Callable[[], Project], first: Project) -> None:
        self.make, self.project = make, first
        self.files = Identities(first.definition_files())

    def __call__(self) -> Project:
        if self.files.changed():
            with contextlib.suppress(Exception):  # a broken edit: the last good one stays
                self.project = self.make()
            self.files = Identities(self.project.definition_files())
        return self.project


class Launcher:
    """Starts a run of a selection as `vibepiper materialize` (its output goes where
    serve's goes), as serve's own runs are: it dies with serve, and `stop` cancels the
    ones still going (as Ctrl-C cancels a run)."""

    def __init__(self, root: Path, cli_args: list[str]) -> None:
        self.root, self.cli_args = root, cli_args
        self.running: list[subprocess.Popen[bytes]] = []

    def __call__(self, select: list[str]) -> str:
        from vibepiper.execution.recorder import new_run_id
        from vibepiper.processes import die_with_parent

        run_id = new_run_id()
        args = [sys.executable, "-m", "vibepiper", *self.cli_args, "materialize"]
        args += ["--run-id", run_id, "--", *select]
        process = subprocess.Popen(
            args, cwd=self.root, start_new_session=True, preexec_fn=die_with_parent(os.getpid())
        )
        self.running = [p for p in self.running if p.poll() is None] + [process]
        threading.Thread(target=process.wait, daemon=True).start()  # reaped when done
        return run_id

    def stop(self) -> None:
        for process in self.running:
            if process.poll() is None:
                with contextlib.suppress(OSError):
                    process.send_signal(signal.SIGTERM)
        for process in self.running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=60)


class Server:
    """uvicorn serving `app` on host:port, in a thread."""

    def __init__(self, app: Any, host: str, port: int, launcher: Launcher | None = None) -> None:
        import uvicorn

        self.launcher = launcher
        # quiet while it starts (a taken port is our one-line error, not its log), then
        # errors only: a request that fails is logged with its traceback
        config = uvicorn.Config(app, host=host, port=port, log_level="critical", access_log=False)
        self.server = uvicorn.Server(config)
        self.host, self.port = host, port
        self.thread = threading.Thread(target=self.server.run, name="vibepiper-ui", daemon=True)

    def start(self) -> None:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise UsageError(
                    f"cannot serve the UI on {self.host}:{self.port} (the port is taken, or "
                    "the address is not this machine's)",
                    "pass --port N with a free port, or --no-ui",
                )
            time.sleep(0.02)
        logging.getLogger("uvicorn.error").setLevel(logging.ERROR)

    def stop(self) -> None:
        """Stop serving, and cancel the runs started from the UI that are still going."""
        self.server.should_exit = True
        self.thread.join(timeout=10)
        if self.launcher is not None:
            self.launcher.stop()
