"""`vibepiper serve`: evaluate schedules, file sensors, `automation=` and `max_age`, and
launch the runs they call for, one at a time, exactly once per tick.

Each evaluation records its ticks (with the id each run will have) in the catalog before
any run starts; a run is a `vibepiper materialize` child process that dies with the
daemon. On start, the daemon reconciles: a recorded tick whose run never started is
launched, one whose run was recorded keeps that run. So a due tick has exactly one run,
across SIGKILLs and restarts.

What the daemon reads between evaluations is cheap: a stat of each watched file, of the
catalog and of the project's definition files; it sleeps until the next schedule tick,
the next `max_age` deadline, or the next poll, whichever is first.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat as stat_kinds
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vibepiper import clock
from vibepiper.catalog import ticks as tick_log
from vibepiper.catalog.ticks import Tick
from vibepiper.definitions.schedule import Schedule
from vibepiper.errors import DefinitionError, UsageError, VibePiperError
from vibepiper.graph.selection import selection_words
from vibepiper.processes import die_with_parent, on_stop_signals
from vibepiper.text import plural
from vibepiper.versioning.data_version import file_version
from vibepiper.versioning.source_cache import Identities, Identity, file_identity

if TYPE_CHECKING:
    from vibepiper.project import Project

POLL = 1.0  # real seconds between looks at watched files and the catalog
SETTLE = 2.0  # real seconds a changed watched file must stay unchanged before it fires
FRESHNESS_SHARE = 0.9  # a max_age asset is recomputed once this share of it has passed
MISSED_GRACE = 60.0  # fake seconds: a tick due before the daemon started, by more, is missed
SERVE_LOCK = "serve.lock"
TRIGGER_LENGTH = 200  # `runs.trigger` of a run of many ticks: the first names, then "+N more"


@dataclass
class Definitions:
    """What the daemon acts on, from one load of the project."""

    project: Project
    schedules: list[Schedule]
    watches: dict[str, Path]  # source asset -> its file
    automated: dict[str, str]  # asset -> "eager" | "missing"
    aged: dict[str, timedelta]  # asset -> max_age
    files: Identities  # of the definition files, when loaded


def load(make_project: Callable[[], Project], project: Project | None = None) -> Definitions:
    """Load the project (unless given) and what `serve` acts on; a UsageError (exit 2)
    names the first schedule or watched file at fault."""
    project = project or make_project()
    schedules = project.schedules()
    watches: dict[str, Path] = {}
    for name in project.graph.order:
        defn = project.graph.assets[name]
        if defn.watch and defn.source_path is not None:
            path = project.root / defn.source_path
            _check_watchable(name, path)
            watches[name] = path
    automated = {
        n: a.automation for n, a in project.graph.assets.items() if a.automation is not None
    }
    aged = {n: a.max_age for n, a in project.graph.assets.items() if a.max_age is not None}
    files = Identities(project.definition_files())
    return Definitions(project, schedules, watches, automated, aged, files)


def _check_watchable(name: str, path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return  # its creation is a change
    except OSError as exc:
        raise DefinitionError(
            f"source '{name}': watch=True on {path}, which cannot be read: {exc.strerror}",
            "watch a file this user may read, or drop watch=True",
        ) from None
    if not stat_kinds.S_ISREG(mode):
        what = "a folder" if stat_kinds.S_ISDIR(mode) else "not a regular file"
        raise DefinitionError(
            f"source '{name}': watch=True on {path}, which is {what}, cannot be watched",
            "watch a regular file, or drop watch=True",
        )


@dataclass
class Watch:
    """A watched file: what it looked like last, and since when (monotonic time)."""

    path: Path
    first: float  # when it was first looked at
    seen: Identity | None = None
    since: float = 0.0
    pending: bool = True  # changed (or never looked at) and not yet evaluated

    @classmethod
    def start(cls, path: Path, now: float) -> Watch:
        return cls(path, now, file_identity(path), now)

    def poll(self, now: float) -> None:
        identity = file_identity(self.path)
        if identity != self.seen:
            self.seen, self.since, self.pending = identity, now, True

    def settled(self, now: float, settle: float) -> bool:
        if not self.pending or self.seen is None:
            return False
        if now - self.since >= settle:
            return True
        # a file that was already still when first seen need not be waited for
        mtime = self.seen[1] / 1e9
        return self.since == self.first and time.time() - mtime >= settle


def _content(path: Path) -> str | None:
    """What the file holds, as the source asset's data version would be (None if gone)."""
    try:
        return file_version(path)
    except OSError:
        return None


