"""`vibepiper check`: re-validate the current materializations without recomputing them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from vibepiper.catalog.catalog import Batch, utcnow
from vibepiper.errors import StoreError
from vibepiper.execution.recorder import new_run_id, run_row
from vibepiper.execution.workspace import Workspace, plan
from vibepiper.units import Unit
from vibepiper.validation.outcome import CheckOutcome, outcome_row
from vibepiper.validation.validate import validate
from vibepiper.versioning.planner import PlanOptions


@dataclass(frozen=True)
class AssetAudit:
    """One asset's re-validation: its outcomes, or why it could not be checked."""

    asset: str
    materialization_id: str | None
    outcomes: tuple[CheckOutcome, ...] = ()
    problem: str = ""  # e.g. "never materialized", "stale: code changed"
    problem_fails: bool = False  # whether `problem` fails the check run

    @property
    def ok(self) -> bool:
        return not self.problem_fails and not any(o.blocking for o in self.outcomes)


@dataclass
class AuditResult:
    run_id: str
    audits: list[AssetAudit] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.audits)


def audit(
    ws: Workspace, names: list[str], *, require_fresh: bool = False, selection: str = ""
) -> AuditResult:
    """Validate each selected asset's current data, and record the results in the catalog."""
    result = AuditResult(new_run_id())
    started = utcnow()
    current = ws.catalog.current()
    verdicts = {}
    if require_fresh:
        verdicts = plan(ws, names, PlanOptions(whole_graph=True), current).verdicts()
    frames: dict[str, Any] = {}

    def upstream(name: str) -> Any:
        if name not in frames:
            unit = Unit(name)
            frames[name] = ws.store.read(unit, current[unit].data_version)
        return frames[name]

    for name in names:
        verdict = verdicts.get(name)
        stale = "" if verdict is None or verdict.fresh else "; ".join(verdict.reasons)
        defn = replace(ws.graph.assets[name], quarantine=False)
        units = [Unit(name)]
        if defn.partitions is not None:  # each partition that has data, in key order
            order = defn.partitions.order
            units = sorted(
                (u for u in current if u.asset == name), key=lambda u: order(u.partition)
            )
        if not units or current.get(units[0]) is None:
            result.audits.append(
                AssetAudit(name, None, problem="never materialized", problem_fails=require_fresh)
            )
            continue
        for unit in units:
            result.audits.append(_audit(ws, defn, unit, current[unit], stale, upstream))
    _record(ws, result, started, selection)
    return result


def _audit(ws: Workspace, defn: Any, unit: Unit, cur: Any, stale: str, upstream: Any) -> AssetAudit:
    """Validate the current data of one unit again."""
    label = str(unit)
    try:
        frame = ws.store.read(unit, cur.data_version) if unit.partition else upstream(unit.asset)
    except StoreError as exc:
        return AssetAudit(label, cur.materialization_id, problem=str(exc), problem_fails=True)
    validation = validate(defn, ws.graph.checks.get(unit.asset, ()), frame, upstream)
    outcomes = validation.outcomes
    if defn.time_column and unit.partition and defn.partitions is not None:
        from vibepiper.validation.outcome import window_outcome

        start, end = defn.partitions.window(unit.partition)
        outcomes = (*outcomes, window_outcome(frame, defn.time_column, start, end))
    return AssetAudit(
        label,
        cur.materialization_id,
        outcomes,
        problem=f"stale: {stale}" if stale else "",
        problem_fails=bool(stale),
    )


def _record(ws: Workspace, result: AuditResult, started: datetime, selection: str) -> None:
    now = utcnow()
    batch = Batch()
    batch.runs.append(
        run_row(
            result.run_id,
            selection,
            status="succeeded" if result.ok else "failed",
            kind="check",
            started_at=started,
            finished_at=now,
        )
    )
    for item in result.audits:
        batch.check_results.extend(
            outcome_row(o, item.materialization_id, result.run_id, now) for o in item.outcomes
        )
    ws.catalog.write(batch)
