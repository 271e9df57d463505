"""Loading a project (its settings and asset modules), and the Python API: `Project`."""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import sys
import tomllib
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from vibepiper.definitions.asset import AssetDef
from vibepiper.definitions.check import CheckDef
from vibepiper.errors import (
    AssetNotMaterializedError,
    DefinitionError,
    ProjectLoadError,
    SelectionError,
    did_you_mean,
)
from vibepiper.graph.graph import Graph

if TYPE_CHECKING:
    import pandas as pd

    from vibepiper.execution.audit import AuditResult
    from vibepiper.execution.scheduler import Reporter, RunResult, Workspace
    from vibepiper.reporting.explain import Cause
    from vibepiper.reporting.lineage import Made, Neighbourhood
    from vibepiper.versioning.freshness import Verdict


@dataclass(frozen=True)
class Settings:
    """`[tool.vibepiper]` of a project's pyproject.toml, after command-line overrides."""

    root: Path
    modules: tuple[str, ...]
    home: Path


def load_settings(
    path: str | os.PathLike[str] = ".",
    modules: Iterable[str] | None = None,
    home: str | os.PathLike[str] | None = None,
) -> Settings:
    root = Path(path).resolve()
    if not root.is_dir():
        raise ProjectLoadError(
            f"project folder {path} does not exist", "pass --project DIR with an existing folder"
        )
    table = _tool_table(root / "pyproject.toml")
    names = tuple(modules or ()) or tuple(table.get("modules", ()))
    if not names:
        raise ProjectLoadError(
            f"no asset modules for the project in {root}",
            'set modules = ["my_assets"] under [tool.vibepiper] in pyproject.toml, '
            "or pass -m MODULE",
        )
    for name in names:
        if not isinstance(name, str) or not all(p.isidentifier() for p in name.split(".")):
            raise ProjectLoadError(
                f"module name {name!r} is not valid",
                "give a dotted Python module name such as shop.assets",
            )
    home_dir = home or os.environ.get("VIBEPIPER_HOME") or table.get("home") or ".vibepiper"
    return Settings(root, names, (root / home_dir).resolve())


def _tool_table(pyproject: Path) -> dict[str, Any]:
    if not pyproject.is_file():
        return {}
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProjectLoadError(
            f"{pyproject} is not valid TOML: {exc}", "fix the file's syntax"
        ) from None
    table = data.get("tool", {}).get("vibepiper", {})
    if not isinstance(table, dict):
        raise ProjectLoadError(
            f"[tool.vibepiper] in {pyproject} is not a table",
            "write it as a [tool.vibepiper] section",
        )
    return table


def load_definitions(settings: Settings) -> tuple[list[AssetDef], list[CheckDef]]:
    """Import the project's modules (and their submodules) and collect their definitions."""
    root = str(settings.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    importlib.invalidate_caches()
    _forget_project_modules(settings)
    assets: dict[int, AssetDef] = {}
    checks: dict[int, CheckDef] = {}
    for name in settings.modules:
        for module in _import_tree(name, settings.root):
            for value in _definitions_in(module):
                target: dict[int, Any] = assets if isinstance(value, AssetDef) else checks
                target.setdefault(id(value), value)
    return list(assets.values()), list(checks.values())


def _import_tree(name: str, root: Path) -> Iterator[ModuleType]:
    module = _import(name, root)
    yield module
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=f"{name}."):
        yield _import(info.name, root)


def _project_modules(settings: Settings) -> Iterator[tuple[str, Path | None]]:
    """Imported modules that belong to the project: listed in its settings, or loaded from
    a file under its folder that is not part of an installed package (nor VibePiper)."""
    root = str(settings.root) + os.sep
    installed = tuple(os.path.join(p, "") for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
    for name, module in list(sys.modules.items()):
        if name == "__main__" or name.partition(".")[0] == "vibepiper":
            continue
        path = getattr(module, "__file__", None) or ""
        ours = path.startswith(root) and not path.startswith(installed)
        if ours and "site-packages" not in path:
            yield name, Path(path)
        elif any(name == m or name.startswith(f"{m}.") for m in settings.modules):
            yield name, None


def _forget_project_modules(settings: Settings) -> None:
    """Drop the project's modules from the import cache, so its current code is loaded.

    Done once per load, before any import: a module imported by a sibling during this
    load is then reused, not imported twice (which would define its assets twice).
    """
    for name, _ in _project_modules(settings):
        del sys.modules[name]


def _import(name: str, root: Path) -> ModuleType:
    try:
        return importlib.import_module(name)
    except DefinitionError as exc:
        raise type(exc)(f"{exc.message} (in module {name})", exc.hint) from None
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(f"{exc.name}.")):
            raise ProjectLoadError(
                f"module '{name}' was not found in {root}",
                "check [tool.vibepiper] modules in pyproject.toml, or --project/-m",
            ) from None
        raise ProjectLoadError(
            f"module '{name}' failed to import: {_describe(exc, root)}",
            "fix the error in that module",
        ) from None
    except Exception as exc:
        raise ProjectLoadError(
            f"module '{name}' failed to import: {_describe(exc, root)}",
            "fix the error in that module",
        ) from None