@dataclass
class Child:
    """A run in progress: a `vibepiper materialize` process."""

    run_id: str
    process: subprocess.Popen[bytes]
    trigger: str


class Daemon:
    def __init__(
        self,
        make_project: Callable[[], Project],
        *,
        once: bool = False,
        say: Callable[[str], None] = print,
        cli_args: list[str] | None = None,
        first: Project | None = None,
    ) -> None:
        self.make_project = make_project
        self.once = once
        self.say = say
        self.cli_args = cli_args or []  # the global options a run is launched with
        self.defs = load(make_project, first)
        settings = self.defs.project.settings.serve
        self.poll = _seconds(settings, "poll_seconds", POLL)
        self.settle = _seconds(settings, "settle_seconds", SETTLE)
        self.started = clock.now()
        self.stop = threading.Event()
        self.signals = 0
        self.child: Child | None = None
        self.watches: dict[str, Watch] = {}
        self.catalog_seen: Identities | None = None  # the catalog's, when last evaluated
        self.failed_runs = 0
        self.latest: dict[str, dict[str, Any]] = {}  # schedule -> its latest tick
        self.next_due: dict[str, datetime] = {}  # schedule -> when to evaluate it next
        self.deadlines: dict[str, datetime] = {}  # max_age asset -> when it is due
        self.queued = True  # ticks may be waiting for their run (known after a look)
        self._handling = False  # our signal handlers are installed
        self._watch_all()

    @property
    def catalog(self) -> Any:
        return self.defs.project.catalog

    # -- the loop ----------------------------------------------------------------------

    def serve(self) -> int:
        """Run until stopped (or one round, with `once`); the exit code."""
        catalog = self.catalog
        catalog.ensure()
        self._reconcile()
        self.latest = tick_log.latest(catalog)
        self._plan_schedules()
        self._announce()
        with self.signals_handled():
            while not self.stop.is_set():
                try:
                    self._round()
                except VibePiperError as exc:  # the catalog busy too long, say: try again
                    if self.once:
                        raise
                    self.say(f"error: {exc} (trying again in {self.poll:g} s)")
                    self.stop.wait(self.poll)
                if self.once:
                    self._drain()
                    break
                self._sleep()
            self._shut_down()
        if self.signals:
            return 130
        return 1 if self.once and self.failed_runs else 0

    def wait(self) -> int:
        """Run nothing, until stopped (serve --no-schedules: the UI alone); exit 130."""
        with self.signals_handled():
            while not self.stop.is_set():
                self.stop.wait(1.0)
        return 130

    def _round(self) -> None:
        """One evaluation: reload changed definitions, follow the run in progress, record
        the due ticks, and launch the next run."""
        self._reload_if_changed()
        self._follow_child()
        now = clock.now()
        self._evaluate_schedules(now)
        if self.child is None:
            self._evaluate_triggers(now)
        if self.child is None:
            self._launch_next()

    def _drain(self) -> None:
        """With --once: launch every queued run, one after another, and wait for each."""
        while not self.stop.is_set():
            if self.child is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.child.process.wait(timeout=0.2)
                self._follow_child()
                continue
            if not self._launch_next():
                break

    def _sleep(self) -> None:
        """Until the next due tick or deadline, or the next poll (watching, a run going)."""
        wait = self._until_next()
        if self.child is not None:
            wait = min(wait, 0.2)
        self.stop.wait(max(0.0, wait))

    def _until_next(self) -> float:
        now = clock.now()
        moments = [*self.next_due.values(), *self.deadlines.values()]
        real = min((clock.real_seconds((m - now).total_seconds()) for m in moments), default=None)
        return min(self.poll, real) if real is not None else self.poll

    # -- what is due ------------------------------------------------------------------

    def _plan_schedules(self, names: list[str] | None = None) -> None:
        """When each schedule (of `names`) is next to be looked at: its next fire time
        after its latest tick, or now if it was never seen or its cron changed."""
        now = clock.now()
        for schedule in self.defs.schedules:
            if names is not None and schedule.name not in names:
                continue
            last = self.latest.get(schedule.name)
            if last is None or last["cause"] != schedule.signature:
                self.next_due[schedule.name] = now
                continue
            after = last["scheduled_for"].replace(tzinfo=UTC)
            try:
                self.next_due[schedule.name] = next(schedule.times(after))
            except StopIteration:
                self.next_due.pop(schedule.name, None)

    def _evaluate_schedules(self, now: datetime) -> None:
        due = [s for s in self.defs.schedules if self.next_due.get(s.name, now) <= now]
        if not due:
            return
        new: list[Tick] = []
        for schedule in due:
            new += self._due(schedule, self.latest.get(schedule.name), now)
        for tick in tick_log.record(self.catalog, new):
            when = _local(tick.scheduled_for, self._zone_of(tick.schedule))
            if tick.status == "queued":
                self.queued = True
                self.say(f"tick {tick.schedule} {when}: run {tick.run_id} queued")
            elif tick.status == "skipped":
                self.say(f"tick {tick.schedule} {when}: skipped ({tick.reason})")
        self.latest = tick_log.latest(self.catalog)
        self._plan_schedules([s.name for s in due])

    def _zone_of(self, name: str) -> str:
        for schedule in self.defs.schedules:
            if schedule.name == name:
                return schedule.timezone
        return "UTC"

    def _due(self, schedule: Schedule, last: dict[str, Any] | None, now: datetime) -> list[Tick]:
        """The ticks of `schedule` that fell due since its last one, as the catch-up
        policy has them: queued (with a run id each) or skipped."""
        naive = now.astimezone(UTC).replace(tzinfo=None)
        if last is None or last["cause"] != schedule.signature:
            why = "first seen" if last is None else f"changed (was {last['cause']})"
            return [
                Tick(
                    schedule.name,
                    naive,
                    "registered",
                    reason=f"schedule {why}: {schedule.signature}; no earlier tick is replayed",
                    cause=schedule.signature,
                )
            ]
        after = last["scheduled_for"].replace(tzinfo=UTC)
        keep = schedule.max_catchup if schedule.catchup == "all" else 1
        due, count = schedule.due(after, now, keep)
        if not due:
            return []
        missed_before = self.started - timedelta(seconds=MISSED_GRACE)
        if schedule.catchup == "none":
            due = [t for t in due[-1:] if t >= missed_before]
        skipped = count - len(due)
        result = []
        if skipped:
            last_skipped = self._last_skipped(schedule, after, due[0] if due else None, now)
            why = {
                "latest": "only the latest is run (catchup = latest)",
                "all": f"only the last {schedule.max_catchup} are run (max_catchup)",
                "none": "missed ticks are not run (catchup = none)",
            }[schedule.catchup]
            result.append(
                Tick(
                    schedule.name,
                    last_skipped.astimezone(UTC).replace(tzinfo=None),
                    "skipped",
                    reason=f"{_ticks_count(skipped)} fell due since {_utc_text(after)}: {why}",
                    cause=schedule.signature,
                )
            )
        from vibepiper.execution.recorder import new_run_id

        for moment in due:
            late = moment < missed_before
            result.append(
                Tick(
                    schedule.name,
                    moment.astimezone(UTC).replace(tzinfo=None),
                    "queued",
                    new_run_id(),
                    reason="missed while serve was down; caught up" if late else "due",
                    cause=schedule.signature,
                    selection=schedule.selection,
                )
            )
        return result

    @staticmethod
    def _last_skipped(
        schedule: Schedule, after: datetime, first_run: datetime | None, now: datetime
    ) -> datetime:
        """The latest fire time after `after` that is skipped (before `first_run`)."""
        if first_run is None:
            found, _ = schedule.due(after, now, 1)
            return found[-1] if found else after
        return schedule.before(first_run, after) or after

    def _evaluate_triggers(self, now: datetime) -> None:
        """Sensors, `automation=` and `max_age`: queue a run for what calls for one."""
        monotonic = time.monotonic()
        for watch in self.watches.values():
            watch.poll(monotonic)
        settled = [n for n, w in self.watches.items() if w.settled(monotonic, self.settle)]
        catalog_moved = self.catalog_seen is None or self.catalog_seen.changed()
        if not settled and not catalog_moved and not self._deadline_passed(now):
            return
        self.catalog_seen = self._catalog_files()
        project = self.defs.project
        names = set(settled) | set(self.defs.automated) | set(self.defs.aged)
        if not names:
            return
        verdicts = project.status(project.graph.sorted(names))
        current = project.catalog.current(names | _upstream(project, self.defs.automated))
        naive = now.astimezone(UTC).replace(tzinfo=None)
        causes = tick_log.latest_causes(self.catalog)
        new: list[Tick] = []
        new += self._sensor_ticks(settled, verdicts, causes, naive)
        new += self._automation_ticks(verdicts, current, causes, naive)
        new += self._freshness_ticks(current, causes, now, naive)
        for name in settled:
            self.watches[name].pending = False
        if new:
            for tick in tick_log.record(self.catalog, new):
                self.queued = True
                self.say(f"{tick.schedule}: run {tick.run_id} queued ({tick.reason})")
            self.catalog_seen = self._catalog_files()

    def _sensor_ticks(
        self, settled: list[str], verdicts: Any, causes: dict[str, str | None], naive: datetime
    ) -> list[Tick]:
        from vibepiper.versioning.freshness import Why

        group: list[Tick] = []
        sources: list[str] = []
        for name in settled:
            verdict = verdicts.get(name)
            kinds = {c.kind for c in verdict.causes} if verdict is not None else set()
            if not kinds & {Why.SOURCE, Why.NEVER}:
                continue
            path = self.watches[name].path
            digest = _content(path)
            trigger = f"sensor:{self._relative(path)}"
            if digest is None or causes.get(trigger) == digest:
                continue  # gone again, or this content already fired
            group.append(
                Tick(trigger, naive, "queued", reason=f"{path.name} changed", cause=digest)
            )
            sources.append(name)
        return _one_run(group, " ".join(f"{name}+" for name in sources))

    def _relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.defs.project.root))
        except ValueError:
            return str(path)

    def _automation_ticks(
        self, verdicts: Any, current: Any, causes: dict[str, str | None], naive: datetime
    ) -> list[Tick]:
        from vibepiper.versioning.freshness import Why

        project = self.defs.project
        group: list[Tick] = []
        chosen: set[str] = set()  # recomputed in this run: their eager followers follow
        for name in project.graph.order:
            mode = self.defs.automated.get(name)
            verdict = verdicts.get(name)
            if mode is None or verdict is None or verdict.fresh:
                continue
            kinds = {c.kind for c in verdict.causes}
            inputs = project.graph.assets[name].inputs.values()
            versions = {u: _input_version(project.graph, current, u) for u in inputs}
            ahead = [c.asset for c in verdict.causes if c.asset in chosen]
            if mode == "missing":
                wanted = Why.NEVER in kinds
                reason = "never materialized (automation = missing)"
            else:
                changed = [c.asset for c in verdict.causes if c.kind is Why.UPSTREAM_CHANGED]
                wanted = bool(kinds & {Why.NEVER, Why.UPSTREAM_CHANGED, Why.NEW_INPUT} or ahead)
                reason = (
                    f"eager: {', '.join(map(str, changed))} has new data"
                    if changed
                    else f"eager: {', '.join(map(str, ahead))} is recomputed first, in this run"
                    if ahead
                    else "eager: never materialized"
                    if Why.NEVER in kinds
                    else "eager: a new input"
                )
            if not wanted or any(v is None and u not in chosen for u, v in versions.items()):
                continue  # nothing new, or an input not made yet: wait for it
            cause = json.dumps(sorted(versions.items()))
            trigger = f"automation:{name}"
            if causes.get(trigger) == cause and not ahead:
                continue  # already tried with exactly these inputs
            chosen.add(name)
            group.append(Tick(trigger, naive, "queued", reason=reason, cause=cause))
        return _one_run(group, " ".join(t.schedule.partition(":")[2] for t in group))

    def _freshness_ticks(
        self, current: Any, causes: dict[str, str | None], now: datetime, naive: datetime
    ) -> list[Tick]:
        from vibepiper.units import whole

        self.deadlines = {}
        group: list[Tick] = []
        for name, max_age in self.defs.aged.items():
            made = current.get(whole(name))
            if made is None:
                continue  # never made: that is for automation = "missing"
            deadline = made.finished_at.replace(tzinfo=UTC) + max_age * FRESHNESS_SHARE
            trigger = f"freshness:{name}"
            if causes.get(trigger) == made.materialization_id:
                continue  # already recomputed for this one (or tried)
            if deadline > now:
                self.deadlines[name] = deadline
                continue
            reason = f"{int(FRESHNESS_SHARE * 100)}% of max_age passed"
            group.append(
                Tick(trigger, naive, "queued", reason=reason, cause=made.materialization_id)
            )
        return _one_run(group, " ".join(t.schedule.partition(":")[2] for t in group), force=True)

    def _deadline_passed(self, now: datetime) -> bool:
        return any(d <= now for d in self.deadlines.values())

    def _catalog_files(self) -> Identities:
        path = self.catalog.path
        return Identities([path, path.with_name(path.name + ".wal")])

    # -- launching --------------------------------------------------------------------

    def _queued(self) -> list[dict[str, Any]]:
        return [t for t in tick_log.waiting(self.catalog) if t["status"] == "queued"]

    def _launch_next(self) -> bool:
        """Start the run of the oldest queued tick; whether one was started (or settled)."""
        if not self.queued:
            return False
        queued = self._queued()
        if not queued:
            self.queued = False
            return False
        run_id = queued[0]["run_id"]
        mine = [t for t in queued if t["run_id"] == run_id]
        if queued[0]["run_status"] == "running":
            return False  # a run of an earlier daemon that is still going: wait for it
        if queued[0]["run_status"] is not None:  # its run was recorded: it had its run
            tick_log.finished(self.catalog, run_id, _ended(queued[0]["run_status"]))
            return True
        trigger = _trigger([t["schedule"] for t in mine])
        selection = selection_words(mine[0]["selection"] or "")
        if selection is None:
            tick_log.finished(self.catalog, run_id, "failed", "its selection is not valid")
            return True
        select, exclude = selection
        args = [sys.executable, "-m", "vibepiper", *self.cli_args, "materialize"]
        args += ["--trigger", trigger, "--run-id", run_id]
        args += ["--force"] if mine[0]["force"] else []
        for word in exclude:
            args += ["--exclude", word]
        args += ["--", *select]
        tick_log.launched(self.catalog, run_id)
        self.say(f"run {run_id} started ({trigger})")
        try:
            process = subprocess.Popen(
                args,
                cwd=self.defs.project.root,
                start_new_session=True,  # a Ctrl-C reaches the daemon, which cancels the run
                preexec_fn=die_with_parent(os.getpid()),
            )
        except OSError as exc:  # no process could be started (out of memory, say)
            why = f"its run could not be started: {exc.strerror or exc}"
            tick_log.finished(self.catalog, run_id, "failed", why)
            self.failed_runs += 1
            self.say(f"run {run_id} failed ({trigger}): {why}")
            return True
        self.child = Child(run_id, process, trigger)
        return True

    def _follow_child(self) -> None:
        """Once the run in progress has ended, record its end in its ticks. A run that a
        stop cancelled before it recorded itself never started: its ticks are queued
        again, for the next serve (as after a SIGKILL)."""
        child = self.child
        if child is None or child.process.poll() is None:
            return
        code = child.process.returncode
        found = self.catalog.fetch("SELECT status FROM runs WHERE run_id = ?", [child.run_id])
        if found:
            status = _ended(found[0]["status"])
            tick_log.finished(self.catalog, child.run_id, status)
        elif self.signals:
            status = "queued again"
            tick_log.requeue(self.catalog, child.run_id)
        else:
            status = "failed"
            tick_log.finished(
                self.catalog, child.run_id, status, f"the run did not start (exit {code})"
            )
        self.child = None  # (only now: if the catalog was busy, the next round tries again)
        if status not in ("succeeded", "queued again"):
            self.failed_runs += 1
        self.say(f"run {child.run_id} {status} ({child.trigger})")

    # -- start and stop ---------------------------------------------------------------

    def _reconcile(self) -> None:
        """After a crash: runs whose process is gone are abandoned; a tick whose run was
        recorded keeps it; a tick whose run never started stays queued, to be launched."""
        self.catalog.abandon_dead_runs()
        for tick in tick_log.waiting(self.catalog):
            status = tick["run_status"]
            if status is not None and status != "running":
                tick_log.finished(self.catalog, tick["run_id"], _ended(status))
            elif status is None and tick["status"] == "launched":
                tick_log.requeue(self.catalog, tick["run_id"])

    def _announce(self) -> None:
        d = self.defs
        parts = [plural(len(d.schedules), "schedule"), plural(len(self.watches), "watched file")]
        parts += [plural(len(d.automated), "automated asset")]
        parts += [plural(len(d.aged), "asset") + " with max_age"]
        self.say(f"serving {d.project.root.name}: {', '.join(parts)}")

    def _watch_all(self) -> None:
        old = self.watches
        self.watches = {}
        now = time.monotonic()
        for name, path in self.defs.watches.items():
            known = old.get(name)
            if known is not None and known.path == path:
                self.watches[name] = known
                continue
            self.watches[name] = Watch.start(path, now)

    def _reload_if_changed(self) -> None:
        if not self.defs.files.changed():
            return
        try:
            self.defs = load(self.make_project)
        except VibePiperError as exc:
            self.say(f"error: {exc} (keeping the definitions loaded before)")
            self.defs.files = Identities(self.defs.files.paths)
            return
        self.say("definitions reloaded")
        self.catalog_seen = None
        self._watch_all()
        self.next_due = {}
        self._plan_schedules()

    @contextlib.contextmanager
    def signals_handled(self) -> Any:
        """Ctrl-C and SIGTERM stop the daemon for the block (a second one kills the run in
        progress); within it, `serve` and `wait` keep these handlers."""
        if self._handling:
            yield
            return

        def handle(signum: int, frame: Any) -> None:
            self.signals += 1
            self.stop.set()
            child = self.child
            if self.signals > 1 and child is not None:
                with contextlib.suppress(OSError):
                    child.process.kill()

        self._handling = True
        try:
            with on_stop_signals(handle):
                yield
        finally:
            self._handling = False

    def _shut_down(self) -> None:
        """Stop: a run in progress is cancelled (as Ctrl-C cancels `materialize`)."""
        child = self.child
        if child is None:
            return
        if self.signals:
            self.say(f"stopping: cancelling run {child.run_id}")
            with contextlib.suppress(OSError):
                child.process.send_signal(signal.SIGTERM)
        while child.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=0.2)
        self._follow_child()


