"""What the planner needs to know of the world besides the catalog: each asset's code
version, each source file's hash and the state of each stored file, looked at once per
command (`versioning.planner` decides from them, without I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

from vibepiper import clock
from vibepiper.errors import VibePiperError
from vibepiper.graph.graph import Graph
from vibepiper.storage.store import Store
from vibepiper.units import Unit
from vibepiper.versioning.fingerprint import CodeVersion, Fingerprinter
from vibepiper.versioning.freshness import Current
from vibepiper.versioning.planner import Observed
from vibepiper.versioning.source_cache import SourceHashes


class Observer:
    """Code versions (kept in `codes`, shared with the caller), source hashes (remembered
    under the project home) and stored files' damage."""

    def __init__(
        self,
        graph: Graph,
        store: Store,
        project_dir: Path,
        home: Path,
        codes: dict[str, CodeVersion] | None = None,
    ) -> None:
        self.graph = graph
        self.store = store
        self.project_dir = project_dir
        self.sources = SourceHashes(home / "source-hashes.json")
        self.fingerprints = Fingerprinter()
        self.codes = {} if codes is None else codes

    def code(self, name: str) -> CodeVersion:
        if name not in self.codes:
            checks = self.graph.checks.get(name, ())
            self.codes[name] = self.fingerprints.code_version(self.graph.assets[name], checks)
        return self.codes[name]

    def source_version(self, unit: Unit) -> str:
        """The hash of a source unit's file; a missing file is an error naming it."""
        defn = self.graph.assets[unit.asset]
        shown = defn.source_path_of(unit.partition)
        path = self.project_dir / shown
        try:
            return self.sources.version(path)
        except FileNotFoundError:
            what = f"partition {unit.partition} of asset" if unit.partition else "asset"
            raise VibePiperError(
                f"source file {shown} of {what} '{unit.asset}' does not exist ({path})",
                "create the file, or fix the path given to source_file()",
            ) from None
        except OSError as exc:
            raise VibePiperError(
                f"source file {shown} of asset '{unit.asset}' cannot be read: {exc}",
                "check the file's permissions",
            ) from None

    def observe(
        self, units: Iterable[Unit], current: Mapping[Unit, Current], now: datetime | None = None
    ) -> Observed:
        """Everything the planner needs about `units`, looked at `now` (default: now)."""
        codes: dict[str, CodeVersion] = {}
        sources: dict[Unit, str] = {}
        errors: dict[Unit, VibePiperError] = {}
        stored: dict[Unit, str] = {}
        for unit in units:
            name = unit.asset
            if name not in codes:
                codes[name] = self.code(name)
            if self.graph.assets[name].is_source:
                try:
                    sources[unit] = self.source_version(unit)
                except VibePiperError as exc:
                    errors[unit] = exc
                    continue
            cur = current.get(unit)
            if cur is not None:
                stored[unit] = cur.data_version
        damage = self.store.damage_many(stored)
        self.sources.save()
        return Observed(codes, sources, errors, damage, now or utcnow())


def utcnow() -> datetime:
    """Now, in UTC without a zone (as the catalog records times; see vibepiper.clock)."""
    return clock.utcnow()
