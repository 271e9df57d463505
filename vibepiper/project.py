"""The Python API: `Project`, a loaded project (see `loader` for how it is loaded)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from vibepiper.errors import (
    AssetNotMaterializedError,
    DefinitionError,
    SelectionError,
    UsageError,
    VibePiperError,
    did_you_mean,
)
from vibepiper.graph.graph import Graph
from vibepiper.loader import load_settings
from vibepiper.text import quoted
from vibepiper.units import Unit
from vibepiper.versioning.partitioning import current_keys, keys_for

if TYPE_CHECKING:
    import threading

    import pandas as pd

    from vibepiper.catalog.query import Opener
    from vibepiper.definitions.asset import AssetDef
    from vibepiper.definitions.config import Config
    from vibepiper.definitions.schedule import Schedule
    from vibepiper.execution.audit import AuditResult
    from vibepiper.execution.doctor import Examination
    from vibepiper.execution.reporter import Reporter
    from vibepiper.execution.states import RunResult
    from vibepiper.execution.store_gc import Collection
    from vibepiper.execution.workspace import Workspace
    from vibepiper.loader import Definitions, Settings
    from vibepiper.reporting.explain import Cause
    from vibepiper.reporting.lineage import ColumnSource, Made, Neighbourhood
    from vibepiper.snapshot import Modules, Snapshot
    from vibepiper.storage.store import Store
    from vibepiper.versioning.freshness import Verdict
    from vibepiper.versioning.source_cache import IdentityMemo

# What the fingerprints of the project's functions depend on in their files, remembered by
# each file's identity (see versioning/fingerprint.py): one edit re-parses one file.
FINGERPRINT_MEMO = "fingerprint-memo.json"


class Project:
    """A loaded project: its asset graph, its store and its catalog.

    `Project(path=".")` reads `[tool.vibepiper]` from `path/pyproject.toml` and imports
    the asset modules listed there (or `modules=`) — unless a snapshot of them, taken when
    they were last imported, is still valid (see `vibepiper.snapshot`): then their code is
    imported only when something must actually be computed or checked.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = ".",
        *,
        modules: Iterable[str] | None = None,
        home: str | os.PathLike[str] | None = None,
    ) -> None:
        from vibepiper import snapshot
        from vibepiper.catalog.catalog import Catalog
        from vibepiper.storage.parquet_store import ParquetStore

        self.settings = load_settings(path, modules, home)
        self.root = self.settings.root
        self.home = self.settings.home
        self.store: Store
        if self.settings.store is None:
            self.store = ParquetStore(
                self.home / "store", self.home / "sound-files.json", self.home / "writers"
            )
        else:  # an S3-compatible bucket (SPEC §11), read through a cache of this machine's
            from vibepiper.storage.object_store import ObjectStore

            self.store = ObjectStore(self.settings.store, self.home / "cache")
        self.catalog = Catalog(self.home, project=self.root)
        self._key = _snapshot_key(self.settings)
        found = snapshot.load(self.home, self._key) if snapshot.enabled() else None
        if found is None:
            self._load_fully()
        elif found.changed:
            self._load_fully(found)  # only the modules the edits touch are imported
        else:
            self.graph, self.codes, self._listing = found.graph, found.codes, found.listing
            self._defaults = found.defaults
            self._files = [Path(f) for f in found.files]
            self._schedules = found.schedules
            self.loaded = False

    def _load_fully(self, stale: Snapshot | None = None) -> None:
        """Import the project's modules, and save a snapshot of what they define.

        With `stale`, a snapshot some of whose module files were edited since, only the
        modules those edits affect are imported (`stale.affected`); the others' assets
        stay as the snapshot has them (their code is imported when they must compute).
        """
        from vibepiper.loader import import_definitions
        from vibepiper.reporting.listing import asset_rows
        from vibepiper.versioning.fingerprint import Fingerprinter, config_texts
        from vibepiper.versioning.source_cache import IdentityMemo, forget_trees

        if stale is None:
            found = import_definitions(self.settings)
            kept: list[AssetDef] = []
        else:
            found = import_definitions(self.settings, stale.affected, stale.modules.tree)
            imported = set(found.tree)
            kept = [
                stale.graph.assets[n]
                for n in stale.graph.order
                if stale.modules.holder.get(n) not in imported
            ]
        like = stale.graph if stale is not None else None
        self.graph = Graph.build([*found.assets, *kept], found.checks, like=like)
        _check_sql_assets(found.assets)
        self._schedules = tuple((s, found.holder[id(s)]) for s in found.schedules)
        if stale is not None:
            imported_tree = set(found.tree)
            self._schedules += tuple(
                (s, holder) for s, holder in stale.schedules if holder not in imported_tree
            )
        if stale is not None and kept:
            reads = {
                a.name: stale.graph.check_reads[a.name]
                for a in kept
                if a.name in stale.graph.check_reads
            }
            reads.update(self.graph.check_reads)
            self.graph = replace(self.graph, check_reads=MappingProxyType(reads))
        self.loaded = not kept
        live = [a.name for a in found.assets]
        memo = IdentityMemo(self.home / FINGERPRINT_MEMO)
        fingerprints = Fingerprinter(memo)
        self.codes = {}
        for name in live:
            defn = self.graph.assets[name]
            self.codes[name] = fingerprints.code_version(defn, self.graph.checks.get(name, ()))
        self._defaults = {n: config_texts(self.graph.assets[n].config) for n in live}
        self._listing = {row["name"]: row for row in asset_rows(self.graph, live)}
        if stale is not None:
            self.codes.update((a.name, stale.codes[a.name]) for a in kept)
            self._defaults.update((a.name, stale.defaults[a.name]) for a in kept)
            self._listing.update((a.name, stale.listing[a.name]) for a in kept)
        modules = self._modules(found, stale, [a.name for a in kept], memo)
        forget_trees()
        memo.save()  # (a read-only home just remembers nothing)
        self._save_snapshot(modules, stale)

    def _modules(
        self, found: Definitions, stale: Snapshot | None, kept: list[str], memo: IdentityMemo
    ) -> Modules:
        """How the project's modules hang together now: what was imported, and what the
        snapshot says of the modules that were not."""
        from vibepiper.loader import project_imports, project_module_files
        from vibepiper.snapshot import Modules

        files = {n: str(f) for n, f in project_module_files(self.settings).items()}
        holder = {a.name: found.holder[id(a)] for a in found.assets}
        check_holders: dict[str, list[str]] = {}
        if stale is not None:
            files = {**stale.modules.files, **files}
            holder.update((n, stale.modules.holder[n]) for n in kept)
            check_holders.update((n, list(stale.modules.check_holders.get(n, ()))) for n in kept)
        for chk in found.checks:
            check_holders.setdefault(chk.asset, []).append(found.holder[id(chk)])
        return Modules(
            tree=stale.modules.tree if stale else tuple(found.tree),
            files=files,
            imports=project_imports({n: Path(f) for n, f in files.items()}, memo),
            holder=holder,
            check_holders={n: tuple(dict.fromkeys(h)) for n, h in check_holders.items()},
        )

    def _save_snapshot(self, modules: Modules, stale: Snapshot | None) -> None:
        from vibepiper import snapshot
        from vibepiper.loader import sql_files

        files = [self.root / "pyproject.toml", *map(Path, modules.files.values())]
        files += sql_files(self.settings)
        self._files = files
        if not snapshot.enabled():
            return
        listing = [self._listing[n] for n in self.graph.order]
        with contextlib.suppress(OSError):  # a read-only home: every command imports
            snapshot.save(
                self.home,
                self._key,
                files,
                self.graph,
                self.codes,
                listing,
                modules,
                stale.files if stale else None,
                self._schedules,
            )

    def load_code(self, names: Iterable[str] | None = None) -> bool:
        """Import the project's modules if a snapshot stood in for them so far (for
        `names` only: unless every one of them was imported already); whether it did."""
        if self.loaded:
            return False
        from vibepiper.snapshot import stands_in

        # an imported asset's checks are imported with it (see snapshot._affected)
        if names is not None and not any(stands_in(self.graph.assets[n]) for n in names):
            return False
        self._load_fully()
        return True

    def schedules(self) -> list[Schedule]:
        """The schedules of `[tool.vibepiper.schedules]` and of the modules (`schedule()`),
        checked: a UsageError names one that is declared twice or selects nothing."""
        from vibepiper.definitions.schedule import check_selections, combined, parse

        where = str(self.root / "pyproject.toml")
        declared = [s for s, _ in self._schedules]
        found = combined(parse(self.settings.schedules, where), declared, where)
        check_selections(found, self.select, where)
        return found

    def definition_files(self) -> list[Path]:
        """pyproject.toml and the module files the project's definitions come from (an
        edit of one may change them), with the folders of its packages (a module added)."""
        files = list(dict.fromkeys(self._files))
        return files + sorted({f.parent for f in files if f.name == "__init__.py"})

    def list_rows(self, names: Iterable[str]) -> list[dict[str, Any]]:
        """What `vibepiper list` shows for each of `names`."""
        return [self._listing[name] for name in names]

    @property
    def assets(self) -> list[str]:
        """Every asset's name, in dependency order."""
        return list(self.graph.order)

    def select(
        self, select: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None
    ) -> list[str]:
        """The names a selection (SPEC §4) picks, in dependency order."""
        from vibepiper.graph.selection import resolve

        return resolve(self.graph, select, exclude)

    def materialize(
        self,
        select: str | Iterable[str] | None = None,
        *,
        force: bool = False,
        exclude: str | Iterable[str] | None = None,
        fail_fast: bool = False,
        reporter: Reporter | None = None,
        executor: str | None = None,
        workers: int | None = None,
        address: str | None = None,
        cancel: threading.Event | None = None,
        signals: bool = False,
        config: Config | None = None,
        trigger: str = "manual",
        run_id: str | None = None,
        partition: str | None = None,
        partitions: str | None = None,
    ) -> RunResult:
        """Run the selection (default: everything); `result.states` has each final state.

        `executor` is where assets compute: "inprocess" (the default, one at a time),
        "threads", "processes" or "dask" (at `address`, else on a local cluster), with
        `workers` at once; setting `cancel` (a threading.Event) stops the run, and with
        `signals` Ctrl-C and SIGTERM do (as the CLI does). `config` overrides configuration
        values, as `--set` does: `{"orders": {"min_amount": 10}}` (over
        `[tool.vibepiper.config]`, over the functions' defaults). `trigger` is what
        started the run, recorded in `runs.trigger`; `run_id` its id, chosen beforehand
        (by `vibepiper serve`, which records it with the tick that launches the run).
        Of a partitioned asset, it runs the partition `partition`, or those of the range
        `partitions` ("FROM..TO"), or by default every partition up to now (SPEC §7).
        """
        from vibepiper.execution.executors import make_executor
        from vibepiper.execution.run import RunOptions
        from vibepiper.execution.run import materialize as run
        from vibepiper.loader import GraphLoader

        names = self.select(select, exclude)
        keys = keys_for(self.graph, names, partition, partitions)
        ws = self.workspace(config)
        executor, workers = self._executor(executor, workers, address)
        if self.settings.openlineage is not None:
            from vibepiper.reporting.openlineage import Fanout, OpenLineageReporter

            lineage = OpenLineageReporter(self.settings.openlineage, self.graph, self.root.name)
            reporter = Fanout([r for r in (reporter, lineage) if r is not None])

        def load_code(names: list[str]) -> Workspace | None:
            # these will be computed: their code is needed now
            return self.workspace(config) if self.load_code(names) else None

        runner = make_executor(
            executor,
            workers,
            loader=GraphLoader(
                self.root, self.settings.modules, self.home, self.settings.sql_paths
            ),
            store=self.store,
            address=address,
            home=self.home,
        )
        options = RunOptions(
            force=force,
            fail_fast=fail_fast,
            selection=_selection_text(select, exclude),
            pools=self.settings.pools,
            signals=signals,
            trigger=trigger,
            run_id=run_id,
            keys=None if keys is None else {n: tuple(k) for n, k in keys.items()},
        )
        try:
            return run(
                ws,
                names,
                options,
                reporter=reporter,
                executor=runner,
                cancel=cancel,
                load_code=None if self.loaded else load_code,
            )
        finally:
            runner.shutdown(wait=False)

    def _executor(
        self, executor: str | None, workers: int | None, address: str | None
    ) -> tuple[str, int | None]:
        """The executor and worker count a run uses: what was asked, else the project's
        settings; `workers` > 1 with no executor named anywhere means threads."""
        settings = self.settings
        if executor is None:
            if address:
                executor = "dask"
            elif settings.executor != "inprocess":
                executor = settings.executor
            elif (workers or settings.workers or 1) > 1:
                executor = "threads"
            else:
                executor = "inprocess"
        if workers is None and executor != "inprocess":
            workers = settings.workers
        return executor, workers

    def plan(
        self,
        select: str | Iterable[str] | None = None,
        *,
        force: bool = False,
        exclude: str | Iterable[str] | None = None,
        config: Config | None = None,
        partition: str | None = None,
        partitions: str | None = None,
    ) -> dict[str, Verdict]:
        """Each selected asset's verdict as a run (with `config`) would see it now (fresh
        ones are skipped); a partitioned asset's sums up its partitions'."""
        from vibepiper.execution.workspace import check_pools, plan
        from vibepiper.versioning.planner import PlanOptions

        names = self.select(select, exclude)
        keys = keys_for(self.graph, names, partition, partitions)
        check_pools(self.graph, names, self.settings.pools)
        ws = self.workspace(config)
        return plan(ws, names, PlanOptions(force=force), keys=keys).verdicts()

    def status(
        self, select: str | Iterable[str] | None = None, *, config: Config | None = None
    ) -> dict[str, Verdict]:
        """Whether each selected asset is fresh (for a run with `config`); stale also when
        any ancestor is stale."""
        return self._verdicts(self.select(select), config)

    def _verdicts(self, names: list[str], config: Config | None = None) -> dict[str, Verdict]:
        """Each of `names`' verdicts, judged with the whole graph above them in view."""
        from vibepiper.execution.workspace import plan
        from vibepiper.versioning.planner import PlanOptions

        return plan(self.workspace(config), names, PlanOptions(whole_graph=True)).verdicts()

    def neighbourhood(
        self,
        name: str,
        *,
        upstream: bool = True,
        downstream: bool = True,
        depth: int | None = None,
    ) -> Neighbourhood:
        """The assets up and/or down the graph from `name`, with their last state and
        freshness, and the edges between them."""
        from vibepiper.catalog.reads import last_states
        from vibepiper.reporting.lineage import neighbourhood

        self.require_asset(name)
        verdicts = self._verdicts(list(self.graph.order))
        return neighbourhood(
            self.graph,
            name,
            upstream=upstream,
            downstream=downstream,
            depth=depth,
            states=last_states(self.catalog),
            verdicts=verdicts,
        )

    def column_lineage(
        self, name: str, depth: int | None = None
    ) -> list[tuple[str, tuple[ColumnSource, ...]]]:
        """Each column of the SQL asset `name` (as its current data has them) with the
        upstream columns it comes from, traced up through SQL assets (`depth` levels at
        most)."""
        from vibepiper.catalog.reads import column_lineage_rows
        from vibepiper.errors import AssetNotMaterializedError
        from vibepiper.reporting.lineage import column_tree

        self.require_asset(name)
        if not self.graph.assets[name].is_sql:
            raise UsageError(
                f"asset '{name}' is a Python asset: only SQL assets' columns are traced",
                "write it with sql_asset() or as a .sql file to have its column lineage",
            )
        ancestors = self.graph.ancestors(name)
        traced = [a for a in [name, *ancestors] if self.graph.assets[a].is_sql]
        found = column_lineage_rows(self.catalog, traced)
        if name not in found:
            raise AssetNotMaterializedError(
                f"asset '{name}' has no column lineage: it was never materialized, or its "
                "query could not be traced (its run's log says why)",
                f"run `vibepiper materialize {name}`",
            )
        return column_tree(name, found, depth)

    def lineage(
        self,
        name: str,
        *,
        upstream: bool = True,
        downstream: bool = True,
        depth: int | None = None,
    ) -> pd.DataFrame:
        """One row per asset around `name`: its relation to it (self, upstream,
        downstream), group, tags, last state and freshness; `.attrs["edges"]` has the edges."""
        import pandas as pd

        hood = self.neighbourhood(name, upstream=upstream, downstream=downstream, depth=depth)
        above = self.graph.ancestors(name)
        frame = pd.DataFrame(
            [
                {
                    "relation": "self" if n == name else "upstream" if n in above else "downstream",
                    **node,
                }
                for n, node in hood.nodes.items()
            ]
        )
        frame.attrs["edges"] = hood.edges
        return frame

    def data_lineage(self, name: str, version: str) -> Made:
        """The exact input versions, recursively, behind one data version (or a unique
        prefix, or a materialization id) of `name`."""
        from vibepiper.reporting.lineage import data_lineage

        self.require_asset(name)
        return data_lineage(self.catalog, name, version)

    def history(self, name: str, limit: int = 100) -> pd.DataFrame:
        """Materializations of `name`, newest first, with their inputs and check results."""
        import pandas as pd

        from vibepiper.catalog.reads import history_rows

        self.require_asset(name)
        return pd.DataFrame(history_rows(self.catalog, name, limit))

    def runs(self, limit: int = 20) -> pd.DataFrame:
        """The latest runs, newest first, with counts of their assets' final states."""
        import pandas as pd

        from vibepiper.catalog.reads import run_rows

        return pd.DataFrame(run_rows(self.catalog, limit))

    def logs(self, run_id: str = "latest", asset: str | None = None) -> pd.DataFrame:
        """What the assets of a run logged (`run_id` may be a unique prefix, or "latest")."""
        import pandas as pd

        from vibepiper.catalog.reads import log_rows

        if asset is not None:
            self.require_asset(asset)
        return pd.DataFrame(log_rows(self.catalog, run_id, asset)[1])

    def doctor(self, *, repair: bool = False, verify: bool = True) -> Examination:
        """Check the store and the catalog against each other; repair what can be."""
        from vibepiper.execution.doctor import examine
        from vibepiper.execution.turns import run_turn

        self.catalog.ensure()
        if not repair:
            return examine(self.graph, self.store, self.catalog, repair=False, verify=verify)
        with run_turn(self.catalog):  # no run publishes while files are judged and removed
            return examine(self.graph, self.store, self.catalog, repair=True, verify=verify)

    def store_gc(self, *, grace: float, dry_run: bool = False) -> Collection:
        """Remove from the store what no materialization refers to and is older than
        `grace` seconds (with `dry_run`, only say what)."""
        from vibepiper.execution.store_gc import collect

        return collect(self.store, self.catalog, grace=grace, dry_run=dry_run)

    def explain(
        self, name: str, *, config: Config | None = None
    ) -> tuple[Cause, dict[str, Any] | None]:
        """Why `name` is stale or fresh (for a run with `config`; a tree of causes), and
        its last run's row."""
        from vibepiper.catalog.reads import last_run
        from vibepiper.reporting.explain import trace

        self.require_asset(name)
        above = self.graph.sorted(self.graph.ancestors(name) | {name})
        verdicts = self._verdicts(above, config)
        return trace(name, verdicts), last_run(self.catalog, name, self.graph.ancestors(name))

    def check(
        self,
        select: str | Iterable[str] | None = None,
        *,
        exclude: str | Iterable[str] | None = None,
        require_fresh: bool = False,
        config: Config | None = None,
    ) -> AuditResult:
        """Re-validate the current data of the selection without recomputing it (with
        `require_fresh`, also fail what is stale for a run with `config`)."""
        from vibepiper.execution.audit import audit

        self.load_code()
        names = self.select(select, exclude)
        return audit(
            self.workspace(config),
            names,
            require_fresh=require_fresh,
            selection=_selection_text(select, exclude),
        )

    def read(
        self,
        name: str,
        *,
        version: str | None = None,
        rejected: bool = False,
        quarantined: bool = False,
        partition: str | None = None,
    ) -> pd.DataFrame:
        """The current data of asset `name`, or the data at data version `version`.

        `rejected=True`: the latest output that failed its checks (kept, never published);
        `quarantined=True`: the rows quarantine removed from the current data. Of a
        partitioned asset: the current data of `partition`, or by default of every
        partition that has data, concatenated in key order.
        """
        from vibepiper.catalog import reads
        from vibepiper.units import whole

        self.require_asset(name)
        parts = self.graph.assets[name].partitions
        if partition is not None:
            if parts is None:
                raise UsageError(
                    f"asset '{name}' is not partitioned, so it has no partition {partition!r}",
                    "drop --partition",
                )
            parts.check_key(partition, f"asset '{name}'")
        if parts is not None and version is None and not (rejected or quarantined):
            return self._partitions_head(name, partition)[0]
        if rejected:
            mid = reads.rejected_materialization(self.catalog, name)
            return self.store.read_kept(whole(name), mid, "rejected")
        if quarantined:
            mid = reads.quarantined_materialization(self.catalog, name)
            return self.store.read_kept(whole(name), mid, "quarantine")
        if version is None:
            current = self.catalog.current([name]).get(whole(name))
            if current is None:
                raise AssetNotMaterializedError(
                    f"asset '{name}' has never been materialized",
                    f"run `vibepiper materialize {name}`",
                )
            version = current.data_version
        else:
            version = reads.full_version(self.catalog, name, version)
        return self.store.read(whole(name), version)

    def _partitions_head(
        self, name: str, partition: str | None, limit: int | None = None
    ) -> tuple[pd.DataFrame, int]:
        """One partition's current data, or every partition's in key order (the first
        `limit` rows of them, if given: only the partitions those are in are read); and
        how many rows they hold in all."""
        import pandas as pd

        found = self.catalog.current([name])
        if partition is not None:
            current = found.get(Unit(name, partition))
            if current is None:
                raise AssetNotMaterializedError(
                    f"partition {partition} of asset '{name}' has never been materialized",
                    f"run `vibepiper materialize {name} --partition {partition}`",
                )
            frame = self.store.read(current.unit, current.data_version)
            return frame, len(frame)
        parts = self.graph.assets[name].partitions
        assert parts is not None
        keys = current_keys(self.graph, found).get(name, set())
        units = [Unit(name, key) for key in sorted(keys, key=parts.order)]
        if not units:
            raise AssetNotMaterializedError(
                f"no partition of asset '{name}' has been materialized",
                f"run `vibepiper materialize {name}`",
            )
        frames: list[pd.DataFrame] = []
        rows = 0
        for unit in units:
            if limit is not None and rows >= limit and frames:
                break
            frames.append(self.store.read(unit, found[unit].data_version))
            rows += len(frames[-1])
        total = sum(found[unit].row_count or 0 for unit in units)
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        return frame, total

    def head(self, name: str, limit: int, partition: str | None = None) -> tuple[Any, int]:
        """The first `limit` rows of an asset's current data (of a partitioned one: of
        `partition`, or of every partition in key order) and how many rows it has."""
        parts = self.graph.assets.get(name)
        if parts is None or parts.partitions is None or partition is not None:
            frame = self.read(name, partition=partition)
            return frame.head(limit), len(frame)
        frame, total = self._partitions_head(name, None, limit)
        return frame.head(limit), total

    def partitions(self, name: str) -> list[dict[str, Any]]:
        """Each partition of `name` up to now, in key order: its key, status (fresh, stale,
        missing or failed), data version, row count and the reasons (SPEC §7)."""
        from vibepiper.execution.partition_status import partition_rows

        self.require_asset(name)
        if self.graph.assets[name].partitions is None:
            raise UsageError(
                f"asset '{name}' is not partitioned",
                "`vibepiper partitions` lists the partitions of an asset declared with partitions=",
            )
        return partition_rows(self.workspace(), name)

    def query(self, sql: str) -> pd.DataFrame:
        """Read-only SQL over the catalog tables and the assets' current data (as views)."""
        import pandas as pd

        names, rows = self.query_rows(sql)
        return pd.DataFrame.from_records(rows, columns=names)

    def query_rows(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of `sql`, run in the read-only sandbox."""
        from vibepiper.catalog.query import run_query

        assets, quarantine = self._query_files()
        return run_query(self.catalog, assets, sql, quarantine)

    def query_stream(self, sql: str, consume: Any, **options: Any) -> None:
        """Run `sql` in the read-only sandbox and hand its rows to `consume(names, batches)`
        (options: `timeout`, `iso`; see `vibepiper.catalog.query.stream_query`)."""
        from vibepiper.catalog.query import stream_query

        assets, quarantine = self._query_files()
        stream_query(self.catalog, assets, sql, consume, quarantine, **options)

    def _query_files(self) -> tuple[dict[str, Opener], dict[str, Opener]]:
        """How to open each asset's current data, and its quarantined rows, if any."""
        from functools import partial

        from vibepiper.catalog import reads
        from vibepiper.units import whole

        rows = reads.current_data_rows(self.catalog)
        assets: dict[str, Opener] = {}
        quarantine: dict[str, Opener] = {}
        partitioned: dict[str, list[tuple[str, str]]] = {}
        for row in rows:
            name = row["asset"]
            if name not in self.graph.assets:
                continue
            unit, version = whole(name), row["data_version"]
            self.store.location(unit, version)  # a version that is no name of the store's
            if self.graph.assets[name].partitions is not None:
                if row["partition_key"] is not None:
                    partitioned.setdefault(name, []).append((row["partition_key"], version))
                continue
            if row["partition_key"] is not None:
                continue  # left by an earlier, partitioned definition of the asset
            assets[name] = partial(self.store.dataset, unit, version)
            if row["quarantined_rows"]:
                mid = row["materialization_id"]
                quarantine[name] = partial(self.store.kept_dataset, unit, mid, "quarantine")
        for name, found in partitioned.items():
            valid = current_keys(self.graph, [Unit(name, k) for k, _ in found]).get(name, set())
            versions = [v for k, v in found if k in valid]
            assets[name] = partial(_union, self.store, name, versions)
        return assets, quarantine

    def workspace(self, config: Config | None = None) -> Workspace:
        """What commands work on, with the configuration of `[tool.vibepiper.config]` and
        `config` (which wins) applied."""
        from vibepiper.execution.sql_run import EngineSettings
        from vibepiper.execution.workspace import Workspace, configure

        engine = EngineSettings.of(self.settings.sql, self.home, self.root)
        ws = Workspace(self.graph, self.root, self.store, self.catalog, self.codes, engine=engine)
        return configure(ws, self.configuration(config), self._defaults)

    def configuration(self, config: Config | None = None) -> dict[str, dict[str, Any]]:
        """The configuration overrides in effect (asset -> parameter -> value): those of
        pyproject.toml, then `config`; a UsageError names an unknown asset or parameter."""
        from vibepiper.definitions.config import checked, merged

        where = f"{self.root / 'pyproject.toml'}, [tool.vibepiper.config]"
        pyproject = checked(self.settings.config, self._defaults, where)
        return merged(pyproject, checked(config or {}, self._defaults))

    def require_asset(self, name: str) -> None:
        """Raise a SelectionError (with "did you mean") unless `name` is an asset."""
        if name not in self.graph.assets:
            raise SelectionError(
                f"unknown asset {quoted(name)}{did_you_mean(name, self.graph.assets)}",
                "run `vibepiper list` to see the assets",
            )


def snapshot_listing(
    path: str | os.PathLike[str] = ".",
    *,
    modules: Iterable[str] | None = None,
    home: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]] | None:
    """What `Project(...).list_rows(every asset)` gives, read from the project's snapshot
    if it stands whole (nothing imported, no definition rebuilt); None if it does not."""
    from vibepiper import snapshot

    if not snapshot.enabled():
        return None
    settings = load_settings(path, modules, home)
    return snapshot.listing(settings.home, _snapshot_key(settings))


