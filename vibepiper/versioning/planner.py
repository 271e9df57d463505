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

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from vibepiper.definitions.partitions import compress, shown_range
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
from vibepiper.versioning.partitioning import (
    current_keys,
    in_order,
    read_version,
    units_of,
)
from vibepiper.versioning.partitioning import reads as reads_of


class Action(StrEnum):
    RUN = "run"  # compute it
    RECHECK = "recheck"  # validate its stored data again (only what its checks read changed)
    SKIP = "skip"  # fresh: reuse its current data
    FAIL = "fail"  # it cannot be judged (a source file is missing...): it fails


@dataclass(slots=True)  # not frozen: one per partition, and frozen ones cost 8x to make
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
    sources: Mapping[Unit, str]  # a source's unit -> its file's hash now
    errors: Mapping[Unit, VibePiperError]  # unit -> why it cannot be judged (no source file)
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
        names = [
            u.asset
            for u in self.units
            if self.decisions[u].action is not Action.SKIP and not self.decisions[u].provisional
        ]
        return list(dict.fromkeys(names))

    def verdicts(self, units: Iterable[Unit] | None = None) -> dict[str, Verdict]:
        """Each asset's verdict (the selection's by default): a partitioned asset's sums
        up its partitions' (fresh when all of them are)."""
        chosen = self.units if units is None else units
        grouped: dict[str, list[Decision]] = {}
        for u in chosen:
            grouped.setdefault(u.asset, []).append(self.decisions[u])
        return {
            name: found[0].verdict if not found[0].unit.partition else _summed(found)
            for name, found in grouped.items()
        }


def make_plan(
    graph: Graph,
    current: Mapping[Unit, Current],
    observed: Observed,
    units: Sequence[Unit],
    options: PlanOptions = PlanOptions(),
) -> Plan:
    """The decision for each unit of `units` (and of their ancestors' units, every
    partition up to now, with `whole_graph`)."""
    selected = set(units)
    groups = scope_units(graph, units, options.whole_graph, observed.now)
    present = current_keys(graph, current, observed.now)
    stale: set[Unit] = set()
    stale_assets: set[str] = set()
    rechecked: set[str] = set()
    decisions: dict[Unit, Decision] = {}
    will = STALE if options.whole_graph else WILL_RUN
    for name in graph.sorted(groups):
        reads = _read_by(graph, name)
        quick = None
        if not (rechecked & reads) and not options.force:
            quick = _quick_check(graph, name, current, observed, stale_assets)
        for unit in groups[name]:
            if quick is not None and quick(unit, current.get(unit)):
                decisions[unit] = Decision(unit, Action.SKIP)
                continue
            causes, provisional = _causes(
                graph, unit, current, observed, (stale, stale_assets), will, present
            )
            if not causes and options.force and unit in selected:
                causes = [Reason(Why.FORCE)]
            # A recheck keeps the asset's data, unless quarantine takes rows out of it:
            # what reads it is not stale for it, but waits to see.
            waits = bool(rechecked & reads)
            decisions[unit] = _decision(unit, causes, provisional or waits)
            if decisions[unit].action is Action.RECHECK:
                rechecked.add(name)
            elif causes:
                stale.add(unit)
                stale_assets.add(name)
    return Plan(tuple(units), decisions, current, observed, options)


def _quick_check(
    graph: Graph,
    name: str,
    current: Mapping[Unit, Current],
    observed: Observed,
    stale_assets: set[str],
) -> Callable[[Unit, Current | None], bool] | None:
    """A quick test that a unit is fresh in the common case, so that planning thousands
    of assets or partitions does not judge each in full: its data exists, is sound, was
    made by the same code from the same data of its inputs (each an unpartitioned asset
    read whole, or the same partition of an asset partitioned the same way), and its last
    attempt succeeded. A unit it does not pass is judged in full. None for assets it does
    not apply to (sources, max_age, checks that read other assets, inputs read in windows
    or across partitionings, an input stale in this plan)."""
    defn = graph.assets[name]
    if defn.is_source or defn.max_age is not None:
        return None
    if graph.check_reads.get(name) or any(up in stale_assets for up in graph.upstream[name]):
        return None
    theirs = [graph.assets[up].partitions for up in defn.inputs.values()]
    if defn.partitions is None:
        if not all(p is None for p in theirs):
            return None
    elif defn.lookback or not all(defn.partitions.same_as(p) for p in theirs):
        return None
    code, damage = observed.codes[name].version, observed.damage
    errors = observed.errors
    inputs = list(dict.fromkeys(defn.inputs.values()))

    def fresh(unit: Unit, cur: Current | None) -> bool:
        if cur is None or cur.code_version != code or cur.last_attempt != "succeeded":
            return False
        if damage.get(unit, "missing") or unit in errors or len(cur.inputs) != len(inputs):
            return False
        for up in inputs:
            made = current.get(Unit(up, unit.partition))
            if made is None or cur.inputs.get(up) != made.data_version:
                return False
        return True

    return fresh


