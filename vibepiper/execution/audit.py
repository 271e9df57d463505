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
        cur = current.get(Unit(name))
        verdict = verdicts.get(name)
        stale = "" if verdict is None or verdict.fresh else "; ".join(verdict.reasons)
        if cur is None:
            result.audits.append(
                AssetAudit(name, None, problem="never materialized", problem_fails=require_fresh)
            )
            continue
        defn = replace(ws.graph.assets[name], quarantine=False)
        try:
            frame = upstream(name)
        except StoreError as exc:
            result.audits.append(
                AssetAudit(name, cur.materialization_id, problem=str(exc), problem_fails=True)
            )
            continue
        validation = validate(defn, ws.graph.checks.get(name, ()), frame, upstream)
        result.audits.append(
            AssetAudit(
                name,
                cur.materialization_id,
                validation.outcomes,
                problem=f"stale: {stale}" if stale else "",
                problem_fails=bool(stale),
            )
        )
    _record(ws, result, started, selection)
    return result


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
