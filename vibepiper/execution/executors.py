"""Where assets compute: the run hands each ready asset to an executor.

- `inprocess` (the default): one at a time, in the run's own thread.
- `threads`: a thread pool; inputs and outputs stay in memory.
- `processes`: worker processes of our own (so one can be killed when its asset times out
  or the run is cancelled); each imports the project once and reads its inputs from the
  Parquet store, and its output comes back as a staged Parquet file, never pickled.
- `dask`: tasks on a dask.distributed cluster (`vibepiper[dask]`), the same way.

Only the run writes to the catalog, whichever executor computes.

Timeouts: `inprocess` raises `Interrupted` into the asset (a SIGALRM, between two Python
instructions: a long C call such as one big pandas sort finishes first); `processes` and
`dask` kill the worker that runs it; a thread cannot be stopped from outside, so with
`threads` the asset is failed at its deadline and its thread runs on, its output thrown
away, until the asset's function returns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vibepiper.errors import UsageError
from vibepiper.execution import EXECUTORS
from vibepiper.execution.logs import LogLine, echo
from vibepiper.execution.task import Interrupted, Job, TaskOutcome
from vibepiper.processes import new_temp_dir
from vibepiper.text import first_line

if TYPE_CHECKING:
    from vibepiper.graph.graph import Graph
    from vibepiper.storage.store import Store

STARTED = "started"  # what a worker process says when it begins computing a job
Work = Callable[[], TaskOutcome]  # the job, bound to this process's memory and definitions
GraphLoader = Callable[[], "Graph"]  # imports the project in a worker (picklable)


class Executor(Protocol):
    name: str
    workers: int  # how many assets it computes at once
    local: bool  # computes in this process (so frames can be handed over in memory)
    live_logs: bool  # log lines are shown as they come (else when the asset ends)
    # Its jobs stage their output after they are handed back (`TaskOutcome.write`): one
    # more job may then be submitted while an output is still being written.
    write_behind: bool

    def submit(self, job: Job, work: Work, lines: list[LogLine]) -> Future[TaskOutcome]:
        """Start `job` (`work` is the job bound to this process: for local executors). The
        asset's log lines are appended to `lines` as they come, where the executor can."""
        ...

    def kill(self, future: Future[TaskOutcome]) -> bool:
        """Stop the job of `future` now; False if this executor cannot."""
        ...

    def started(self, future: Future[TaskOutcome]) -> float | None:
        """When (time.monotonic()) the job of `future` began computing; None if not yet."""
        ...

    def interrupt(self, reason: str) -> None:
        """From a signal handler: stop what runs in the run's thread, if anything."""
        ...

    def abort(self) -> None:
        """Kill every worker at once, without waiting (a second Ctrl-C)."""
        ...

    def shutdown(self, *, wait: bool) -> None: ...


def make_executor(
    name: str,
    workers: int | None,
    *,
    loader: GraphLoader | None = None,
    store: Store | None = None,
    address: str | None = None,
    home: Path | None = None,
) -> Executor:
    """The executor called `name`; `loader` and `store` are needed by out-of-process ones
    (and `home`, the project's home, by `processes`: its workers' temporary folders)."""
    if name not in EXECUTORS:
        raise UsageError(f"unknown executor '{name}'", f"choose one of {', '.join(EXECUTORS)}")
    if address and name != "dask":
        raise UsageError(f"--address is for the dask executor, not '{name}'", "add --executor dask")
    count = workers or (os.cpu_count() or 1)
    if name == "inprocess":
        if workers not in (None, 1):
            raise UsageError(
                f"the inprocess executor runs one asset at a time, not --workers {workers}",
                "add --executor threads (or processes) to run several at once",
            )
        return InProcessExecutor()
    if name == "threads":
        return ThreadExecutor(count)
    assert loader is not None and store is not None
    if name == "processes":
        return ProcessExecutor(count, loader, store, home)
    from vibepiper.execution.dask_executor import DaskExecutor

    return DaskExecutor(workers, loader, store, address)


def outcome_of_failure(what: str, exc: BaseException | None = None) -> TaskOutcome:
    """The outcome of a job that could not run to its end (killed, timed out, crashed)."""
    if exc is None:
        return TaskOutcome(message=what, error=what)
    message = f"{what}: {type(exc).__name__}: {first_line(exc)}"
    return TaskOutcome(message=message, error=traceback.format_exc())