def _one_run(group: list[Tick], select: str, force: bool = False) -> list[Tick]:
    """The ticks of `group`, all launching one run (of `select`)."""
    if not group:
        return []
    from vibepiper.execution.recorder import new_run_id

    run_id = new_run_id()
    return [
        Tick(
            t.schedule,
            t.scheduled_for,
            t.status,
            run_id,
            t.reason,
            t.cause,
            select,
            force,
        )
        for t in group
    ]


def _upstream(project: Project, automated: dict[str, str]) -> set[str]:
    return {u for n in automated for u in project.graph.assets[n].inputs.values()}


def _trigger(names: list[str]) -> str:
    """`runs.trigger` of a run launched by these ticks: `schedule:NAME`, or a trigger's
    name (several of one kind: `automation:a,b`)."""
    if len(names) == 1:
        return names[0] if ":" in names[0] else f"schedule:{names[0]}"  # (a trigger's name)
    kind = names[0].partition(":")[0]
    text = f"{kind}:"
    for i, name in enumerate(names):
        part = name.partition(":")[2]
        if len(text) + len(part) > TRIGGER_LENGTH:  # the ticks of the run name them all
            return f"{text}+{len(names) - i} more"
        text += ("," if i else "") + part
    return text


def _ended(run_status: str) -> str:
    return run_status if run_status in ("succeeded", "failed", "cancelled") else "abandoned"


