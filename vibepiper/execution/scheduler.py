"""The one scheduling loop: for each selected asset in dependency order, decide whether it
is blocked or fresh, else compute it, then publish it and record the outcome.

The scheduler is the only part of a run that writes to the catalog. It batches rows and
writes them at most about once a second (and at the end), so a run costs a few
transactions rather than one per asset, while readers still see its progress.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vibepiper.catalog.catalog import Catalog
from vibepiper.errors import AssetNotMaterializedError, UsageError, VibePiperError
from vibepiper.execution import states
from vibepiper.execution.executors import Executor, InProcessExecutor
from vibepiper.execution.logs import LogLine, echo
from vibepiper.execution.recorder import Recorder, RunNotRecorded, not_recorded
from vibepiper.execution.states import AssetResult, RunResult
from vibepiper.execution.task import Job, TaskOutcome, run_job
from vibepiper.execution.verdicts import Judge
from vibepiper.graph.graph import Graph
from vibepiper.processes import remove_dead_temp_dirs
from vibepiper.storage.parquet_store import ParquetStore
from vibepiper.text import plural
from vibepiper.validation.outcome import outcome_row
from vibepiper.versioning.fingerprint import CodeVersion
from vibepiper.versioning.freshness import (
    Current,
    Verdict,
    check_read_of,
    check_read_reason,
    recheck_only,
)

if TYPE_CHECKING:
    import pandas as pd


class Reporter(Protocol):
    """Told what happens during a run; renders it (see `reporting.console`)."""

    def run_started(self, run_id: str, names: list[str]) -> None: ...
    def asset_started(self, name: str, state: str) -> None: ...
    def asset_finished(self, result: AssetResult) -> None: ...


class SilentReporter:
    def run_started(self, run_id: str, names: list[str]) -> None:
        pass

    def asset_started(self, name: str, state: str) -> None:
        pass

    def asset_finished(self, result: AssetResult) -> None:
        pass


@dataclass(frozen=True)
class Workspace:
    """Everything a run needs: the graph, where the project lives, its store and catalog."""

    graph: Graph
    project_dir: Path
    store: ParquetStore
    catalog: Catalog
    codes: dict[str, CodeVersion] = field(default_factory=dict)  # known code versions


def new_run_id() -> str:
    """A run id that sorts by start time (to the millisecond), e.g. 20261126T011254.123-4bf6b5."""
    now = datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}-{os.urandom(3).hex()}"


def run_row(
    run_id: str,
    selection: str,
    *,
    status: str,
    kind: str = "materialize",
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
        "host": socket.gethostname(),
        "command": " ".join(sys.argv)[:500],
        "kind": kind,
    }


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Scheduler:
    """Runs a selection of a workspace's assets, in-process, in dependency order."""

    def __init__(self, workspace: Workspace, reporter: Reporter | None = None) -> None:
        self.ws = workspace
        self.reporter = reporter or SilentReporter()
        self.judge = Judge(
            workspace.graph,
            workspace.store,
            workspace.project_dir,
            workspace.catalog.home,
            workspace.codes,
        )

    def run(
        self,
        names: list[str],
        *,
        force: bool = False,
        fail_fast: bool = False,
        selection: str = "",
        executor: Executor | None = None,
        pools: Mapping[str, int] | None = None,
        cancel: threading.Event | None = None,
        signals: bool = False,
    ) -> RunResult:
        """Run `names` (in dependency order): each asset starts once everything it depends
        on has finished, on `executor` (default: in this thread, one at a time), with at
        most `pools[p]` assets of pool `p` computing at once. Setting `cancel` stops the
        run: nothing more starts, what runs is stopped (or, on threads, left to end) and
        recorded as failed, "cancelled". With `signals`, Ctrl-C and SIGTERM set it (a second
        one exits at once, with code 130)."""
        ws = self.ws
        pools = dict(pools or {})
        check_pools(ws.graph, names, pools)
        executor = executor or InProcessExecutor()
        with run_turn(self.ws.catalog):
            return self._run(names, force, fail_fast, selection, executor, pools, cancel, signals)

    def _run(
        self,
        names: list[str],
        force: bool,
        fail_fast: bool,
        selection: str,
        executor: Executor,
        pools: dict[str, int],
        cancel: threading.Event | None,
        signals: bool,
    ) -> RunResult:
        ws = self.ws
        ws.store.clean_temp_files()
        remove_dead_temp_dirs(ws.catalog.home)  # e.g. the fork server's of a killed run
        run = RunResult(new_run_id())
        recorder = Recorder(ws.catalog, before_write=ws.store.sync)
        recorder.add("runs", [run_row(run.run_id, selection, status="running")])
        current = recorder.start()
        self.reporter.run_started(run.run_id, names)
        loop = _Loop(self, run, names, current, recorder, executor, pools, force, fail_fast)
        cancel = cancel or threading.Event()
        failure: Exception | None = None
        try:
            with _cancelled_by_signals(cancel, executor) if signals else contextlib.nullcontext():
                loop.drive(cancel)
        finally:
            loop.close()
            recorder.add(
                "run_updates",
                [{"run_id": run.run_id, "status": run.status, "finished_at": utcnow()}],
            )
            try:
                recorder.flush()
            except Exception as exc:  # raised below, unless an error of ours is on its way
                failure = exc
            self.judge.save()
        if failure is not None:
            raise _not_recorded(run, recorder, failure) from failure
        return run

    def plan(
        self, names: list[str], *, force: bool = False, whole_graph: bool = False
    ) -> dict[str, Verdict]:
        """Each asset's verdict, without running anything (fresh means skipped).

        For a dry run (the default), staleness spreads only through the selection: an
        unselected upstream keeps its current data. With `whole_graph` (for `status` and
        `check --require-fresh`), an asset is also stale when any ancestor is.
        """
        graph = self.ws.graph
        selected = set(names)
        scope = set(names)
        if whole_graph:
            for name in names:
                scope |= graph.ancestors(name)
        current = self.ws.catalog.current()
        stale: set[str] = set()
        verdicts: dict[str, Verdict] = {}
        for name in graph.sorted(scope):
            reasons = list(self._plain_verdict(name, current).reasons)
            if reasons != ["never materialized"]:
                inputs = set(graph.assets[name].inputs.values())
                for up in inputs:
                    if up in stale:
                        reasons = [r for r in reasons if not r.startswith(f"upstream {up} ")]
                        reasons.append(f"upstream {up} {_will(up, whole_graph, selected)}")
                for up, checks in graph.check_reads.get(name, {}).items():
                    if up in stale and up not in inputs:
                        reasons = [r for r in reasons if check_read_of(r) != up]
                        will = _will(up, whole_graph, selected)
                        reasons.append(check_read_reason(checks, up, will))
            if force and name in selected and not reasons:
                reasons = ["--force"]
            verdicts[name] = Verdict(not reasons, tuple(reasons), recheck_only(reasons))
            if reasons and not verdicts[name].recheck:  # a recheck keeps the asset's data
                stale.add(name)
        self.judge.save()
        return {name: verdicts[name] for name in names}

    def _plain_verdict(self, name: str, current: Mapping[str, Current]) -> Verdict:
        try:
            versions = self._input_versions(name, current, {})
            checked = self._checked_versions(name, current, {})
            return self.judge.verdict(name, current, versions, utcnow(), checked)
        except VibePiperError as exc:
            return Verdict(False, (exc.message,))

    # -- one asset -------------------------------------------------------------------

    def _prepare(
        self, name: str, mid: str, run: RunResult, current: dict[str, Current], force: bool
    ) -> AssetResult | _Launch:
        """Decide what to do with `name` now that everything it depends on has finished:
        it is blocked, cannot run, is fresh (skipped), or is to be computed (a `_Launch`)."""
        ws = self.ws
        defn = ws.graph.assets[name]
        bad = [
            u
            for u in ws.graph.upstream[name]
            if u in run.results and run.results[u].state in states.BLOCKING_STATES
        ]
        if bad:
            why = run.results[bad[0]].state
            return AssetResult(
                name,
                states.BLOCKED,
                mid,
                message=f"blocked: upstream {bad[0]} {why.replace('_', ' ')}",
            )
        versions = self._input_versions(name, current, run.results)
        missing = [u for u, v in versions.items() if v is None]
        if missing:
            return AssetResult(
                name,
                states.FAILED,
                mid,
                message=f"input {missing[0]} has never been materialized; "
                f"run `vibepiper materialize +{name}`",
            )
        checked = self._checked_versions(name, current, run.results)
        try:
            verdict = self.judge.verdict(name, current, versions, utcnow(), checked)
        except VibePiperError as exc:
            return AssetResult(name, states.FAILED, mid, message=str(exc), error=str(exc))
        code = self.judge.code(name)
        if verdict.fresh and not force:
            cur = current[name]
            return AssetResult(
                name,
                states.SKIPPED,
                mid,
                data_version=cur.data_version,
                code_version=code.version,
                code_parts=code.parts,
                row_count=cur.row_count,
                message="fresh",
            )
        readable = {}
        for up in ws.graph.upstream[name]:
            with contextlib.suppress(AssetNotMaterializedError):
                readable[up] = self._version_of(up, current, run.results)
        job = Job(
            asset=name,
            materialization_id=mid,
            run_id=run.run_id,
            project_dir=ws.project_dir,
            inputs={param: (up, str(versions[up])) for param, up in defn.inputs.items()},
            versions=readable,
            data_version=self.judge.source_version(name) if defn.is_source else None,
            timeout=defn.timeout,
            code_version=code.version,
            code_parts=code.parts,
            # only what its checks read changed: validate its current data again
            revalidate=current[name].data_version if verdict.recheck and not force else None,
        )
        return _Launch(job, code, versions, verdict.reasons or ("--force",))

    def _finish(
        self, launch: _Launch, outcome: TaskOutcome, memory: _Memory, replace: bool = False
    ) -> AssetResult:
        """Publish a computed asset, or keep its output as rejected, and say how it ended."""
        name, mid = launch.job.asset, launch.job.materialization_id
        common: dict[str, Any] = {
            "code_version": launch.code.version,
            "code_parts": launch.code.parts,
            "seconds": time.monotonic() - launch.started,
            "started_at": launch.started_at,
            "attempts": outcome.attempts,
            "reasons": launch.reasons,
            "inputs": dict(launch.versions),
            "checks": outcome.checks,
            "logs": tuple(outcome.logs),
            "quarantined": outcome.quarantined,
            "check_reads": {
                other: launch.job.versions[other]
                for other in self.ws.graph.check_reads.get(name, {})
                if other in launch.job.versions
            },
            "revalidated": launch.job.revalidate is not None,
        }
        if outcome.staged is None and not outcome.unchanged:
            return AssetResult(
                name, states.FAILED, mid, message=outcome.message, error=outcome.error, **common
            )
        common.update(
            data_version=outcome.data_version,
            row_count=outcome.row_count,
            columns=outcome.columns,
        )
        if outcome.rejected:
            if outcome.staged is not None:
                self.ws.store.reject(outcome.staged, mid)
            blocking = [c for c in outcome.checks if c.blocking]
            return AssetResult(
                name,
                states.CHECK_FAILED,
                mid,
                message=outcome.check_error or _failed_checks(blocking),
                **common,
            )
        if outcome.staged is not None:
            self.ws.store.publish(outcome.staged, replace=replace)
        if outcome.frame is not None:
            memory.keep(name, outcome.frame)
        message = ", ".join(launch.reasons)
        if launch.job.revalidate is not None:
            message = REVALIDATED + message
        return AssetResult(name, states.SUCCEEDED, mid, message=message, **common)

    def _version_of(
        self, name: str, current: Mapping[str, Current], results: Mapping[str, AssetResult]
    ) -> str:
        """The data version of `name` that this run reads: its own result, else current."""
        result = results.get(name)
        if result is not None and result.state in (states.SUCCEEDED, states.SKIPPED):
            return str(result.data_version)
        if name in current:
            return current[name].data_version
        raise AssetNotMaterializedError(
            f"asset '{name}' has never been materialized", f"run `vibepiper materialize {name}`"
        )

    def _checked_versions(
        self, name: str, current: Mapping[str, Current], results: Mapping[str, AssetResult]
    ) -> dict[str, str | None]:
        """The data version of each other asset the checks of `name` read, for this run."""
        checked: dict[str, str | None] = {}
        for other in self.ws.graph.check_reads.get(name, {}):
            try:
                checked[other] = self._version_of(other, current, results)
            except AssetNotMaterializedError:
                checked[other] = None
        return checked

    def _input_versions(
        self, name: str, current: Mapping[str, Current], results: Mapping[str, AssetResult]
    ) -> dict[str, str | None]:
        versions: dict[str, str | None] = {}
        for up in self.ws.graph.assets[name].inputs.values():
            if up in results:
                versions[up] = results[up].data_version
            else:
                versions[up] = current[up].data_version if up in current else None
        return versions

    def _record(self, recorder: Recorder, run_id: str, result: AssetResult) -> None:
        import json

        defn = self.ws.graph.assets[result.asset]
        now = utcnow()
        recorder.add(
            "materializations",
            [
                {
                    "materialization_id": result.materialization_id,
                    "run_id": run_id,
                    "asset": result.asset,
                    "status": result.state,
                    "code_version": result.code_version,
                    "code_parts": json.dumps(result.code_parts, sort_keys=True)
                    if result.code_parts
                    else None,
                    "data_version": result.data_version,
                    "row_count": result.row_count,
                    "started_at": _started_at(result, now),
                    "finished_at": now,
                    "error": result.error or (result.message if not result.ok else None),
                    "attempts": result.attempts,
                    "config": _config_json(defn.config),
                    "reason": _reason(result),
                    "quarantined_rows": result.quarantined,
                }
            ],
        )
        recorder.add(
            "check_results",
            [outcome_row(o, result.materialization_id, run_id, now) for o in result.checks],
        )
        recorder.add(
            "logs", _log_rows(run_id, result.asset, result.materialization_id, result.logs)
        )
        if result.state == states.SUCCEEDED:
            recorder.add(
                "check_reads",
                [
                    {
                        "materialization_id": result.materialization_id,
                        "asset": other,
                        "data_version": version,
                    }
                    for other, version in result.check_reads.items()
                ],
            )
            recorder.add(
                "lineage",
                [
                    {
                        "materialization_id": result.materialization_id,
                        "upstream_asset": up,
                        "upstream_data_version": version,
                    }
                    for up, version in result.inputs.items()
                ],
            )