class InProcessExecutor:
    """One asset at a time, in the calling thread; timeouts by SIGALRM when it can.

    Its output is written to the store by a thread of its own, while the next asset
    computes (writing Parquet is C++ that does not hold the GIL): the asset's future is
    done, and its dependents can start, once the file is written.
    """

    name = "inprocess"
    workers = 1
    local = True
    live_logs = True
    write_behind = True

    def __init__(self) -> None:
        self.running = False
        self.writer: ThreadPoolExecutor | None = None

    def submit(self, job: Job, work: Work, lines: list[LogLine]) -> Future[TaskOutcome]:
        self.running = True
        try:
            with _alarm(job.timeout):
                outcome = work()
        except Interrupted as exc:
            outcome = outcome_of_failure(str(exc))
        finally:
            self.running = False
        if outcome.write is None:
            future: Future[TaskOutcome] = Future()
            future.set_result(outcome)
            return future
        if self.writer is None:
            self.writer = ThreadPoolExecutor(1, thread_name_prefix="vibepiper-writer")
        return self.writer.submit(_written, outcome)

    def kill(self, future: Future[TaskOutcome]) -> bool:
        return False  # computed by the time anyone could ask; at most its file is written

    def started(self, future: Future[TaskOutcome]) -> float | None:
        return None  # its timeout is an alarm set when it starts

    def interrupt(self, reason: str) -> None:
        if self.running:
            raise Interrupted(reason)

    def abort(self) -> None:
        pass

    def shutdown(self, *, wait: bool) -> None:
        if self.writer is not None:
            self.writer.shutdown(wait=wait)


def _written(outcome: TaskOutcome) -> TaskOutcome:
    if outcome.write is not None:
        outcome.write()  # never raises: a failure to write is in the outcome
    return outcome


