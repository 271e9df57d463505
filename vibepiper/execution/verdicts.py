"""Deciding, for one run, whether each asset is fresh: its code version, its source
file's version and the verdict, each computed once per asset and run."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from vibepiper.errors import VibePiperError
from vibepiper.graph.graph import Graph
from vibepiper.storage.parquet_store import ParquetStore
from vibepiper.versioning.fingerprint import CodeVersion, Fingerprinter
from vibepiper.versioning.freshness import Current, Verdict, judge
from vibepiper.versioning.source_cache import SourceHashes


class Judge:
    """Code versions, source versions and verdicts for the assets of one run."""

    def __init__(
        self,
        graph: Graph,
        store: ParquetStore,
        project_dir: Path,
        home: Path,
        codes: dict[str, CodeVersion] | None = None,
    ) -> None:
        self.graph = graph
        self.store = store
        self.project_dir = project_dir
        self.sources = SourceHashes(home / "source-hashes.json")
        self.fingerprints = Fingerprinter()
        self._codes = {} if codes is None else codes  # shared with the caller: filled here

    def code(self, name: str) -> CodeVersion:
        if name not in self._codes:
            checks = self.graph.checks.get(name, ())
            self._codes[name] = self.fingerprints.code_version(self.graph.assets[name], checks)
        return self._codes[name]

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

    def verdict(
        self,
        name: str,
        current: Mapping[str, Current],
        inputs: Mapping[str, str | None],
        now: datetime,
        checked: Mapping[str, str | None] | None = None,
    ) -> Verdict:
        """`checked`: the data version of each other asset its checks read, now."""
        defn = self.graph.assets[name]
        names = self.graph.check_reads.get(name, {})
        check_reads = {
            other: ((checked or {}).get(other), checks) for other, checks in names.items()
        }
        cur = current.get(name)
        source = (str(defn.source_path), self.source_version(name)) if defn.is_source else None
        return judge(
            cur,
            code=self.code(name),
            inputs=inputs,
            file_problem=self.store.damage(name, cur.data_version) if cur else "missing",
            source=source,
            max_age=defn.max_age,
            now=now,
            check_reads=check_reads,
        )

    def save(self) -> None:
        self.sources.save()