def _not_recorded(run: RunResult, recorder: Recorder, cause: Exception) -> RunNotRecorded:
    """The run's last catalog write failed: name what it published that is not recorded."""
    unrecorded = [
        name
        for name, result in run.results.items()
        if result.state == states.SUCCEEDED and result.materialization_id not in recorder.recorded
    ]
    return not_recorded(run, unrecorded, cause)


REVALIDATED = "revalidated, not recomputed: "


def _reason(result: AssetResult) -> str | None:
    """Why it was computed (or validated again), for the `reason` column."""
    reasons = "; ".join(result.reasons)
    if result.revalidated and reasons:
        return REVALIDATED + reasons
    return reasons or result.message or None


def _will(up: str, whole_graph: bool, selected: set[str]) -> str:
    return "is stale" if whole_graph or up not in selected else "will be recomputed"


def _log_rows(
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


def _config_json(config: Mapping[str, Any]) -> str:
    """The configuration values as JSON; values JSON cannot hold are given by repr."""
    import json

    try:
        return json.dumps(dict(config), default=repr)
    except Exception:  # e.g. a value whose own methods raise
        return json.dumps({k: _safe_repr(v) for k, v in config.items()})


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _failed_checks(outcomes: list[Any]) -> str:
    parts = [
        f"{o.name} ({plural(o.failing_rows, 'row')})" if o.failing_rows else o.name
        for o in outcomes
    ]
    return "failed checks: " + ", ".join(parts)


def _started_at(result: AssetResult, now: datetime) -> datetime:
    if result.started_at is not None:
        return datetime.fromtimestamp(result.started_at, UTC).replace(tzinfo=None)
    return now


@contextlib.contextmanager
def _cancelled_by_signals(cancel: threading.Event, executor: Executor) -> Iterator[None]:
    """Ctrl-C or SIGTERM cancels the run; a second one exits at once.

    Exiting at once is safe: a catalog transaction not committed is rolled back when the
    catalog is next opened, files are published by an atomic rename, and the next run marks
    this one abandoned and removes the temporary files it left.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

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

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def run_turn(catalog: Catalog) -> Iterator[None]:
    """Runs of one project take turns: a second `materialize` waits for the first to
    finish, then skips as fresh what the first published. So one asset is never computed
    and published by two runs at once. (`doctor --repair` takes a turn too; readers never
    wait for a run.)"""
    from vibepiper.catalog import lock

    catalog.make_home()

    def waiting(holder: str) -> None:
        print(f"waiting for the run of {holder} to finish", file=sys.stderr, flush=True)

    with lock.hold(
        catalog.home / "run.lock",
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


def check_pools(graph: Graph, names: Iterable[str], pools: Mapping[str, int]) -> None:
    for name in names:
        pool = graph.assets[name].pool
        if pool is not None and pool not in pools:
            raise UsageError(
                f"asset '{name}' is in pool '{pool}', which the project does not define",
                f"add {pool} = N (how many may run at once) under [tool.vibepiper.pools] "
                "in pyproject.toml",
            )


@dataclass
class _Launch:
    """An asset the scheduler decided to compute, and when it started."""

    job: Job
    code: CodeVersion
    versions: dict[str, str | None]
    reasons: tuple[str, ...]
    lines: list[LogLine] = field(default_factory=list)  # what it has logged so far
    shown: int = 0  # how many of them were recorded when it timed out
    started: float = 0.0  # time.monotonic() when it was handed to the executor
    started_at: float = 0.0  # time.time(), the same moment


POLL = 0.2  # seconds between looks at the cancel flag while assets compute


class _Loop:
    """One run in progress: which assets are ready, running, finished; pools in use."""

    def __init__(
        self,
        scheduler: Scheduler,
        run: RunResult,
        names: list[str],
        current: dict[str, Current],
        recorder: Recorder,
        executor: Executor,
        pools: dict[str, int],
        force: bool,
        fail_fast: bool,
    ) -> None:
        graph = scheduler.ws.graph
        self.s = scheduler
        self.graph = graph
        self.run = run
        self.names = names
        self.current = current
        self.recorder = recorder
        self.executor = executor
        self.pools = pools
        self.force = force
        self.fail_fast = fail_fast
        self.memory = _Memory(graph, scheduler.ws.store, names)
        self.order = {name: index for index, name in enumerate(names)}
        self.mids = {name: f"{run.run_id}-{index:04d}" for index, name in enumerate(names)}
        selected = set(names)
        self.blockers = {n: sum(1 for u in graph.upstream[n] if u in selected) for n in names}
        self.ready = [n for n in names if not self.blockers[n]]
        self.launches: dict[str, _Launch] = {}
        self.running: dict[Future[TaskOutcome], str] = {}
        # Timed out but still running (a thread cannot be stopped): each keeps its worker
        # and its pool's slot until it returns.
        self.zombies: dict[Future[TaskOutcome], str] = {}
        self.in_pool: Counter[str] = Counter()
        self.line = 0  # names[:line] have been started or settled
        self.stop_reason = ""
        self.cancel = threading.Event()
        self.killed = False  # a worker was killed: it may have left a temporary file

    # -- the loop ----------------------------------------------------------------------

    def drive(self, cancel: threading.Event) -> None:
        self.cancel = cancel
        while len(self.run.results) < len(self.names) and not cancel.is_set():
            self._bury()
            self._start_ready(cancel)
            if not self.running:
                if cancel.is_set() or not (self.ready or self.zombies):
                    break
                if not self.ready or self.zombies:  # waiting for a zombie to free its slot
                    wait(list(self.zombies), timeout=POLL, return_when=FIRST_COMPLETED)
                continue
            deadlines = [d for f in self.running if (d := self._deadline(f)) is not None]
            pause = max(0.0, min([POLL, *(d - time.monotonic() for d in deadlines)]))
            done, _ = wait(list(self.running), timeout=pause, return_when=FIRST_COMPLETED)
            for future in done:
                name = self.running.pop(future)
                self._release(name)
                self._complete(name, self._outcome(name, future))
            self._expire()
        if cancel.is_set():
            self._cancel()

    def _deadline(self, future: Future[TaskOutcome]) -> float | None:
        """When the asset of `future` times out: its timeout after it began computing
        (a worker's start and its import of the project do not count)."""
        timeout = self.graph.assets[self.running[future]].timeout
        if timeout is None:
            return None
        begun = self.executor.started(future)
        return None if begun is None else begun + timeout

    def _bury(self) -> None:
        """Zombies that have returned free their slots; what they logged is kept."""
        for future, name in list(self.zombies.items()):
            if future.done():
                del self.zombies[future]
                self._release(name)
                with contextlib.suppress(Exception):
                    shown = self.launches[name].shown  # lines recorded when it timed out
                    late = future.result().logs[shown:]
                    rows = _log_rows(self.run.run_id, name, self.mids[name], late, shown)
                    self.recorder.add("logs", rows)

    def _start_ready(self, cancel: threading.Event) -> None:
        """Start (or settle) every ready asset there is room for, in dependency order."""
        progress = True
        while progress and not cancel.is_set():
            progress = False
            for name in sorted(self.ready, key=self.order.__getitem__):
                if self.stop_reason:
                    self.ready.remove(name)
                    self._complete(
                        name,
                        AssetResult(
                            name, states.BLOCKED, self.mids[name], message=self.stop_reason
                        ),
                    )
                    progress = True
                    continue
                launch = self.launches.get(name)
                if launch is None:
                    decided = self.s._prepare(
                        name, self.mids[name], self.run, self.current, self.force
                    )
                    if isinstance(decided, AssetResult):
                        self.ready.remove(name)
                        self._complete(name, decided)
                        progress = True
                        continue
                    launch = self.launches[name] = decided
                if self._room_for(name):
                    self.ready.remove(name)
                    self._submit(name, launch)
                    progress = True
                if cancel.is_set():
                    return

    def _room_for(self, name: str) -> bool:
        if self.executor.write_behind and self.running:
            # one more while an output is written, if it is the next in dependency order:
            # assets still start in the order they would one at a time
            # (and not before a finished one is settled: it may stop the run, --fail-fast)
            if (
                len(self.running) + len(self.zombies) > 1
                or any(f.done() for f in self.running)
                or name != self._next_in_line()
            ):
                return False
        elif len(self.running) + len(self.zombies) >= self.executor.workers:
            return False
        pool = self.graph.assets[name].pool
        return pool is None or self.in_pool[pool] < self.pools[pool]

    def _next_in_line(self) -> str | None:
        """The first asset, in dependency order, that has not been started or settled."""
        names, results = self.names, self.run.results
        while self.line < len(names) and (
            names[self.line] in results or self._handed_over(names[self.line])
        ):
            self.line += 1
        return names[self.line] if self.line < len(names) else None

    def _handed_over(self, name: str) -> bool:
        launch = self.launches.get(name)
        return launch is not None and launch.started > 0

    def _submit(self, name: str, launch: _Launch) -> None:
        defn = self.graph.assets[name]
        if defn.pool is not None:
            self.in_pool[defn.pool] += 1
        launch.started, launch.started_at = time.monotonic(), time.time()
        self.s.reporter.asset_started(name, states.RUNNING)
        job = launch.job
        checks = self.graph.checks.get(name, ())
        reporter, store, memory = self.s.reporter, self.s.ws.store, self.memory
        write_behind = self.executor.write_behind

        def work() -> TaskOutcome:
            def on_state(state: str) -> None:
                reporter.asset_started(name, state)

            return run_job(
                job,
                defn,
                checks,
                store,
                memory.get,
                on_state,
                launch.lines,
                write_behind=write_behind,
            )

        future = self.executor.submit(job, work, launch.lines)
        self.running[future] = name

    def _release(self, name: str) -> None:
        pool = self.graph.assets[name].pool
        if pool is not None:
            self.in_pool[pool] -= 1

    def _outcome(self, name: str, future: Future[TaskOutcome]) -> AssetResult:
        outcome = future.result()
        if not self.executor.live_logs:
            for line in outcome.logs:
                echo(line)
        if self.cancel.is_set():  # it ended after the run was cancelled: publish nothing
            self._discard(future)
            return self._stopped(self.launches[name], "cancelled", outcome.logs)
        return self.s._finish(self.launches[name], outcome, self.memory, replace=self.force)

    def _expire(self) -> None:
        """Fail the running assets whose timeout has passed; stop them if the executor can."""
        now = time.monotonic()
        for future, name in list(self.running.items()):
            deadline = self._deadline(future)
            if deadline is None or now < deadline or future.done():
                continue
            del self.running[future]
            message = f"timed out after {self.graph.assets[name].timeout:g} s"
            if self.executor.kill(future):
                self.killed = True
                self._release(name)
            else:
                self.zombies[future] = name
                future.add_done_callback(self._discard)
                message += " (its thread runs on until the function returns; output discarded)"
            launch = self.launches[name]
            launch.shown = len(launch.lines)
            # It began (its deadline counts from then): one attempt at least. How many
            # retries it made before it was stopped is known only in this process.
            stopped = self._stopped(launch, message, launch.lines[: launch.shown], attempts=1)
            self._complete(name, stopped)

    def _discard(self, future: Future[TaskOutcome]) -> None:
        """Throw away what a timed-out or cancelled asset staged after it was given up."""
        with contextlib.suppress(Exception):
            staged = future.result().staged
            if staged is not None:
                self.s.ws.store.discard(staged)

    def _stopped(
        self, launch: _Launch, message: str, logs: Iterable[Any] = (), attempts: int = 0
    ) -> AssetResult:
        return AssetResult(
            launch.job.asset,
            states.FAILED,
            launch.job.materialization_id,
            code_version=launch.code.version,
            code_parts=launch.code.parts,
            seconds=time.monotonic() - launch.started,
            started_at=launch.started_at,
            reasons=launch.reasons,
            inputs=dict(launch.versions),
            message=message,
            error=message,
            logs=tuple(logs),
            attempts=attempts,
        )

    def _complete(self, name: str, result: AssetResult) -> None:
        run = self.run
        run.results[name] = result
        self.s._record(self.recorder, run.run_id, result)
        self.memory.done(name)
        self.s.reporter.asset_finished(result)
        for down in self.graph.downstream[name]:
            if down in self.blockers:
                self.blockers[down] -= 1
                if not self.blockers[down]:
                    self.ready.append(down)
        if self.fail_fast and not result.ok and not self.stop_reason:
            self.stop_reason = f"not run: --fail-fast stopped the run after '{name}' failed"

    def _cancel(self) -> None:
        """Stop what runs (or, for threads, wait for it), recording it as cancelled."""
        self.run.cancelled = True
        for future, name in list(self.running.items()):
            if self.executor.kill(future):
                self.killed = True
                logs: Iterable[Any] = list(self.launches[name].lines)
            else:
                wait([future])
                self._discard(future)
                logs = future.result().logs
            del self.running[future]
            self._complete(name, self._stopped(self.launches[name], "cancelled", logs))

    def close(self) -> None:
        """Whatever has no final state now (cancelled, or an error of ours) gets one."""
        for future, name in list(self.running.items()):  # only after an exception of ours
            if not self.executor.kill(future):
                future.add_done_callback(self._discard)
            self.run.results.setdefault(name, self._stopped(self.launches[name], "cancelled"))
        self.executor.shutdown(wait=False)
        if self.killed:
            self.s.ws.store.clean_temp_files()  # what killed workers were writing
        for name in self.names:
            if name not in self.run.results:
                self._complete(
                    name,
                    AssetResult(
                        name,
                        states.BLOCKED,
                        self.mids[name],
                        message="not run: the run was cancelled",
                    ),
                )


class _Memory:
    """Outputs of this run kept in memory until their last consumer in the run is done."""

    def __init__(self, graph: Graph, store: ParquetStore, names: Iterable[str]) -> None:
        self.graph = graph
        self.store = store
        selected = set(names)
        self.waiting = {
            n: sum(1 for d in graph.downstream[n] if d in selected) for n in graph.assets
        }
        self.frames: dict[str, pd.DataFrame] = {}

    def keep(self, name: str, frame: pd.DataFrame) -> None:
        if self.waiting.get(name):
            self.frames[name] = frame

    def get(self, name: str, version: str) -> pd.DataFrame:
        """The data of `name` at `version`: from memory if this run made it, else the store.

        A shallow copy: under pandas' copy-on-write, a consumer that modifies its input
        cannot change what another consumer receives.
        """
        frame = self.frames.get(name)
        if frame is None:
            frame = self.store.read(self.store.path_for(name, version), name)
        return frame.copy(deep=False)

    def done(self, name: str) -> None:
        for up in self.graph.upstream[name]:
            if up in self.waiting:
                self.waiting[up] -= 1
                if self.waiting[up] <= 0:
                    self.frames.pop(up, None)
