"""The planner: what a run of a selection would do with each unit of work, and why.

`make_plan` is pure: from the graph, the catalog's current state, what was observed of
the world (code versions, source files' hashes, the state of stored files: see
`execution.observe`), the selection and the options, it returns a `Plan` value, with a
`Decision` (run, recheck, skip or fail, with structured reasons) for each unit. Every
command that plans (`materialize`, `plan`, `status`, `explain`, `lineage`, `check
--require-fresh`, `docs`) calls it; `materialize` hands its plan to the run, which only
settles again (with `settle`, from the same observations) the units whose decision waited
on units the run computes: an input recomputed to the same data leaves its consumers
fresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from vibepiper.errors import VibePiperError
from vibepiper.graph.graph import Graph
from vibepiper.units import Unit
from vibepiper.versioning.fingerprint import CodeVersion
from vibepiper.versioning.freshness import (
    STALE,
    WILL_RUN,
    Current,
    Reason,
    Verdict,
    Why,
    judge,
)


class Action(StrEnum):
    RUN = "run"  # compute it
    RECHECK = "recheck"  # validate its stored data again (only what its checks read changed)
    SKIP = "skip"  # fresh: reuse its current data
    FAIL = "fail"  # it cannot be judged (a source file is missing...): it fails


@dataclass(frozen=True)
class Decision:
    """What to do with one unit, and why. `provisional`: it counts on units this plan
    computes; the run settles it again once their data is known."""

    unit: Unit
    action: Action
    causes: tuple[Reason, ...] = ()
    provisional: bool = False

    @property
    def verdict(self) -> Verdict:
        return Verdict(self.action is Action.SKIP, self.causes, self.action is Action.RECHECK)


@dataclass(frozen=True)
class Observed:
    """What the planner knows of the world besides the catalog, gathered once."""

    codes: Mapping[str, CodeVersion]  # asset -> its code version now
    sources: Mapping[str, str]  # source asset -> its file's hash now
    errors: Mapping[str, VibePiperError]  # asset -> why it cannot be judged (no source file)
    damage: Mapping[Unit, str]  # unit -> what is wrong with its stored data ("" if nothing)
    now: datetime


@dataclass(frozen=True)
class PlanOptions:
    force: bool = False  # recompute the selection even if fresh
    # staleness spreads through the whole graph (`status`): an asset is stale when any
    # ancestor is. Otherwise (a run, a dry run) only through the selection: an unselected
    # upstream keeps its current data.
    whole_graph: bool = False


@dataclass(frozen=True)
class Plan:
    """Each unit's decision: the selection's (in dependency order), and with
    `whole_graph` their ancestors' too."""

    units: tuple[Unit, ...]
    decisions: Mapping[Unit, Decision]
    current: Mapping[Unit, Current]
    observed: Observed
    options: PlanOptions = field(default_factory=PlanOptions)

    @property
    def computes(self) -> bool:
        """Whether a run of it would compute or validate anything."""
        return any(self.decisions[u].action is not Action.SKIP for u in self.units)

    def needs_code(self) -> list[str]:
        """The assets a run of it will compute or validate, whatever their inputs turn
        out to be: their code is needed (a provisional decision's, once it is settled)."""
        return [
            u.asset
            for u in self.units
            if self.decisions[u].action is not Action.SKIP and not self.decisions[u].provisional
        ]

    def verdicts(self, units: Iterable[Unit] | None = None) -> dict[str, Verdict]:
        """Each unit's verdict (the selection's by default), by its asset's name."""
        chosen = self.units if units is None else units
        return {u.asset: self.decisions[u].verdict for u in chosen}


def make_plan(
    graph: Graph,
    current: Mapping[Unit, Current],
    observed: Observed,
    units: Sequence[Unit],
    options: PlanOptions = PlanOptions(),
) -> Plan:
    """The decision for each unit of `units` (and of their ancestors with `whole_graph`)."""
    selected = set(units)
    scope = {u.asset for u in units}
    if options.whole_graph:
        scope |= graph.ancestors_of(scope)
    stale: set[str] = set()
    rechecked: set[str] = set()
    decisions: dict[Unit, Decision] = {}
    for name in graph.sorted(scope):
        unit = Unit(name)
        will = STALE if options.whole_graph else WILL_RUN
        causes, provisional = _causes(graph, unit, current, observed, stale, will)
        if not causes and options.force and unit in selected:
            causes = [Reason(Why.FORCE)]
        # A recheck keeps the asset's data, unless quarantine takes rows out of it: what
        # reads it is not stale for it, but waits to see.
        waits = bool(rechecked & _read_by(graph, name))
        decisions[unit] = _decision(unit, causes, provisional or waits)
        if decisions[unit].action is Action.RECHECK:
            rechecked.add(name)
        elif causes:
            stale.add(name)
    return Plan(tuple(units), decisions, current, observed, options)