def _describe(exc: BaseException, root: Path) -> str:
    where = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.startswith(str(root)):
            where = f" ({os.path.relpath(frame.filename, root)}:{frame.lineno})"
            break
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}{where}"


def _project_files(settings: Settings) -> list[Path]:
    """pyproject.toml and the file of every imported module of the project."""
    modules = [path for _, path in _project_modules(settings) if path is not None]
    return [settings.root / "pyproject.toml", *modules]


def _definitions_in(module: ModuleType) -> Iterator[AssetDef | CheckDef]:
    for value in vars(module).values():
        if isinstance(value, AssetDef | CheckDef):
            yield value
        elif isinstance(value, list | tuple | dict):  # assets built by a factory in a loop
            items = value.values() if isinstance(value, dict) else value
            yield from (v for v in items if isinstance(v, AssetDef | CheckDef))


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
        self.store = ParquetStore(self.home / "store")
        self.catalog = Catalog(self.home)
        self._key = snapshot.project_key(self.root, self.settings.modules)
        found = snapshot.load(self.home, self._key) if snapshot.enabled() else None
        if found is None:
            self._load_fully()
        else:
            self.graph, self.codes, self._listing = found.graph, found.codes, found.listing
            self.loaded = False

    def _load_fully(self) -> None:
        """Import the project's modules, and save a snapshot of what they define."""
        from vibepiper import snapshot
        from vibepiper.reporting.listing import asset_rows
        from vibepiper.versioning.fingerprint import Fingerprinter

        assets, checks = load_definitions(self.settings)
        files = _project_files(self.settings)
        self.graph = Graph.build(assets, checks)
        self.loaded = True
        fingerprints = Fingerprinter()
        self.codes = {
            name: fingerprints.code_version(defn, self.graph.checks.get(name, ()))
            for name, defn in self.graph.assets.items()
        }
        rows = asset_rows(self.graph, self.graph.order)
        self._listing = {row["name"]: row for row in rows}
        if snapshot.enabled():
            # A read-only home only means that every command imports the modules.
            with contextlib.suppress(OSError):
                snapshot.save(self.home, self._key, files, self.graph, self.codes, rows)

    def _need_code(self) -> None:
        if not self.loaded:
            self._load_fully()

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
    ) -> RunResult:
        """Run the selection (default: everything); `result.states` has each final state."""
        from vibepiper.execution.scheduler import Scheduler

        names = self.select(select, exclude)
        text = " ".join([select] if isinstance(select, str) else select or [])
        if not self.loaded and (force or not all(v.fresh for v in self.plan(names).values())):
            self._load_fully()  # something will be computed: its code is needed now
        return Scheduler(self.workspace(), reporter).run(
            names, force=force, fail_fast=fail_fast, selection=text
        )

    def plan(
        self,
        select: str | Iterable[str] | None = None,
        *,
        force: bool = False,
        exclude: str | Iterable[str] | None = None,
    ) -> dict[str, Verdict]:
        """Each selected asset's verdict as a run would see it now (fresh ones are skipped)."""
        from vibepiper.execution.scheduler import Scheduler

        return Scheduler(self.workspace()).plan(self.select(select, exclude), force=force)

    def status(self, select: str | Iterable[str] | None = None) -> dict[str, Verdict]:
        """Whether each selected asset is fresh; stale also when any ancestor is stale."""
        from vibepiper.execution.scheduler import Scheduler

        return Scheduler(self.workspace()).plan(self.select(select), whole_graph=True)

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
        from vibepiper.execution.scheduler import Scheduler
        from vibepiper.reporting.lineage import last_states, neighbourhood

        self._check_known(name)
        verdicts = Scheduler(self.workspace()).plan(list(self.graph.order), whole_graph=True)
        return neighbourhood(
            self.graph,
            name,
            upstream=upstream,
            downstream=downstream,
            depth=depth,
            states=last_states(self.catalog),
            verdicts=verdicts,
        )

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

        self._check_known(name)
        return data_lineage(self.catalog, name, version)

    def history(self, name: str, limit: int = 100) -> pd.DataFrame:
        """Materializations of `name`, newest first, with their inputs and check results."""
        import pandas as pd

        from vibepiper.reporting.listing import history_rows

        return pd.DataFrame(history_rows(self, name, limit))

    def explain(self, name: str) -> tuple[Cause, dict[str, Any] | None]:
        """Why `name` is stale or fresh (a tree of causes), and its last run's row."""
        from vibepiper.execution.scheduler import Scheduler
        from vibepiper.reporting.explain import last_run, trace

        self._check_known(name)
        scope = self.graph.sorted(self.graph.ancestors(name) | {name})
        verdicts = Scheduler(self.workspace()).plan(scope, whole_graph=True)
        return trace(name, verdicts), last_run(self.catalog, self.graph, name)

    def check(
        self,
        select: str | Iterable[str] | None = None,
        *,
        exclude: str | Iterable[str] | None = None,
        require_fresh: bool = False,
    ) -> AuditResult:
        """Re-validate the current data of the selection without recomputing it."""
        from vibepiper.execution.audit import audit

        self._need_code()
        text = " ".join([select] if isinstance(select, str) else select or [])
        names = self.select(select, exclude)
        return audit(self.workspace(), names, require_fresh=require_fresh, selection=text)

    def read(
        self,
        name: str,
        *,
        version: str | None = None,
        rejected: bool = False,
        quarantined: bool = False,
    ) -> pd.DataFrame:
        """The current data of asset `name`, or the data at data version `version`.

        `rejected=True`: the latest output that failed its checks (kept, never published);
        `quarantined=True`: the rows quarantine removed from the current data.
        """
        self._check_known(name)
        if rejected or quarantined:
            return self._read_kept(name, rejected)
        if version is None:
            current = self.catalog.current([name]).get(name)
            if current is None:
                raise AssetNotMaterializedError(
                    f"asset '{name}' has never been materialized",
                    f"run `vibepiper materialize {name}`",
                )
            version = current.data_version
        else:
            version = self._full_version(name, version)
        return self.store.read(self.store.path_for(name, version), name)

    def query(self, sql: str) -> pd.DataFrame:
        """Read-only SQL over the catalog tables and the assets' current data (as views)."""
        import pandas as pd

        names, rows = self.query_rows(sql)
        return pd.DataFrame.from_records(rows, columns=names)

    def query_rows(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of `sql`, run in the read-only sandbox."""
        from vibepiper.catalog.query import run_query

        rows = self.catalog.fetch(
            "SELECT asset, materialization_id, data_version, quarantined_rows "
            "FROM current_materializations"
        )
        assets, quarantine = {}, {}
        for row in rows:
            name = row["asset"]
            if name not in self.graph.assets:
                continue
            path = self.store.path_for(name, row["data_version"])
            if path.is_file():
                assets[name] = path
            kept = self.store.quarantine_path(name, row["materialization_id"])
            if row["quarantined_rows"] and kept.is_file():
                quarantine[name] = kept
        return run_query(self.catalog, assets, sql, quarantine)

    def _read_kept(self, name: str, rejected: bool) -> pd.DataFrame:
        if rejected:
            sql = (
                "SELECT materialization_id FROM materializations WHERE asset = ? AND "
                "status = 'check_failed' AND data_version IS NOT NULL "
                "ORDER BY finished_at DESC LIMIT 1"
            )
            what = "no rejected output"
        else:
            sql = (
                "SELECT materialization_id FROM current_materializations WHERE asset = ? "
                "AND quarantined_rows > 0"
            )
            what = "no quarantined rows in its current data"
        rows = self.catalog.fetch(sql, [name])
        if not rows:
            raise AssetNotMaterializedError(
                f"asset '{name}' has {what}", f"see `vibepiper history {name}`"
            )
        mid = str(rows[0]["materialization_id"])
        kept = self.store.rejected_path if rejected else self.store.quarantine_path
        return self.store.read(kept(name, mid), name)

    def workspace(self) -> Workspace:
        from vibepiper.execution.scheduler import Workspace

        return Workspace(self.graph, self.root, self.store, self.catalog, self.codes)

    def _check_known(self, name: str) -> None:
        if name not in self.graph.assets:
            raise SelectionError(
                f"unknown asset '{name}'{did_you_mean(name, self.graph.assets)}",
                "run `vibepiper list` to see the assets",
            )

    def _full_version(self, name: str, prefix: str) -> str:
        """Expand a (possibly abbreviated) data version recorded for `name`."""
        rows = self.catalog.fetch(
            "SELECT DISTINCT data_version FROM materializations WHERE asset = ? "
            "AND status = 'succeeded' AND starts_with(data_version, ?)",
            [name, prefix],
        )
        if len(rows) == 1:
            return str(rows[0]["data_version"])
        if not rows:
            raise AssetNotMaterializedError(
                f"asset '{name}' has no data version {prefix!r}",
                f"see its versions with `vibepiper history {name}`",
            )
        raise AssetNotMaterializedError(
            f"data version {prefix!r} of asset '{name}' is ambiguous ({len(rows)} match)",
            "give more characters of it",
        )