def scope_units(
    graph: Graph, units: Sequence[Unit], whole_graph: bool, now: datetime
) -> dict[str, list[Unit]]:
    """The units a plan judges, by asset: the selection's, and with `whole_graph` every
    unit of their ancestors."""
    groups: dict[str, list[Unit]] = {}
    for unit in units:
        groups.setdefault(unit.asset, []).append(unit)
    if whole_graph:
        for name in graph.ancestors_of(list(groups)) - groups.keys():
            groups[name] = units_of(graph, name, now)
    return groups


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
    error = observed.errors.get(unit)
    if error is not None:
        return Verdict.of([Reason(Why.ERROR, detail=error.message)])
    defn = graph.assets[name]
    cur = current.get(unit)
    reads = graph.check_reads.get(name, {})
    source = None
    if defn.is_source:
        source = (defn.source_path_of(unit.partition), observed.sources.get(unit))
    return judge(
        cur,
        code=observed.codes[name],
        inputs=inputs,
        file_problem=observed.damage.get(unit, "missing") if cur else "missing",
        source=source,
        max_age=defn.max_age,
        now=now or observed.now,
        check_reads={other: (checked.get(other), checks) for other, checks in reads.items()},
    )


def input_versions(
    graph: Graph,
    unit: Unit,
    version_of: Callable[[Unit], str | None],
    present: Callable[[str], Iterable[str]],
) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """The data version `unit` reads of each input, and of each other asset its checks
    read (None: never made), given each unit's version and which partitions of a
    partitioned asset have data (see `versioning.partitioning`)."""
    ups = graph.assets[unit.asset].inputs.values()
    inputs = {up: read_version(graph, unit, up, version_of, present) for up in ups}
    checked = {other: version_of(Unit(other)) for other in graph.check_reads.get(unit.asset, {})}
    return inputs, checked


def _causes(
    graph: Graph,
    unit: Unit,
    current: Mapping[Unit, Current],
    observed: Observed,
    stale: tuple[set[Unit], set[str]],
    will: str,
    present: Mapping[str, set[str]],
) -> tuple[list[Reason], bool]:
    """Why `unit` is stale, counting the stale units before it (and the assets they are
    of); and whether that counts on them."""
    name = unit.asset

    def version_of(other: Unit) -> str | None:
        cur = current.get(other)
        return cur.data_version if cur is not None else None

    def keys(up: str) -> list[str]:
        return in_order(graph, up, present.get(up, ()))

    inputs, checked = input_versions(graph, unit, version_of, keys)
    causes = list(judge_unit(graph, unit, current, observed, inputs, checked).causes)
    if [c.kind for c in causes] == [Why.NEVER]:
        return causes, False
    provisional = False
    stale_units, stale_assets = stale
    for up in inputs:
        read = reads_of(graph, unit, up)
        hit = up in stale_assets if read is None else any(u in stale_units for u in read)
        if hit:
            causes = [c for c in causes if not (c.asset == up and c.kind in _INPUT_KINDS)]
            causes.append(Reason(Why.UPSTREAM_STALE, up, will))
            provisional = True
    for up, checks in graph.check_reads.get(name, {}).items():
        if up in stale_assets and up not in inputs:
            causes = [c for c in causes if not (c.asset == up and c.kind is Why.CHECK_READ)]
            causes.append(Reason(Why.CHECK_READ, up, will, checks))
            provisional = True
    return causes, provisional


_INPUT_KINDS = (Why.UPSTREAM_CHANGED, Why.UPSTREAM_STALE)


def _read_by(graph: Graph, name: str) -> set[str]:
    """The assets `name` reads: its inputs and what its checks read."""
    return set(graph.assets[name].inputs.values()) | set(graph.check_reads.get(name, {}))


def _summed(decisions: list[Decision]) -> Verdict:
    """A partitioned asset's verdict: fresh if every partition is; else one reason that
    counts the stale partitions and shows the first runs of them, with why."""
    stale = [d for d in decisions if d.action is not Action.SKIP]
    if not stale:
        return Verdict(True)
    every = [(d.unit.partition, "; ".join(map(str, d.causes))) for d in decisions]
    runs = [r for r in compress(every) if r[2]]  # runs of consecutive stale keys
    shown = [f"{shown_range(first, last)} ({why})" for first, last, why in runs[:3]]
    more = f"; and {len(runs) - 3} more ranges" if len(runs) > 3 else ""
    detail = f"{len(stale)} of {len(decisions)} partitions stale: {'; '.join(shown)}{more}"
    recheck = all(d.action is Action.RECHECK for d in stale)
    causes = (Reason(Why.PARTITIONS, detail=detail),)
    error = any(d.action is Action.FAIL for d in stale)
    return Verdict(False, causes, recheck and not error)


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