def _seconds(settings: Any, key: str, default: float) -> float:
    if not isinstance(settings, dict):
        raise UsageError("[tool.vibepiper.serve] is not a table", "write it as a table")
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise UsageError(
            f"[tool.vibepiper.serve] {key} = {value!r} is not valid",
            "give a number of seconds, more than 0 and at most 3600",
        )
    return float(value)


def _local(moment: datetime, zone: str) -> str:
    from zoneinfo import ZoneInfo

    return moment.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).isoformat(timespec="minutes")


def _ticks_count(count: int) -> str:
    from vibepiper.definitions.schedule import COUNT_LIMIT

    return f"{count:,} ticks or more" if count >= COUNT_LIMIT else plural(count, "tick")


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@contextlib.contextmanager
def serve_lock(home: Path) -> Any:
    """One `serve` per project: a second is refused (exit 2), naming the holder. (The
    catalog's own lock, taken without waiting, on a file of its own.)"""
    from vibepiper.catalog import lock
    from vibepiper.errors import CatalogBusyError

    home.mkdir(parents=True, exist_ok=True)
    path = home / SERVE_LOCK
    try:
        with lock.hold(path, exclusive=True, timeout=0, what="vibepiper serve"):
            yield
    except CatalogBusyError:
        raise UsageError(
            f"vibepiper serve is already running for this project: "
            f"{lock.describe_holder(path)} holds {path}",
            "stop that one first (Ctrl-C or SIGTERM), or use it",
        ) from None


def _input_version(graph: Any, current: Any, name: str) -> str | None:
    """The data version of input `name` as an eager asset sees it: its own, or for a
    partitioned input one combined from every partition that has data (None: none)."""
    from vibepiper.units import whole
    from vibepiper.versioning.partitioning import combine

    if graph.assets[name].partitions is None:
        return getattr(current.get(whole(name)), "data_version", None)
    pairs = sorted((u.partition, c.data_version) for u, c in current.items() if u.asset == name)
    return combine(pairs) if pairs else None
