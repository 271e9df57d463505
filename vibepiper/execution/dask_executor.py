"""The `dask` executor: each asset is one task on a dask.distributed cluster.

With an address, the tasks go to that cluster's scheduler (its workers must import the
project's modules; with the local store they must also see its folder at the same path,
with an object store (SPEC §11) they read and write the bucket themselves); without one,
a local cluster of worker processes (one thread each) is started for the run and closed
after it. A timed-out or
cancelled asset's worker is restarted, which is the only way to stop a running Dask task.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from vibepiper.errors import UsageError
from vibepiper.execution.executors import GraphLoader, Work, outcome_of_failure
from vibepiper.execution.logs import LogLine
from vibepiper.execution.task import Job, TaskOutcome
from vibepiper.text import first_line

if TYPE_CHECKING:
    from vibepiper.storage.store import Store


class DaskExecutor:
    name = "dask"
    local = False
    write_behind = False
    live_logs = False

    def __init__(
        self,
        workers: int | None,
        loader: GraphLoader,
        store: Store,
        address: str | None,
    ) -> None:
        try:
            import distributed
        except ImportError:
            raise UsageError(
                "the dask executor needs dask.distributed, which is not installed",
                "pip install 'vibepiper[dask]'",
            ) from None
        self.loader = loader
        self.store = store.for_workers()  # an object store: each worker keeps its own cache
        self.cluster: Any = None
        self.client: Any = None
        self.tasks: dict[Future[TaskOutcome], Any] = {}
        self.begun: dict[Future[TaskOutcome], float] = {}
        self.lines: dict[str, list[LogLine]] = {}  # materialization id -> its lines so far
        self.guard = threading.Lock()
        if address:  # connect now: a wrong address is a usage error before anything runs
            try:
                self.client = distributed.Client(address, timeout="5s")
            except Exception as exc:  # OSError, TimeoutError, ValueError for a bad address
                raise UsageError(
                    f"cannot reach the Dask scheduler at {address}: {first_line(exc)}",
                    "check --address (tcp://HOST:PORT) and that the scheduler is running",
                ) from None
            self._listen()
            self._warm()
            info = self.client.scheduler_info()["workers"].values()
            self.workers = workers or max(sum(w["nthreads"] for w in info), 1)
        else:  # a local cluster, started when the first asset needs computing
            self.workers = workers or os.cpu_count() or 1

    def _connect(self) -> Any:
        if self.client is None:
            import distributed

            self.cluster = distributed.LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,  # errors only
            )
            self.client = distributed.Client(self.cluster)
            self._listen()
            self._warm()
            self._prompt()
        return self.client

    def _prompt(self) -> None:
        """Have our local cluster send each message at once. Dask batches what goes
        between the client, the scheduler and the workers (waiting up to 10 ms after the
        client's last message, 5 ms to a worker, 2 ms from it), which with a few tasks at
        once (one per worker) delays every asset on each hop. Best effort: these are
        Dask's internals (a cluster someone else runs is left as it is)."""
        with contextlib.suppress(Exception):
            self.client.scheduler_comm.interval = 0.0
            scheduler = self.cluster.scheduler
            for comm in [*scheduler.stream_comms.values(), *scheduler.client_comms.values()]:
                comm.interval = 0.0
            self.client.run(_prompt_worker)

    def _listen(self) -> None:
        """Take each line a task logs as it comes (sent as a Dask event by the worker)."""
        from vibepiper.execution.worker import LOG_TOPIC

        self.client.subscribe_topic(LOG_TOPIC, self._logged)

    def _logged(self, event: tuple[float, Any]) -> None:
        with contextlib.suppress(Exception):  # an event of someone else's on our topic
            message = event[1]
            lines = self.lines.get(message["id"])
            if lines is not None:
                lines.append(LogLine(*message["line"]))

    def _warm(self) -> None:
        """Have every worker import the project now, so that it does not count against the
        first asset's timeout."""
        from vibepiper.execution.worker import warm

        with contextlib.suppress(Exception):
            self.client.run(warm, self.loader)

    def submit(self, job: Job, work: Work, lines: list[LogLine]) -> Future[TaskOutcome]:
        from vibepiper.execution.worker import dask_compute

        future: Future[TaskOutcome] = Future()
        future.set_running_or_notify_cancel()
        self.lines[job.materialization_id] = lines  # before it starts: its first lines count
        task = self._connect().submit(
            dask_compute,
            job,
            self.loader,
            self.store,
            key=f"vibepiper-{job.materialization_id}",
            pure=False,
            retries=0,
        )
        with self.guard:
            self.tasks[future] = task
            self.begun[future] = time.monotonic()  # after the local cluster has started

        def done(task: Any) -> None:
            with self.guard:
                self.tasks.pop(future, None)
                self.begun.pop(future, None)
                self.lines.pop(job.materialization_id, None)
            if future.done():
                return
            try:
                outcome = task.result()
            except BaseException as exc:
                outcome = outcome_of_failure("its Dask task failed", exc)
            future.set_result(outcome)

        task.add_done_callback(done)
        return future

    def started(self, future: Future[TaskOutcome]) -> float | None:
        return self.begun.get(future)

    def kill(self, future: Future[TaskOutcome]) -> bool:
        with self.guard:
            task = self.tasks.pop(future, None)
        if task is None:
            return False
        self._stop([task])
        return True

    def _stop(self, tasks: list[Any]) -> None:
        keys = {t.key for t in tasks}
        if self.client is None:
            return
        with contextlib.suppress(Exception):
            processing = self.client.processing()
            running_on = [w for w, held in processing.items() if keys & set(held)]
            for task in tasks:
                task.cancel()
            if running_on:
                self.client.restart_workers(running_on, timeout=30)

    def interrupt(self, reason: str) -> None:
        pass

    def abort(self) -> None:
        pass  # a local cluster's workers see this process die and stop by themselves

    def shutdown(self, *, wait: bool) -> None:
        with self.guard:
            tasks = list(self.tasks.values())
            self.tasks.clear()
        if tasks and self.cluster is None:
            self._stop(tasks)  # a shared cluster: stop only what is ours
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()


def _prompt_worker(dask_worker: Any) -> None:
    """On a worker of our local cluster: send each message to the scheduler at once."""
    dask_worker.batched_stream.interval = 0.0
