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

    def source_version(self, name: str) -> str:
        """The hash of a source asset's file; a missing file is an error naming it."""
        defn = self.graph.assets[name]
        path = self.project_dir / str(defn.source_path)
        try:
            return self.sources.version(path)
        except FileNotFoundError:
            raise VibePiperError(
                f"source file {defn.source_path} of asset '{name}' does not exist ({path})",
                "create the file, or fix the path given to source_file()",
            ) from None
        except OSError as exc:
            raise VibePiperError(
                f"source file {defn.source_path} of asset '{name}' cannot be read: {exc}",
                "check the file's permissions",
            ) from None

    def observe(self, names: Iterable[str], current: Mapping[Unit, Current]) -> Observed:
        """Everything the planner needs about `names`, looked at now."""
        codes: dict[str, CodeVersion] = {}
        sources: dict[str, str] = {}
        errors: dict[str, VibePiperError] = {}
        stored: dict[Unit, str] = {}
        for name in names:
            codes[name] = self.code(name)
            if self.graph.assets[name].is_source:
                try:
                    sources[name] = self.source_version(name)
                except VibePiperError as exc:
                    errors[name] = exc
                    continue
            cur = current.get(Unit(name))
            if cur is not None:
                stored[Unit(name)] = cur.data_version
        damage = self.store.damage_many(stored)
        self.sources.save()
        return Observed(codes, sources, errors, damage, utcnow())


def utcnow() -> datetime:
    """Now, in UTC without a zone (as the catalog records times; see vibepiper.clock)."""
    return clock.utcnow()
