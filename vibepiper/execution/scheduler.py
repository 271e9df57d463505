"""The one scheduling loop: for each selected asset in dependency order, decide whether it
is blocked or fresh, else compute it, then publish it and record the outcome.

The scheduler is the only part of a run that writes to the catalog. It batches rows and
writes them at most about once a second (and at the end), so a run costs a few
transactions rather than one per asset, while readers still see its progress.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vibepiper.catalog.catalog import Catalog
from vibepiper.definitions.context import Context
from vibepiper.errors import AssetNotMaterializedError, StoreError, VibePiperError
from vibepiper.execution import states
from vibepiper.execution.recorder import Recorder
from vibepiper.execution.states import AssetResult, RunResult
from vibepiper.execution.task import TaskOutcome, run_task
from vibepiper.execution.verdicts import Judge
from vibepiper.graph.graph import Graph
from vibepiper.storage.parquet_store import ParquetStore
from vibepiper.text import plural
from vibepiper.validation.outcome import outcome_row
from vibepiper.versioning.fingerprint import CodeVersion
from vibepiper.versioning.freshness import Current, Verdict

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
        self, names: list[str], *, force: bool = False, fail_fast: bool = False, selection: str = ""
    ) -> RunResult:
        ws = self.ws
        ws.store.clean_temp_files()
        run = RunResult(new_run_id())
        recorder = Recorder(ws.catalog)
        recorder.add(
            "runs",
            [run_row(run.run_id, selection, status="running")],
        )
        current = recorder.start()
        self.reporter.run_started(run.run_id, names)
        memory = _Memory(ws.graph, ws.store, names)
        stop_reason = ""
        try:
            for index, name in enumerate(names):
                mid = f"{run.run_id}-{index:04d}"
                if stop_reason:
                    result = AssetResult(name, states.BLOCKED, mid, message=stop_reason)
                else:
                    result = self._one(name, mid, run, current, memory, force)
                run.results[name] = result
                self._record(recorder, run.run_id, result)
                memory.done(name)
                self.reporter.asset_finished(result)
                if fail_fast and not result.ok and not stop_reason:
                    stop_reason = f"not run: --fail-fast stopped the run after '{name}' failed"
        finally:
            for name in names:  # interrupted: never leave an asset without a final row
                if name not in run.results:
                    run.results[name] = AssetResult(name, states.FAILED, message="cancelled")
            recorder.add(
                "run_updates",
                [{"run_id": run.run_id, "status": run.status, "finished_at": utcnow()}],
            )
            recorder.flush()
            self.judge.save()
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
                for up in graph.assets[name].inputs.values():
                    if up in stale:
                        reasons = [r for r in reasons if not r.startswith(f"upstream {up} ")]
                        will = (
                            "is stale"
                            if whole_graph or up not in selected
                            else "will be recomputed"
                        )
                        reasons.append(f"upstream {up} {will}")
            if force and name in selected and not reasons:
                reasons = ["--force"]
            verdicts[name] = Verdict(not reasons, tuple(reasons))
            if reasons:
                stale.add(name)
        self.judge.save()
        return {name: verdicts[name] for name in names}

    def _plain_verdict(self, name: str, current: Mapping[str, Current]) -> Verdict:
        try:
            versions = self._input_versions(name, current, {})
            return self.judge.verdict(name, current, versions, utcnow())
        except VibePiperError as exc:
            return Verdict(False, (exc.message,))

    # -- one asset -------------------------------------------------------------------

    def _one(
        self,
        name: str,
        mid: str,
        run: RunResult,
        current: dict[str, Current],
        memory: _Memory,
        force: bool,
    ) -> AssetResult:
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
        started = time.monotonic()
        try:
            verdict = self.judge.verdict(name, current, versions, utcnow())
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
        self.reporter.asset_started(name, states.RUNNING)
        try:
            inputs = {param: memory.get(up, str(versions[up])) for param, up in defn.inputs.items()}
        except StoreError as exc:
            return AssetResult(name, states.FAILED, mid, message=str(exc), error=str(exc))
        context = Context(run.run_id, name, ws.project_dir, dict(defn.config))
        outcome = run_task(
            defn,
            inputs,
            context,
            ws.store,
            checks=ws.graph.checks.get(name, ()),
            upstream=lambda other: memory.get(other, self._version_of(other, current, run.results)),
            data_version=self.judge.source_version(name) if defn.is_source else None,
            on_state=lambda state: self.reporter.asset_started(name, state),
        )
        reasons = verdict.reasons or ("--force",)
        return self._finish(name, mid, outcome, code, versions, reasons, started, memory)

    def _finish(
        self,
        name: str,
        mid: str,
        outcome: TaskOutcome,
        code: CodeVersion,
        versions: Mapping[str, str | None],
        reasons: tuple[str, ...],
        started: float,
        memory: _Memory,
    ) -> AssetResult:
        seconds = time.monotonic() - started
        validation = outcome.validation
        common: dict[str, Any] = {
            "code_version": code.version,
            "code_parts": code.parts,
            "seconds": seconds,
            "attempts": outcome.attempts,
            "reasons": reasons,
            "inputs": dict(versions),
            "checks": validation.outcomes if validation else (),
        }
        if outcome.staged is None or outcome.frame is None:
            return AssetResult(
                name, states.FAILED, mid, message=outcome.message, error=outcome.error, **common
            )
        common.update(
            data_version=outcome.data_version,
            row_count=outcome.row_count,
            columns=tuple((str(c), str(t)) for c, t in outcome.frame.dtypes.items()),
        )
        if validation is not None and validation.quarantined is not None:
            common["quarantined"] = len(validation.quarantined)
            self.ws.store.keep_quarantine(name, mid, validation.quarantined)
        if validation is not None and not validation.passed:
            self.ws.store.reject(outcome.staged, mid)
            return AssetResult(
                name,
                states.CHECK_FAILED,
                mid,
                message=validation.error or _failed_checks(validation.blocking),
                **common,
            )
        self.ws.store.publish(outcome.staged)
        memory.keep(name, outcome.frame)
        return AssetResult(name, states.SUCCEEDED, mid, message=", ".join(reasons), **common)

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
                    "started_at": now if not result.seconds else _ago(now, result.seconds),
                    "finished_at": now,
                    "error": result.error or (result.message if not result.ok else None),
                    "attempts": result.attempts,
                    "config": _config_json(defn.config),
                    "reason": "; ".join(result.reasons) or result.message or None,
                    "quarantined_rows": result.quarantined,
                }
            ],
        )
        recorder.add(
            "check_results",
            [outcome_row(o, result.materialization_id, run_id, now) for o in result.checks],
        )
        if result.state == states.SUCCEEDED:
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


def _ago(now: datetime, seconds: float) -> datetime:
    from datetime import timedelta

    return now - timedelta(seconds=seconds)


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