def _snapshot_key(settings: Settings) -> dict[str, Any]:
    """What a snapshot of the project must have been made for. The `.sql` files are part
    of it: one added or removed changes the project's assets."""
    from vibepiper import snapshot
    from vibepiper.loader import sql_files

    listed = [str(f) for f in sql_files(settings)]
    return snapshot.project_key(settings.root, settings.modules, listed)


def _selection_text(
    select: str | Iterable[str] | None, exclude: str | Iterable[str] | None = None
) -> str:
    """The selection as the user typed it, for the `runs` table: `orders+ --exclude stg_*`."""
    words = _words(select) + [f"--exclude {e}" for e in _words(exclude)]
    return " ".join(words)


def _words(given: str | Iterable[str] | None) -> list[str]:
    return [given] if isinstance(given, str) else list(given or [])


def _union(store: Any, name: str, versions: list[str]) -> Any:
    """One dataset over the current files of every partition of `name` (partitions with
    the same data share a file: it counts once per partition that has it), with the
    columns' types unified (an int32 partition and an int64 one read as int64, a column
    of nulls as the others' type)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from vibepiper.units import Unit

    opened = {v: store.dataset(Unit(name), v) for v in dict.fromkeys(versions)}
    found = [d for v in versions if (d := opened[v]) is not None]
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    try:
        schema = pa.unify_schemas(
            [d.schema for d in opened.values() if d is not None], promote_options="permissive"
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise VibePiperError(
            f"the partitions of asset '{name}' have columns of different types "
            f"({str(exc).splitlines()[0][:200]})",
            "make the asset return the same column types for every partition",
        ) from None
    files = [f for d in found for f in d.files]
    return ds.dataset(files, schema=schema, format=found[0].format, filesystem=found[0].filesystem)


def _check_sql_assets(assets: Iterable[AssetDef]) -> None:
    """A DefinitionError for a SQL asset whose schema or expectations have no SQL form
    (its checks run as SQL over its file: SPEC §10)."""
    from vibepiper.validation.sql_checks import sql_problem

    for defn in assets:
        if defn.is_sql:
            problem = sql_problem(f"asset '{defn.name}'", defn.schema, defn.checks)
            if problem:
                raise DefinitionError(problem, "write it as expect.sql(...) over the asset")
