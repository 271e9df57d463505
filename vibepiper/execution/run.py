"""A run: the one owner of a materialization, from its plan to its last catalog row.

`materialize` takes the project's run turn, reads the catalog's current state, plans the
selection (`versioning.planner`) and hands the plan to a `Run`. The run starts each unit
once everything it depends on has finished, on its executor; settles its decision (the
plan's, or judged again when it waited on units this run computed); publishes or rejects
what was computed; and records every outcome. It is the only part of a run that writes to
the catalog, through a `Recorder` that batches rows and writes them at most about once a
second (and at the end), so a run costs a few transactions rather than one per asset,
while readers still see its progress.
"""

from __future__ import annotations

import contextlib
import heapq
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from vibepiper.catalog.catalog import utcnow
from vibepiper.errors import StoreError
from vibepiper.execution import states
from vibepiper.execution.executors import Executor, InProcessExecutor
from vibepiper.execution.launch import Launch
from vibepiper.execution.logs import echo
from vibepiper.execution.memory import FrameCache
from vibepiper.execution.recorder import (
    Recorder,
    RunNotRecorded,
    log_rows,
    new_run_id,
    not_recorded,
    run_row,
)
from vibepiper.execution.reporter import Reporter, SilentReporter
from vibepiper.execution.states import AssetResult, RunResult
from vibepiper.execution.task import Job, TaskOutcome, run_job
from vibepiper.execution.turns import cancelled_by_signals, run_turn
from vibepiper.execution.workspace import Workspace, check_pools, plan
from vibepiper.graph.graph import Graph
from vibepiper.processes import remove_dead_temp_dirs
from vibepiper.units import Unit
from vibepiper.versioning.partitioning import current_keys, in_order
from vibepiper.versioning.partitioning import reads as reads_of
from vibepiper.versioning.planner import (
    Action,
    Decision,
    Plan,
    PlanOptions,
    input_versions,
    settle,
)

# Imports the code of the named assets where a snapshot stood in for it: the workspace
# with it, or None if it was there already.
CodeLoader = Callable[[list[str]], Workspace | None]


@dataclass(frozen=True)
class RunOptions:
    """How a run goes, fixed when it starts."""

    force: bool = False  # compute the selection even if it is fresh
    fail_fast: bool = False  # after the first failure, start nothing more
    selection: str = ""  # as the user typed it, for the `runs` table
    pools: Mapping[str, int] = field(default_factory=dict)  # pool -> how many at once
    signals: bool = False  # Ctrl-C and SIGTERM cancel the run (a second one exits at once)
    trigger: str = "manual"  # what started it, for `runs.trigger` (SPEC §8)
    run_id: str | None = None  # chosen before it starts (by `serve`), else a new one
    # of each partitioned asset, the partitions to run (None: all up to now)
    keys: Mapping[str, tuple[str, ...]] | None = None


def materialize(
    ws: Workspace,
    names: list[str],
    options: RunOptions = RunOptions(),
    *,
    reporter: Reporter | None = None,
    executor: Executor | None = None,
    cancel: threading.Event | None = None,
    load_code: CodeLoader | None = None,
) -> RunResult:
    """Run `names` (in dependency order): each asset starts once everything it depends on
    has finished, on `executor` (default: in this thread, one at a time), with at most
    `pools[p]` assets of pool `p` computing at once. Setting `cancel` stops the run:
    nothing more starts, what runs is stopped (or, on threads, left to end) and recorded
    as failed, "cancelled". `load_code(names)` is called if the plan computes anything and
    the workspace's graph was read (at least partly) from a snapshot: it imports the code
    of `names` (those the run will compute or validate; again later for one whose decision
    waited on its inputs), or the whole project's, and gives the workspace with it (None:
    nothing needed importing)."""
    check_pools(ws.graph, names, options.pools)
    executor = executor or InProcessExecutor()
    with run_turn(ws.catalog):
        current = ws.catalog.current()  # no other run can change it while this one runs
        the_plan = plan(ws, names, PlanOptions(force=options.force), current, options.keys)
        if load_code is not None and the_plan.computes:
            ws = load_code(the_plan.needs_code()) or ws
        else:
            load_code = None
        run = Run(ws, the_plan, options, reporter or SilentReporter(), executor, load_code)
        return run.execute(cancel or threading.Event())


