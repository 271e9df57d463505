"""The code that runs in a worker process (ours, or a Dask worker): import the project
once, then compute jobs, reading inputs from the Parquet store and staging outputs there."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# Imported here so that the fork server has them loaded before it forks a worker.
import pandas  # noqa: F401
import pyarrow.parquet  # noqa: F401

from vibepiper.execution.executors import STARTED, outcome_of_failure
from vibepiper.execution.logs import LogLine, in_worker
from vibepiper.execution.task import Job, TaskOutcome, run_job

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from vibepiper.execution.executors import GraphLoader
    from vibepiper.graph.graph import Graph
    from vibepiper.storage.store import Store

_graphs: dict[Any, Graph] = {}  # loader (hashable) -> the project's graph, loaded once
_loading = threading.Lock()


def _graph(loader: GraphLoader) -> Graph:
    with _loading:
        graph = _graphs.get(loader)
        if graph is None:
            graph = _graphs[loader] = loader()
    return graph


def compute(
    job: Job,
    loader: GraphLoader,
    store: Store,
    sink: Callable[[LogLine], None] | None = None,
) -> TaskOutcome:
    """Compute one job in this worker; the outcome carries no frame."""
    try:
        graph = _graph(loader)
        defn = graph.assets[job.asset].with_config(job.config)
    except BaseException as exc:
        return outcome_of_failure("the worker could not load the project", exc)
    differs = _code_differs(job, graph, loader)
    if differs:
        return outcome_of_failure(differs)

    outcome = run_job(job, defn, graph.checks.get(job.asset, ()), store, store.read, sink=sink)
    outcome.frame = None
    return outcome


_checked: dict[tuple[Any, str, str], str] = {}  # (loader, asset, code version) -> what differed


def _code_differs(job: Job, graph: Graph, loader: GraphLoader) -> str:
    """Why the worker's code of the asset is not the code the run recorded, if it is
    not: a module edited during the run, or another library version on a Dask worker."""
    if job.code_version is None:
        return ""
    key = (loader, job.asset, job.code_version)
    if key not in _checked:
        from vibepiper.versioning.fingerprint import config_texts, configured, describe_changes

        name = job.asset
        defn = graph.assets[name]
        code = _fingerprinter().code_version(defn, graph.checks.get(name, ()))
        defaults = config_texts(defn.config)
        code = configured(code, defaults, {**defaults, **config_texts(job.config)})
        _checked[key] = ""
        if code.version != job.code_version:
            what = "; ".join(describe_changes(job.code_parts or {}, code.parts))
            _checked[key] = (
                f"the worker's code of asset '{name}' differs from what this run recorded "
                f"({what}): was a module edited during the run, or does the worker have "
                "other library versions? Run again"
            )
    return _checked[key]


@functools.cache
def _fingerprinter() -> Any:
    """One per worker: it caches what it parsed (a new one per job would parse each
    module again, a cost that grows with the square of the assets in a module)."""
    from vibepiper.versioning.fingerprint import Fingerprinter

    return Fingerprinter()


def process_main(conn: Connection, loader: GraphLoader, store: Store) -> None:
    """A worker process of the `processes` executor: jobs in, outcomes out, until None."""
    # The run decides what Ctrl-C or a SIGTERM to the whole group stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ.setdefault("VIBEPIPER_WORKER", "1")
    in_worker()
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        with contextlib.suppress(BaseException):  # a failure to load is reported by compute
            _graph(loader)
        try:
            if job.timeout is not None:  # the run counts its timeout from now
                conn.send(STARTED)
            conn.send(compute(job, loader, store, conn.send))  # log lines go as they come
        except OSError:  # the run is gone (killed): so is the point of going on
            return


def warm(loader: GraphLoader) -> None:
    """Import the project now (on each Dask worker, before the first task)."""
    in_worker()
    with contextlib.suppress(BaseException):  # a failure to load is reported by compute
        _graph(loader)


LOG_TOPIC = "vibepiper-logs"  # the Dask event topic a task's log lines are sent on


def dask_compute(job: Job, loader: GraphLoader, store: Store) -> TaskOutcome:
    """The task the `dask` executor submits (one per asset). Each line it logs is also
    sent at once as a Dask event, so that what a task logged before it was stopped (timed
    out, cancelled) is kept; the outcome carries them all when it ends."""
    in_worker()
    outcome = compute(job, loader, store, _dask_sink(job.materialization_id))
    if outcome.staged is not None and outcome.error is None:
        # the run's machine may not see this one's files: the store takes the output now
        outcome.staged = store.hand_over(
            outcome.staged, job.materialization_id, rejected=outcome.rejected
        )
    return outcome


def _dask_sink(materialization_id: str) -> Callable[[LogLine], None] | None:
    import distributed

    try:
        worker = distributed.get_worker()
    except ValueError:  # not in a Dask worker (called directly)
        return None

    def send(line: LogLine) -> None:
        fields = [line.created, line.level, line.logger, line.message]
        worker.log_event(LOG_TOPIC, {"id": materialization_id, "line": fields})

    return send
