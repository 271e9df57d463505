"""`vibepiper doctor`: the store and the catalog checked against each other.

Problems it finds:
- `missing`: an asset's current data version has no file in the store;
- `corrupt`: a published file does not read (bad page checksum, truncated, garbage), or
  its content does not hash to the data version it is named after;
- `orphan`: a file in the store that no catalog row refers to (a run that died between
  publishing the file and recording it, or an asset's folder of a project that moved on);
- `temporary`: a temporary file whose writer died;
- `unfinished`: a run still marked `running` whose process on this machine is gone.

With `repair`: unfinished runs are marked `abandoned`; corrupt files are moved aside to
`<asset>/corrupt/` (so the asset is stale and the next run recomputes it, and the bytes are
still there to look at); orphans and dead writers' temporary files are removed. A file
that reads and matches its version is never touched. `--repair` waits for a run of the
project in progress to finish (it takes the run turn), since that run may have published
files it has not recorded yet; should a run of another machine still be marked running,
orphans are only reported.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vibepiper.catalog.catalog import Catalog, run_alive
from vibepiper.graph.graph import Graph
from vibepiper.storage.parquet_store import ParquetStore, content_problem
from vibepiper.text import first_line


@dataclass(frozen=True)
class Finding:
    kind: str  # missing | corrupt | orphan | temporary | unfinished
    detail: str
    asset: str | None = None
    path: str | None = None
    repaired: str = ""  # what --repair did about it

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Examination:
    findings: list[Finding]
    files_checked: int = 0
    note: str = ""  # e.g. why orphans were left alone

    @property
    def healthy(self) -> bool:
        """Nothing is wrong, or everything wrong was repaired."""
        return all(f.repaired for f in self.findings)


def examine(
    graph: Graph, store: ParquetStore, catalog: Catalog, *, repair: bool, verify: bool = True
) -> Examination:
    """Check every file of the store against the catalog (reading each published file
    in full with `verify`, else only its footer); repair what can be, if asked."""
    found: list[Finding] = []
    runs = catalog.fetch("SELECT run_id, pid, host, started_at FROM runs WHERE status = 'running'")
    here = socket.gethostname()
    dead = [
        r["run_id"] for r in runs if r["host"] == here and not run_alive(r["pid"], r["started_at"])
    ]
    live = [r for r in runs if r["run_id"] not in dead]
    if dead:
        abandoned = set(catalog.abandon_dead_runs()) if repair else set()
        found += [
            Finding(
                "unfinished",
                f"run {run_id} is still marked running, but its process is gone",
                repaired="marked abandoned" if run_id in abandoned else "",
            )
            for run_id in dead
        ]
    published = {
        (r["asset"], r["data_version"])
        for r in catalog.fetch(
            "SELECT DISTINCT asset, data_version FROM materializations "
            "WHERE data_version IS NOT NULL AND status IN ('succeeded', 'skipped')"
        )
    }
    known_ids = {
        r["materialization_id"]
        for r in catalog.fetch("SELECT materialization_id FROM materializations")
    }
    current = catalog.current()
    exam = Examination(found)
    for name, cur in sorted(current.items()):
        path = store.path_for(name, cur.data_version)
        if not path.is_file():
            found.append(
                Finding(
                    "missing",
                    f"the current data of asset '{name}' ({cur.data_version[:12]}) is not "
                    "in the store; the next materialize recomputes it",
                    name,
                    str(path),
                    repaired="stale (recomputed by the next run)" if repair else "",
                )
            )
    sources = {n for n, d in graph.assets.items() if d.is_source}
    may_remove = repair and not live
    if repair and live:
        exam.note = (
            f"orphans were left alone: run {live[0]['run_id']} is in progress and may have "
            "published files it has not recorded yet"
        )
    for folder in sorted(p for p in _children(store.root) if p.is_dir()):
        name = folder.name
        for path in sorted(folder.glob("*.parquet")):
            version = path.name.removesuffix(".parquet")
            if (name, version) not in published:
                found.append(_orphan(name, path, may_remove))
                continue
            exam.files_checked += 1
            problem = _problem(path, version, name in sources, verify)
            if problem:
                found.append(_corrupt(name, path, version, problem, repair))
        for kind in ("rejected", "quarantine"):
            for path in sorted((folder / kind).glob("*.parquet")):
                if path.stem not in known_ids:
                    found.append(_orphan(name, path, may_remove))
        for temp in store.dead_temp_files(folder):  # not those being written right now
            if repair:
                temp.unlink(missing_ok=True)
            found.append(
                Finding(
                    "temporary",
                    "a temporary file left by a writer that died",
                    name,
                    str(temp),
                    repaired="removed" if repair else "",
                )
            )
    return exam


def _children(root: Path) -> list[Path]:
    return list(root.iterdir()) if root.is_dir() else []


def _problem(path: Path, version: str, source: bool, verify: bool) -> str:
    """What is wrong with a published file, or ""."""
    import pyarrow.parquet as pq

    try:
        if not verify:
            pq.read_metadata(path)
            return ""
        table = pq.read_table(path, page_checksum_verification=True)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        return f"unreadable: {type(exc).__name__}: {first_line(exc)}"
    # a source's file is named after the source file's hash, not its content's: without
    # the content recorded in the file (older files), reading it is the test
    return content_problem(table, None if source else version)


def _orphan(name: str, path: Path, remove: bool) -> Finding:
    if remove:
        path.unlink(missing_ok=True)
    return Finding(
        "orphan",
        "a file no catalog row refers to",
        name,
        str(path),
        repaired="removed" if remove else "",
    )


def _corrupt(name: str, path: Path, version: str, problem: str, repair: bool) -> Finding:
    repaired = ""
    if repair:
        aside = path.parent / "corrupt" / path.name
        aside.parent.mkdir(exist_ok=True)
        os.replace(path, aside)
        repaired = f"moved to {aside}; the asset is stale if this was its current data"
    return Finding(
        "corrupt",
        f"stored data of asset '{name}' ({version[:12]}) is corrupt: {problem}",
        name,
        str(path),
        repaired=repaired,
    )
