"""The asset graph: validated once from the definitions, immutable afterwards."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from vibepiper.definitions.asset import AssetDef
from vibepiper.definitions.check import CheckDef
from vibepiper.errors import DefinitionError, did_you_mean


@dataclass(frozen=True)
class Graph:
    """Assets by name, their edges both ways, and one fixed topological order."""

    assets: Mapping[str, AssetDef]
    checks: Mapping[str, tuple[CheckDef, ...]]  # asset name -> its @check functions
    upstream: Mapping[str, tuple[str, ...]]
    downstream: Mapping[str, tuple[str, ...]]
    order: tuple[str, ...]
    # asset -> other asset its checks read -> the names of those checks
    check_reads: Mapping[str, Mapping[str, tuple[str, ...]]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    @classmethod
    def build(
        cls,
        assets: Iterable[AssetDef],
        checks: Iterable[CheckDef] = (),
        *,
        order: Sequence[str] | None = None,
        like: Graph | None = None,
    ) -> Graph:
        """The graph of `assets` and their `checks`. The nodes are sorted once, the same
        way for the same edges; not again when `order` (what a build of these very edges
        gave: a snapshot's) is a topological order of them, or when `like` (an earlier
        graph) has exactly these edges."""
        by_name: dict[str, AssetDef] = {}
        for defn in assets:
            other = by_name.get(defn.name)
            if other is not None and other is not defn:
                raise DefinitionError(
                    f"asset '{defn.name}' is defined twice (in {other.module} and {defn.module})",
                    "give one of them another name, e.g. with @asset(name=...)",
                )
            by_name[defn.name] = defn
        upstream = {name: _upstream_of(defn, by_name) for name, defn in by_name.items()}
        checks_for = _attach_checks(checks, by_name)
        reads = {
            name: _check_reads(defn, checks_for.get(name, ()), by_name)
            for name, defn in by_name.items()
        }
        for name, read in reads.items():
            upstream[name] = tuple(dict.fromkeys([*upstream[name], *read]))
        _check_partitions(by_name, upstream, reads)
        if like is not None and like.upstream == upstream:
            order = like.order  # sorted from these very edges
        elif order is None or not _orders(order, upstream):
            order = _topological_order(upstream)
        downstream: dict[str, list[str]] = {name: [] for name in by_name}
        for name in order:
            for up in upstream[name]:
                downstream[up].append(name)
        return cls(
            assets=MappingProxyType(by_name),
            checks=MappingProxyType(checks_for),
            upstream=MappingProxyType(upstream),
            downstream=MappingProxyType({k: tuple(v) for k, v in downstream.items()}),
            order=tuple(order),
            check_reads=MappingProxyType(
                {name: MappingProxyType(read) for name, read in reads.items() if read}
            ),
        )

    def ancestors(self, name: str, depth: int | None = None) -> set[str]:
        return _walk(self.upstream, name, depth)

    def ancestors_of(self, names: Iterable[str]) -> set[str]:
        """Every ancestor of any of `names` (the union of their `ancestors`), each node
        visited once: linear in the graph however many names share their ancestors."""
        return _reach(self.upstream, names)

    def descendants(self, name: str, depth: int | None = None) -> set[str]:
        return _walk(self.downstream, name, depth)

    def order_only(self, up: str, down: str) -> bool:
        """Whether the edge up -> down only orders them (`deps=`): `down` does not read
        `up`'s data."""
        return up not in self.assets[down].inputs.values()

    def sorted(self, names: Iterable[str]) -> list[str]:
        """`names` in the graph's topological order."""
        wanted = set(names)
        return [n for n in self.order if n in wanted]


def _upstream_of(defn: AssetDef, known: Mapping[str, AssetDef]) -> tuple[str, ...]:
    for param, up in defn.inputs.items():
        if up not in known and defn.is_sql:
            raise DefinitionError(
                f"asset '{defn.name}' ({defn.module}): its query reads table '{up}', which "
                f"is not an asset{did_you_mean(up, known)}",
                "a SQL asset reads only assets, by their names",
            )
        if up not in known:
            via = f"parameter '{param}'" if param == up else f"input '{param}' -> '{up}'"
            raise DefinitionError(
                f"asset '{defn.name}': {via} is not an asset{did_you_mean(up, known)}",
                "name it like an existing asset, map it with inputs={...}, give it a default "
                "value to make it configuration, or call it 'context'",
            )
    for up in defn.upstream:
        if up not in known:
            raise DefinitionError(
                f"asset '{defn.name}' depends on unknown asset '{up}'{did_you_mean(up, known)}",
                "fix the name in deps= or in expect.relationship(to=...)",
            )
        if up == defn.name:
            raise DefinitionError(
                f"asset '{defn.name}' depends on itself",
                "remove it from its own inputs, deps= and relationships",
            )
    return defn.upstream