def settle(
    plan: Plan,
    graph: Graph,
    unit: Unit,
    inputs: Mapping[str, str | None],
    checked: Mapping[str, str | None],
    now: datetime | None = None,
) -> Decision:
    """The decision for `unit` now that everything it depends on is done, with the data
    versions the run has for its inputs and for what its checks read: the plan's, unless
    it was provisional."""
    decision = plan.decisions[unit]
    if not decision.provisional:
        return decision
    verdict = judge_unit(graph, unit, plan.current, plan.observed, inputs, checked, now)
    causes = list(verdict.causes)
    if not causes and plan.options.force:
        causes = [Reason(Why.FORCE)]
    return _decision(unit, causes, False)


def judge_unit(
    graph: Graph,
    unit: Unit,
    current: Mapping[Unit, Current],
    observed: Observed,
    inputs: Mapping[str, str | None],
    checked: Mapping[str, str | None],
    now: datetime | None = None,
) -> Verdict:
    """The verdict on one unit, given the data versions of its inputs and of what its
    checks read."""
    name = unit.asset
    error = observed.errors.get(name)
    if error is not None:
        return Verdict.of([Reason(Why.ERROR, detail=error.message)])
    defn = graph.assets[name]
    cur = current.get(unit)
    reads = graph.check_reads.get(name, {})
    return judge(
        cur,
        code=observed.codes[name],
        inputs=inputs,
        file_problem=observed.damage.get(unit, "missing") if cur else "missing",
        source=(str(defn.source_path), observed.sources.get(name)) if defn.is_source else None,
        max_age=defn.max_age,
        now=now or observed.now,
        check_reads={other: (checked.get(other), checks) for other, checks in reads.items()},
    )


def current_versions(
    graph: Graph, name: str, current: Mapping[Unit, Current]
) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """The current data version of each input of `name`, and of each other asset its
    checks read (None: never made)."""

    def version(other: str) -> str | None:
        cur = current.get(Unit(other))
        return cur.data_version if cur is not None else None

    inputs = {up: version(up) for up in graph.assets[name].inputs.values()}
    checked = {other: version(other) for other in graph.check_reads.get(name, {})}
    return inputs, checked


def _causes(
    graph: Graph,
    unit: Unit,
    current: Mapping[Unit, Current],
    observed: Observed,
    stale: set[str],
    will: str,
) -> tuple[list[Reason], bool]:
    """Why `unit` is stale, counting the stale units before it; and whether that counts
    on them."""
    name = unit.asset
    inputs, checked = current_versions(graph, name, current)
    causes = list(judge_unit(graph, unit, current, observed, inputs, checked).causes)
    if [c.kind for c in causes] == [Why.NEVER]:
        return causes, False
    provisional = False
    for up in inputs:
        if up in stale:
            causes = [c for c in causes if not (c.asset == up and c.kind in _INPUT_KINDS)]
            causes.append(Reason(Why.UPSTREAM_STALE, up, will))
            provisional = True
    for up, checks in graph.check_reads.get(name, {}).items():
        if up in stale and up not in inputs:
            causes = [c for c in causes if not (c.asset == up and c.kind is Why.CHECK_READ)]
            causes.append(Reason(Why.CHECK_READ, up, will, checks))
            provisional = True
    return causes, provisional


_INPUT_KINDS = (Why.UPSTREAM_CHANGED, Why.UPSTREAM_STALE)


def _read_by(graph: Graph, name: str) -> set[str]:
    """The assets `name` reads: its inputs and what its checks read."""
    return set(graph.assets[name].inputs.values()) | set(graph.check_reads.get(name, {}))


def _decision(unit: Unit, causes: list[Reason], provisional: bool) -> Decision:
    verdict = Verdict.of(causes)
    if verdict.fresh:
        action = Action.SKIP
    elif any(c.kind is Why.ERROR for c in causes):
        action = Action.FAIL
    elif verdict.recheck:
        action = Action.RECHECK
    else:
        action = Action.RUN
    return Decision(unit, action, tuple(causes), provisional)
