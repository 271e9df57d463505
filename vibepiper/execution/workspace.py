"""A workspace (what every command works on) and planning a selection of it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vibepiper import clock
from vibepiper.catalog.catalog import Catalog
from vibepiper.errors import UsageError
from vibepiper.execution.observe import Observer
from vibepiper.execution.sql_run import EngineSettings
from vibepiper.graph.graph import Graph
from vibepiper.storage.store import Store
from vibepiper.units import Unit
from vibepiper.versioning.fingerprint import CodeVersion, config_texts, configured
from vibepiper.versioning.freshness import Current
from vibepiper.versioning.partitioning import selected_units
from vibepiper.versioning.planner import Plan, PlanOptions, make_plan, scope_units


@dataclass(frozen=True)
class Workspace:
    """Everything a command needs: the graph, where the project lives, its store and
    catalog, the code versions known so far (filled in as they are computed), and the
    configuration overrides already applied to the graph's assets and their code versions
    (asset -> parameter -> value; see `configure`)."""

    graph: Graph
    project_dir: Path
    store: Store
    catalog: Catalog
    codes: dict[str, CodeVersion] = field(default_factory=dict)
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    engine: EngineSettings | None = None  # DuckDB's, for SQL assets and streamed data

    def observer(self) -> Observer:
        return Observer(self.graph, self.store, self.project_dir, self.catalog.home, self.codes)


def configure(
    ws: Workspace,
    config: Mapping[str, Mapping[str, Any]],
    defaults: Mapping[str, Mapping[str, str]],
) -> Workspace:
    """`ws` with configuration overrides: each overridden asset is called with, and records,
    its new values, and its code version is that of those values (`defaults`: each asset's
    default values as `config_texts`, which a snapshot's assets do not carry)."""
    config = {name: dict(values) for name, values in config.items() if values}
    if not config:
        return ws
    assets, codes = dict(ws.graph.assets), dict(ws.codes)
    for name, values in config.items():
        assets[name] = assets[name].with_config(values)
        if name in codes:
            texts = defaults[name]
            codes[name] = configured(codes[name], texts, {**texts, **config_texts(values)})
    graph = replace(ws.graph, assets=MappingProxyType(assets))
    return replace(ws, graph=graph, codes=codes, config=config)


def plan(
    ws: Workspace,
    names: list[str],
    options: PlanOptions | None = None,
    current: Mapping[Unit, Current] | None = None,
    keys: Mapping[str, Sequence[str]] | None = None,
) -> Plan:
    """The plan for `names` (in dependency order) as the catalog and the world are now
    (or as `current`, read by a run as it starts): of each partitioned asset, the
    partitions `keys` (None: every partition up to now)."""
    options = options or PlanOptions()
    if current is None:
        current = ws.catalog.current()
    now = clock.utcnow()  # one moment: which partitions exist, and what is old
    units = selected_units(ws.graph, names, keys, now)
    groups = scope_units(ws.graph, units, options.whole_graph, now)
    observed = ws.observer().observe(chain.from_iterable(groups.values()), current, now)
    return make_plan(ws.graph, current, observed, units, options)


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