POLL = 0.2  # seconds between looks at the cancel flag while assets compute


class Run:
    """One run in progress: which units are ready, running, finished; pools in use."""

    def __init__(
        self,
        ws: Workspace,
        plan: Plan,
        options: RunOptions,
        reporter: Reporter,
        executor: Executor,
        load_code: CodeLoader | None = None,
    ) -> None:
        graph = ws.graph
        self.ws, self.graph, self.plan, self.options = ws, graph, plan, options
        self.load_code = load_code
        self.reporter, self.executor = reporter, executor
        self.result = RunResult(options.run_id or new_run_id())
        self.recorder = Recorder(ws.catalog, before_write=ws.store.sync)
        self.units = list(plan.units)
        self.order = {unit: index for index, unit in enumerate(self.units)}
        self.mids = {u: f"{self.result.run_id}-{i:04d}" for i, u in enumerate(self.units)}
        # the units of this run each unit comes after (what it reads of them, what its
        # checks read), and the other way round
        self.before = _before(graph, self.units)
        self.after: dict[Unit, list[Unit]] = {}
        for unit, ups in self.before.items():
            for up in ups:
                self.after.setdefault(up, []).append(unit)
        # A partition's frame is kept in memory for the partitions that read it (they run
        # soon after); an asset that reads many partitions reads them from the store, so
        # that a long backfill does not hold every partition in memory.
        self.memory = FrameCache(
            ws.store,
            {u: sum(1 for d in r if d.partition or not u.partition) for u, r in self.after.items()},
        )
        # the partitions that have data, by asset
        self.present = current_keys(graph, plan.current, plan.observed.now)
        self.blockers = {u: len(self.before[u]) for u in self.units}
        self.ready = [u for u in self.units if not self.blockers[u]]  # not yet prepared
        # prepared, waiting for room: a heap by position in dependency order
        self.queued: list[tuple[int, Unit]] = []
        self.launches: dict[Unit, Launch] = {}
        self.running: dict[Future[TaskOutcome], Unit] = {}
        # Timed out but still running (a thread cannot be stopped): each keeps its worker
        # and its pool's slot until it returns.
        self.zombies: dict[Future[TaskOutcome], Unit] = {}
        self.in_pool: Counter[str] = Counter()
        self.line = 0  # units[:line] have been started or settled
        self.stop_reason = ""
        self.cancel = threading.Event()
        self.killed = False  # a worker was killed: it may have left a temporary file

    def execute(self, cancel: threading.Event) -> RunResult:
        """Run the plan to the end (or until `cancel` is set); record everything."""
        ws, run = self.ws, self.result
        self.cancel = cancel
        # A run that writes nothing leaves others' leftovers be.
        ticket = ws.store.begin_writing() if self.plan.computes else None
        remove_dead_temp_dirs(ws.catalog.home)  # e.g. the fork server's of a killed run
        self.recorder.add(
            "runs",
            [
                run_row(
                    run.run_id,
                    self.options.selection,
                    status="running",
                    trigger=self.options.trigger,
                )
            ],
        )
        if self.plan.computes:  # shown as running at once (one that computes nothing is
            self.recorder.start()  # recorded by its one write at the end)
        self.reporter.run_started(run.run_id, [str(u) for u in self.units])
        signals = self.options.signals
        failure: Exception | None = None
        try:
            with cancelled_by_signals(cancel, self.executor) if signals else _nothing():
                self._drive()
        finally:
            self._close()
            # The ticket stays if a thread that could not be stopped may still write, or
            # if cleaning up fails: then the next run that writes looks everywhere.
            if ticket is not None and all(f.done() for f in self.running):
                with contextlib.suppress(OSError, StoreError):
                    ws.store.end_writing(ticket, (u.asset for u in self.launches))
            finished = {"run_id": run.run_id, "status": run.status, "finished_at": utcnow()}
            self.recorder.add("run_updates", [finished])
            try:
                self.recorder.flush()
            except Exception as exc:  # raised below, unless an error of ours is on its way
                failure = exc
        if failure is not None:
            raise self._not_recorded(failure) from failure
        self.reporter.run_finished(run)
        return run

    # -- the loop ----------------------------------------------------------------------

    def _drive(self) -> None:
        cancel = self.cancel
        while len(self.result.results) < len(self.units) and not cancel.is_set():
            self._bury()
            self._start_ready()
            if not self.running:
                waiting = self.ready or self.queued
                if cancel.is_set() or not (waiting or self.zombies):
                    break
                if not waiting or self.zombies:  # waiting for a zombie to free its slot
                    wait(list(self.zombies), timeout=POLL, return_when=FIRST_COMPLETED)
                continue
            deadlines = [d for f in self.running if (d := self._deadline(f)) is not None]
            pause = max(0.0, min([POLL, *(d - time.monotonic() for d in deadlines)]))
            done, _ = wait(list(self.running), timeout=pause, return_when=FIRST_COMPLETED)
            for future in done:
                unit = self.running.pop(future)
                self._release(unit)
                self._complete(unit, self._outcome(unit, future))
            self._expire()
        if cancel.is_set():
            self._cancel()

    def _deadline(self, future: Future[TaskOutcome]) -> float | None:
        """When the unit of `future` times out: its timeout after it began computing
        (a worker's start and its import of the project do not count)."""
        timeout = self.graph.assets[self.running[future].asset].timeout
        if timeout is None:
            return None
        begun = self.executor.started(future)
        return None if begun is None else begun + timeout

    def _bury(self) -> None:
        """Zombies that have returned free their slots; what they logged is kept."""
        for future, unit in list(self.zombies.items()):
            if future.done():
                del self.zombies[future]
                self._release(unit)
                with contextlib.suppress(Exception):
                    shown = self.launches[unit].shown  # lines recorded when it timed out
                    late = future.result().logs[shown:]
                    mid = self.mids[unit]
                    rows = log_rows(self.result.run_id, unit.asset, mid, late, shown)
                    self.recorder.add("logs", rows)

    def _start_ready(self) -> None:
        """Settle or start every ready unit there is room for, in dependency order.

        Units that became ready since the last call are prepared once (which may settle
        them: skipped, blocked); prepared ones wait in `queued`, in order, and are looked
        at again only while there is room for one: a wide graph does not cost a walk of
        every waiting unit per finished one."""
        cancel = self.cancel
        order = self.order.__getitem__
        queue = self.queued  # a heap of (position in dependency order, unit)
        progress = True
        while progress and not cancel.is_set():
            progress = False
            new, self.ready = sorted(self.ready, key=order), []
            kept: list[Unit] = []  # prepared, still without room
            ni = 0
            while ni < len(new) or queue:
                visit_queue = bool(queue) and (bool(self.stop_reason) or self._any_room())
                if visit_queue and (ni == len(new) or queue[0][0] < order(new[ni])):
                    unit = heapq.heappop(queue)[1]
                elif ni < len(new):
                    unit, ni = new[ni], ni + 1
                else:
                    break  # no room: the rest of the queue waits
                if self.stop_reason:
                    blocked = AssetResult(
                        unit.asset,
                        states.BLOCKED,
                        self.mids[unit],
                        message=self.stop_reason,
                        partition=unit.partition,
                    )
                    self._complete(unit, blocked)
                    progress = True
                    continue
                launch = self.launches.get(unit)
                if launch is None:
                    decided = self._prepare(unit)
                    if isinstance(decided, AssetResult):
                        self._complete(unit, decided)
                        progress = True
                        continue
                    launch = self.launches[unit] = decided
                if self._room_for(unit):
                    self._submit(unit, launch)
                    progress = True
                else:
                    kept.append(unit)
                if cancel.is_set():
                    kept += new[ni:]
                    break
            for unit in kept:
                heapq.heappush(queue, (order(unit), unit))

    def _any_room(self) -> bool:
        """Whether some unit could start now (`_room_for` says which)."""
        busy = len(self.running) + len(self.zombies)
        if self.executor.write_behind and self.running:
            return busy <= 1 and not any(f.done() for f in self.running)
        return busy < self.executor.workers

    def _room_for(self, unit: Unit) -> bool:
        if not self._any_room():
            return False
        if self.executor.write_behind and self.running and unit != self._next_in_line():
            # one more while an output is written, if it is the next in dependency order:
            # units still start in the order they would one at a time
            # (and not before a finished one is settled: it may stop the run, --fail-fast)
            return False
        pool = self.graph.assets[unit.asset].pool
        return pool is None or self.in_pool[pool] < self.options.pools[pool]

    def _next_in_line(self) -> Unit | None:
        """The first unit, in dependency order, that has not been started or settled."""
        units, results = self.units, self.result.results
        while self.line < len(units) and (
            str(units[self.line]) in results or self._handed_over(units[self.line])
        ):
            self.line += 1
        return units[self.line] if self.line < len(units) else None

    def _handed_over(self, unit: Unit) -> bool:
        launch = self.launches.get(unit)
        return launch is not None and launch.started > 0

    # -- one unit ----------------------------------------------------------------------

    def _prepare(self, unit: Unit) -> AssetResult | Launch:
        """Decide what to do with `unit` now that everything it depends on has finished:
        it is blocked, cannot run, is fresh (skipped), or is to be computed (a `Launch`)."""
        graph, name, mid = self.graph, unit.asset, self.mids[unit]
        results, part = self.result.results, unit.partition
        bad = [u for u in self.before[unit] if _state(results, str(u)) in states.BLOCKING_STATES]
        if bad:
            why = results[str(bad[0])].state.replace("_", " ")
            return AssetResult(
                name,
                states.BLOCKED,
                mid,
                message=f"blocked: upstream {bad[0]} {why}",
                partition=part,
                blocked_by=str(bad[0]),
            )
        decided = self.plan.decisions[unit]
        if decided.action is Action.SKIP and not decided.provisional:
            return self._skipped(unit)  # fresh, whatever this run does
        defn = graph.assets[name]
        versions, checked = input_versions(graph, unit, self._version_of, self._present)
        missing = [u for u, v in versions.items() if v is None]
        if missing:
            read = reads_of(graph, unit, missing[0])
            what = str(read[0]) if read is not None and len(read) == 1 else missing[0]
            message = (
                f"input {what} has never been materialized; run `vibepiper materialize +{name}`"
            )
            if read and not self._exists(read[-1]):
                message = f"input {read[-1]} does not exist yet: its window has not ended"
            return AssetResult(name, states.FAILED, mid, message=message, partition=part)
        decision = settle(self.plan, graph, unit, versions, checked, utcnow())
        code = self.plan.observed.codes[name]
        if decision.action is Action.FAIL:
            error = self.plan.observed.errors[unit]
            return AssetResult(
                name, states.FAILED, mid, message=str(error), error=str(error), partition=part
            )
        force = self.options.force
        if decision.action is Action.SKIP:
            return self._skipped(unit)
        if self.load_code is not None:
            loaded = self.load_code([name])  # a decision that waited on its inputs, say
            if loaded is not None:
                self.ws, self.graph = loaded, loaded.graph
                graph, defn = loaded.graph, loaded.graph.assets[name]
        readable = {
            up: v
            for up in graph.upstream[name]
            if graph.assets[up].partitions is None and (v := self._version_of(Unit(up)))
        }
        whole = {p: (up, str(versions[up])) for p, up in defn.inputs.items()}
        parts = {}
        for param, up in defn.inputs.items():
            if graph.assets[up].partitions is not None:
                del whole[param]
                parts[param] = self._parts_read(unit, up)
        job = Job(
            asset=name,
            materialization_id=mid,
            run_id=self.result.run_id,
            project_dir=self.ws.project_dir,
            inputs=whole,
            versions=readable,
            data_version=self.plan.observed.sources.get(unit) if defn.is_source else None,
            timeout=defn.timeout,
            code_version=code.version,
            code_parts=code.parts,
            # only what its checks read changed: validate its current data again
            revalidate=self._revalidate(unit, decision) if not force else None,
            config=dict(self.ws.config.get(name, {})),
            partition=part,
            parts=parts,
            engine=self.ws.engine,
        )
        return Launch(job, code, versions, tuple(str(c) for c in decision.causes))

    def _skipped(self, unit: Unit) -> AssetResult:
        """`unit` is fresh: its current data is kept."""
        cur, code = self.plan.current[unit], self.plan.observed.codes[unit.asset]
        return AssetResult(
            unit.asset,
            states.SKIPPED,
            self.mids[unit],
            data_version=cur.data_version,
            code_version=code.version,
            code_parts=code.parts,
            row_count=cur.row_count,
            message="fresh",
            partition=unit.partition,
        )

    def _exists(self, unit: Unit) -> bool:
        """Whether a partition's window has ended (a whole asset's unit always exists)."""
        parts = self.graph.assets[unit.asset].partitions
        if parts is None or not unit.partition:
            return True
        return parts.has_ended(unit.partition, self.plan.observed.now)

    def _parts_read(self, unit: Unit, up: str) -> tuple[tuple[str, str], ...]:
        """The (key, data version) of each partition of `up` that `unit` reads and that
        has data, in key order."""
        read = reads_of(self.graph, unit, up)
        keys = [u.partition for u in read] if read is not None else self._present(up)
        return tuple((k, v) for k in keys if (v := self._version_of(Unit(up, k))) is not None)

    def _present(self, up: str) -> list[str]:
        """The partitions of `up` that have data: current ones and those this run made."""
        keys = set(self.present.get(up, ()))
        for unit in self.units:
            if unit.asset == up and self._version_of(unit) is not None:
                keys.add(unit.partition)
        return in_order(self.graph, up, keys)

    def _revalidate(self, unit: Unit, decision: Decision) -> str | None:
        if decision.action is not Action.RECHECK:
            return None
        return self.plan.current[unit].data_version

    def _version_of(self, unit: Unit) -> str | None:
        """The data version of `unit` this run reads: what it made or kept of it here,
        else its current one (None: it has none)."""
        result = self.result.results.get(str(unit))
        if result is not None and result.state in (states.SUCCEEDED, states.SKIPPED):
            return result.data_version
        cur = self.plan.current.get(unit)
        return cur.data_version if cur is not None else None

    def _submit(self, unit: Unit, launch: Launch) -> None:
        defn = self.graph.assets[unit.asset]
        if defn.pool is not None:
            self.in_pool[defn.pool] += 1
        launch.started, launch.started_at = time.monotonic(), time.time()
        name, label = unit.asset, str(unit)
        self.reporter.asset_started(label, states.RUNNING)
        job = launch.job
        checks = self.graph.checks.get(name, ())
        reporter, store, memory = self.reporter, self.ws.store, self.memory
        write_behind = self.executor.write_behind

        def work() -> TaskOutcome:
            def on_state(state: str) -> None:
                reporter.asset_started(label, state)

            return run_job(
                job, defn, checks, store, memory.get, on_state, launch.lines,
                write_behind=write_behind,
            )  # fmt: skip

        future = self.executor.submit(job, work, launch.lines)
        self.running[future] = unit

    def _release(self, unit: Unit) -> None:
        pool = self.graph.assets[unit.asset].pool
        if pool is not None:
            self.in_pool[pool] -= 1

    def _outcome(self, unit: Unit, future: Future[TaskOutcome]) -> AssetResult:
        outcome = future.result()
        if not self.executor.live_logs:
            for line in outcome.logs:
                echo(line)
        if self.cancel.is_set():  # it ended after the run was cancelled: publish nothing
            self._discard(future)
            return self.launches[unit].stopped("cancelled", outcome.logs, cancelled=True)
        return self._finish(self.launches[unit], outcome)

    def _finish(self, launch: Launch, outcome: TaskOutcome) -> AssetResult:
        """Publish a computed unit, or keep its output as rejected, and say how it ended."""
        result = launch.result(outcome, self.graph.check_reads.get(launch.job.asset, {}))
        staged = outcome.staged
        if result.state == states.CHECK_FAILED and staged is not None:
            self.ws.store.reject(staged, launch.job.materialization_id)
        elif result.state == states.SUCCEEDED:
            if staged is not None:
                try:
                    self.ws.store.publish(staged, replace=self.options.force)
                except StoreError as exc:  # an object store found other data in its place
                    self.ws.store.discard(staged)
                    return launch.stopped(str(exc), outcome.logs, attempts=1)
            if outcome.frame is not None:
                self.memory.keep(launch.job.unit, outcome.frame)
        return result

    def _expire(self) -> None:
        """Fail the running units whose timeout has passed; stop them if the executor can."""
        now = time.monotonic()
        for future, unit in list(self.running.items()):
            deadline = self._deadline(future)
            if deadline is None or now < deadline or future.done():
                continue
            del self.running[future]
            message = f"timed out after {self.graph.assets[unit.asset].timeout:g} s"
            if self.executor.kill(future):
                self.killed = True
                self._release(unit)
            else:
                self.zombies[future] = unit
                future.add_done_callback(self._discard)
                message += " (its thread runs on until the function returns; output discarded)"
            launch = self.launches[unit]
            launch.shown = len(launch.lines)
            # It began (its deadline counts from then): one attempt at least. How many
            # retries it made before it was stopped is known only in this process.
            stopped = launch.stopped(message, launch.lines[: launch.shown], attempts=1)
            self._complete(unit, stopped)

    def _discard(self, future: Future[TaskOutcome]) -> None:
        """Throw away what a timed-out or cancelled unit staged after it was given up."""
        with contextlib.suppress(Exception):
            staged = future.result().staged
            if staged is not None:
                self.ws.store.discard(staged)

    def _complete(self, unit: Unit, result: AssetResult) -> None:
        self.result.results[str(unit)] = result
        config = self.graph.assets[unit.asset].config
        if not (unit.partition and result.state == states.SKIPPED):
            # a fresh partition is not recorded again: a run over many partitions that
            # finds most of them fresh writes rows only for those it computed
            self.recorder.record(self.result.run_id, result, config, unit.partition)
        self.memory.done(self.before[unit])
        self.reporter.asset_finished(result)
        for after in self.after.get(unit, ()):
            self.blockers[after] -= 1
            if not self.blockers[after]:
                self.ready.append(after)
        if self.options.fail_fast and not result.ok and not self.stop_reason:
            self.stop_reason = f"not run: --fail-fast stopped the run after '{unit}' failed"

    def _cancel(self) -> None:
        """Stop what runs (or, for threads, wait for it), recording it as cancelled."""
        self.result.cancelled = True
        for future, unit in list(self.running.items()):
            if self.executor.kill(future):
                self.killed = True
                logs: Iterable[Any] = list(self.launches[unit].lines)
            else:
                wait([future])
                self._discard(future)
                logs = future.result().logs
            del self.running[future]
            self._complete(unit, self.launches[unit].stopped("cancelled", logs, cancelled=True))

    def _close(self) -> None:
        """Whatever has no final state now (cancelled, or an error of ours) gets one."""
        results = self.result.results
        for future, unit in list(self.running.items()):  # only after an exception of ours
            if not self.executor.kill(future):
                future.add_done_callback(self._discard)
            results.setdefault(str(unit), self.launches[unit].stopped("cancelled"))
        self.executor.shutdown(wait=False)
        if self.killed:
            self.ws.store.clean_temp_files()  # what killed workers were writing
        for unit in self.units:
            if str(unit) not in results:
                message = "not run: the run was cancelled"
                blocked = AssetResult(
                    unit.asset,
                    states.BLOCKED,
                    self.mids[unit],
                    message=message,
                    partition=unit.partition,
                )
                self._complete(unit, blocked)

    def _not_recorded(self, cause: Exception) -> RunNotRecorded:
        """The run's last catalog write failed: name what it published that is not
        recorded."""
        recorded = self.recorder.recorded
        unrecorded = [
            name
            for name, result in self.result.results.items()
            if result.state == states.SUCCEEDED and result.materialization_id not in recorded
        ]
        return not_recorded(self.result, unrecorded, cause)


def _state(results: Mapping[str, AssetResult], name: str) -> str | None:
    result = results.get(name)
    return None if result is None else result.state


def _before(graph: Graph, units: list[Unit]) -> dict[Unit, tuple[Unit, ...]]:
    """For each of `units`, the units among them it must come after: the partitions (or
    whole assets) it reads of each asset upstream of it."""
    planned = set(units)
    by_asset: dict[str, list[Unit]] = {}
    for unit in units:
        by_asset.setdefault(unit.asset, []).append(unit)
    before: dict[Unit, tuple[Unit, ...]] = {}
    for unit in units:
        found: list[Unit] = []
        for up in graph.upstream[unit.asset]:
            if up not in by_asset:
                continue
            read = reads_of(graph, unit, up)
            if read is None:
                found += by_asset[up]
            else:
                found += [u for u in read if u in planned]
        before[unit] = tuple(dict.fromkeys(found))
    return before


@contextlib.contextmanager
def _nothing() -> Any:
    yield
