"""A workspace (what every command works on) and planning a selection of it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vibepiper.catalog.catalog import Catalog
from vibepiper.errors import UsageError
from vibepiper.execution.observe import Observer
from vibepiper.graph.graph import Graph
from vibepiper.storage.store import Store
from vibepiper.units import Unit
from vibepiper.versioning.fingerprint import CodeVersion
from vibepiper.versioning.freshness import Current
from vibepiper.versioning.planner import Plan, PlanOptions, make_plan


@dataclass(frozen=True)
class Workspace:
    """Everything a command needs: the graph, where the project lives, its store and
    catalog, and the code versions known so far (filled in as they are computed)."""

    graph: Graph
    project_dir: Path
    store: Store
    catalog: Catalog
    codes: dict[str, CodeVersion] = field(default_factory=dict)

    def observer(self) -> Observer:
        return Observer(self.graph, self.store, self.project_dir, self.catalog.home, self.codes)


def plan(
    ws: Workspace,
    names: list[str],
    options: PlanOptions | None = None,
    current: Mapping[Unit, Current] | None = None,
) -> Plan:
    """The plan for `names` (in dependency order) as the catalog and the world are now
    (or as `current`, read by a run as it starts)."""
    options = options or PlanOptions()
    if current is None:
        current = ws.catalog.current()
    scope: Iterable[str] = names
    if options.whole_graph:
        wanted = set(names)
        for name in names:
            wanted |= ws.graph.ancestors(name)
        scope = ws.graph.sorted(wanted)
    observed = ws.observer().observe(scope, current)
    return make_plan(ws.graph, current, observed, [Unit(n) for n in names], options)


def check_pools(graph: Graph, names: Iterable[str], pools: Mapping[str, int]) -> None:
    """A UsageError naming the first asset in a pool the project does not define."""
    for name in names:
        pool = graph.assets[name].pool
        if pool is not None and pool not in pools:
            raise UsageError(
                f"asset '{name}' is in pool '{pool}', which the project does not define",
                f"add {pool} = N (how many may run at once) under [tool.vibepiper.pools] "
                "in pyproject.toml",
            )