@contextlib.contextmanager
def _alarm(seconds: float | None) -> Iterator[None]:
    """Raise `Interrupted` in this (main) thread after `seconds`."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise Interrupted(f"timed out after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class ThreadExecutor:
    """A pool of daemon threads. A thread cannot be killed, so `kill` says no; being
    daemons, a timed-out asset's thread does not keep the command from exiting."""

    name = "threads"
    local = True
    write_behind = False
    live_logs = True

    def __init__(self, workers: int) -> None:
        import queue

        self.workers = workers
        self.queue: queue.SimpleQueue[tuple[Future[TaskOutcome], Work] | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.begun: dict[Future[TaskOutcome], float] = {}

    def submit(self, job: Job, work: Work, lines: list[LogLine]) -> Future[TaskOutcome]:
        if len(self.threads) < self.workers:
            thread = threading.Thread(target=self._serve, daemon=True, name="vibepiper-thread")
            thread.start()
            self.threads.append(thread)
        future: Future[TaskOutcome] = Future()
        self.queue.put((future, work))
        return future

    def _serve(self) -> None:
        while (item := self.queue.get()) is not None:
            future, work = item
            if future.set_running_or_notify_cancel():
                self.begun[future] = time.monotonic()
                outcome = _guarded(work)
                self.begun.pop(future, None)
                future.set_result(outcome)

    def kill(self, future: Future[TaskOutcome]) -> bool:
        return False

    def started(self, future: Future[TaskOutcome]) -> float | None:
        return self.begun.get(future)

    def interrupt(self, reason: str) -> None:
        pass

    def abort(self) -> None:
        pass

    def shutdown(self, *, wait: bool) -> None:
        for _ in self.threads:
            self.queue.put(None)
        if wait:
            for thread in self.threads:
                thread.join()
        self.threads.clear()


def _guarded(work: Work) -> TaskOutcome:
    try:
        return work()
    except BaseException as exc:  # a bug of ours, not the asset's: still one asset's failure
        return outcome_of_failure("the task crashed", exc)


class ProcessExecutor:
    """Worker processes, each computing one asset at a time, killed when they must stop.

    Workers are forked from a server process that has pandas and pyarrow imported, and
    each imports the project's modules once, when it gets its first job.
    """

    name = "processes"
    local = False
    write_behind = False
    live_logs = True

    def __init__(
        self, workers: int, loader: GraphLoader, store: Store, home: Path | None = None
    ) -> None:
        self.workers = workers
        self.loader = loader
        self.store = store
        self.idle: list[_Worker] = []
        self.busy: dict[Future[TaskOutcome], _Worker] = {}
        self.guard = threading.Lock()
        if home is not None:
            _keep_temp_files_in(home)
        # Start the fork server (which imports pandas and pyarrow) now, in the background,
        # while the run reads the catalog and judges the first assets.
        threading.Thread(target=_start_fork_server, daemon=True).start()

    def submit(self, job: Job, work: Work, lines: list[LogLine]) -> Future[TaskOutcome]:
        with self.guard:
            worker = None
            while self.idle and worker is None:  # one that died while idle is left behind
                worker = self.idle.pop()
                if not worker.alive():
                    worker = None
            if worker is None:
                worker = _Worker(self.loader, self.store, self._release)
            future: Future[TaskOutcome] = Future()
            future.set_running_or_notify_cancel()
            self.busy[future] = worker
        worker.run(job, future, lines)
        return future

    def _release(self, future: Future[TaskOutcome], worker: _Worker) -> None:
        with self.guard:
            self.busy.pop(future, None)
            if worker.alive():
                self.idle.append(worker)

    def kill(self, future: Future[TaskOutcome]) -> bool:
        with self.guard:
            worker = self.busy.pop(future, None)
        if worker is None:
            return False
        worker.kill()
        return True

    def started(self, future: Future[TaskOutcome]) -> float | None:
        """(Known only for a job with a timeout: the worker says when it began only then.)"""
        worker = self.busy.get(future)
        return None if worker is None else worker.begun

    def interrupt(self, reason: str) -> None:
        pass

    def abort(self) -> None:
        for worker in [*self.busy.values(), *self.idle]:
            with contextlib.suppress(Exception):
                worker.process.kill()

    def shutdown(self, *, wait: bool) -> None:
        with self.guard:
            busy, idle = list(self.busy.values()), list(self.idle)
            self.idle.clear()
        for worker in busy:
            worker.kill()
        for worker in idle:
            worker.stop()


def _context() -> Any:
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


# What the fork server imports before it forks a worker: the worker's module, and what a
# worker's first job imports (so that no worker imports them on its own, job by job).
PRELOAD = (
    "vibepiper.execution.worker",
    "vibepiper.loader",
    "vibepiper.graph.graph",
    "vibepiper.storage.parquet_store",
    "vibepiper.versioning.fingerprint",
    "vibepiper.execution.sql_task",
    "pyarrow.dataset",
    "pyarrow.pandas_compat",
    "pandas.core.arrays.arrow.extension_types",
)


def _keep_temp_files_in(home: Path) -> None:
    """Have multiprocessing keep this process's temporary folder (the fork server's socket
    is in it) under the project's home: if this process is killed, the next run removes it,
    where in the system's temporary folder it would stay. Done before the fork server
    starts; a process that has one already keeps it."""
    from multiprocessing import process, util

    config = getattr(process.current_process(), "_config", None)
    if not isinstance(config, dict) or config.get("tempdir") is not None:
        return  # multiprocessing's internals changed, or it has one: its own rules apply
    folder = new_temp_dir(home)
    if folder is not None:
        config["tempdir"] = str(folder)
        # removed when this process exits, as multiprocessing removes its own
        util.Finalize(None, _remove_temp_dir, args=(folder,), exitpriority=-100)


def _remove_temp_dir(folder: Path) -> None:
    """Remove `folder`, and the folder it is in if that is empty now (`<home>/tmp`)."""
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()


def _start_fork_server() -> None:
    from multiprocessing import forkserver

    _context()
    with contextlib.suppress(Exception):  # the first worker's start will say what is wrong
        forkserver.ensure_running()


class _Worker:
    """One worker process and the thread that reads its answers (one thread for the
    worker's life, not one per job)."""

    def __init__(
        self,
        loader: GraphLoader,
        store: Store,
        release: Callable[[Future[TaskOutcome], _Worker], None],
    ) -> None:
        from vibepiper.execution.worker import process_main

        ctx = _context()
        self.conn, child = ctx.Pipe()
        self.begun: float | None = None  # when its current job began computing
        # its current job: the future to settle and the list its log lines go to
        self.job: tuple[Future[TaskOutcome], list[LogLine]] | None = None
        self.release = release
        self.process = ctx.Process(
            target=process_main, args=(child, loader, store), daemon=True, name="vibepiper-worker"
        )
        self.process.start()
        child.close()
        threading.Thread(target=self._read, daemon=True, name="vibepiper-wait").start()

    def alive(self) -> bool:
        return bool(self.process.is_alive())

    def run(self, job: Job, future: Future[TaskOutcome], lines: list[LogLine]) -> None:
        self.begun = None
        self.job = (future, lines)
        self.conn.send(job)

    def _read(self) -> None:
        """Settle each job's future with what the worker answers, until it is gone."""
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                break
            if message == STARTED:  # the project is imported; the asset computes now
                self.begun = time.monotonic()
            elif isinstance(message, LogLine):
                if self.job is not None:
                    self.job[1].append(message)
                echo(message)
            else:
                self._settle(message)
        if self.job is not None:  # it died (or was killed) while computing
            self.process.join(timeout=5)
            code = self.process.exitcode
            self._settle(outcome_of_failure(f"its worker process died (exit code {code})"))

    def _settle(self, outcome: TaskOutcome) -> None:
        if self.job is None:
            return
        future, self.job = self.job[0], None
        self.release(future, self)
        if not future.done():
            future.set_result(outcome)

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        self.process.join(timeout=5)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(None)
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.kill()