def _check_reads(
    defn: AssetDef, checks: Iterable[CheckDef], known: Mapping[str, AssetDef]
) -> dict[str, tuple[str, ...]]:
    """The other assets the checks of `defn` read, each with the names of those checks:
    relationship targets, `@check` parameters, tables an `expect.sql` query reads."""
    reads: dict[str, list[str]] = {}
    for exp in defn.checks:
        others: Iterable[str] = ()
        if exp.to:
            others = (exp.to,)
        elif exp.kind == "sql":
            from vibepiper.graph.sql_tables import tables_read

            others = sorted(t for t in tables_read(str(exp.args[0])) if t in known)
        for other in others:
            if other != defn.name:
                reads.setdefault(other, []).append(exp.name)
    for chk in checks:
        for other in chk.upstream:
            reads.setdefault(other, []).append(chk.name)
    return {other: tuple(names) for other, names in reads.items()}


def _attach_checks(
    checks: Iterable[CheckDef], known: Mapping[str, AssetDef]
) -> dict[str, tuple[CheckDef, ...]]:
    result: dict[str, list[CheckDef]] = {}
    for chk in checks:
        if chk.asset not in known:
            raise DefinitionError(
                f"check '{chk.name}' is on unknown asset '{chk.asset}'"
                f"{did_you_mean(chk.asset, known)}",
                "fix @check(asset=...)",
            )
        if chk.sql is None and known[chk.asset].is_sql:
            raise DefinitionError(
                f"check '{chk.name}' on SQL asset '{chk.asset}' is a Python function, which "
                "would load the data into pandas",
                f"write it as a query of the failing rows: @check(asset='{chk.asset}', "
                "sql='select * from ... where ...')",
            )
        for param in chk.params:
            if param not in known:
                raise DefinitionError(
                    f"check '{chk.name}': parameter '{param}' is not an asset"
                    f"{did_you_mean(param, known)}",
                    f"name it '{chk.asset}' to receive the checked asset's data",
                )
        seen = result.setdefault(chk.asset, [])
        if any(c.name == chk.name and c is not chk for c in seen):
            raise DefinitionError(
                f"check '{chk.name}' on asset '{chk.asset}' is defined twice",
                "give one of them another name with @check(name=...)",
            )
        if chk not in seen:
            seen.append(chk)
    return {name: tuple(defs) for name, defs in result.items()}


def _orders(order: Sequence[str], upstream: Mapping[str, tuple[str, ...]]) -> bool:
    """Whether `order` lists every node of `upstream` once, each after its upstream."""
    if len(order) != len(upstream):
        return False
    position: dict[str, int] = {}
    for name in order:
        ups = upstream.get(name)
        if ups is None or name in position or not all(u in position for u in ups):
            return False
        position[name] = len(position)
    return True


def _topological_order(upstream: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    # Sorting the nodes first makes the order (and any cycle reported) deterministic.
    sorter = graphlib.TopologicalSorter({n: sorted(upstream[n]) for n in sorted(upstream)})
    try:
        return tuple(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = list(exc.args[1])[:-1]
        start = cycle.index(min(cycle))
        path = [*cycle[start:], *cycle[:start], min(cycle)]
        raise DefinitionError(
            f"dependency cycle: {' -> '.join(path)}",
            "an asset cannot depend, directly or indirectly, on itself",
        ) from None


def _reach(edges: Mapping[str, tuple[str, ...]], starts: Iterable[str]) -> set[str]:
    """What one or more steps along `edges` lead to from any of `starts`."""
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        for node in edges[stack.pop()]:
            if node not in seen:
                seen.add(node)
                stack.append(node)
    return seen


def _walk(edges: Mapping[str, tuple[str, ...]], start: str, depth: int | None) -> set[str]:
    seen: set[str] = set()
    frontier = [start]
    level = 0
    while frontier and (depth is None or level < depth):
        level += 1
        frontier = [n for node in frontier for n in edges[node] if n not in seen]
        seen.update(frontier)
    return seen


def _check_partitions(
    assets: Mapping[str, AssetDef],
    upstream: Mapping[str, tuple[str, ...]],
    reads: Mapping[str, Mapping[str, tuple[str, ...]]],
) -> None:
    """A DefinitionError for partitioned assets that cannot be read as declared: two
    partitionings that do not map onto each other, checks that read a partitioned asset,
    automation of a partitioned asset."""
    for name, defn in assets.items():
        mine = defn.partitions
        for other in reads.get(name, {}):
            if assets[other].partitions is not None:
                raise DefinitionError(
                    f"asset '{name}': its checks read '{other}', which is partitioned; "
                    "checks cannot read a partitioned asset yet",
                    f"check '{other}' with its own checks, or read an unpartitioned asset "
                    f"made from it",
                )
        if mine is not None and defn.automation is not None:
            raise DefinitionError(
                f"asset '{name}': automation= is not supported for a partitioned asset",
                "drop automation= and run its partitions on a schedule",
            )
        if mine is None:
            continue
        for up in upstream[name]:
            theirs = assets[up].partitions
            if theirs is None:
                continue
            problem = mine.mapping_problem(theirs)
            if problem:
                raise DefinitionError(
                    f"asset '{name}' ({mine.describe()}) reads '{up}' ({theirs.describe()}), "
                    f"and {problem}",
                    "give both the same partitioning (or both time partitions), or read an "
                    "unpartitioned asset in between",
                )
