"""`vibepiper doctor`: the store and the catalog checked against each other.

Problems it finds:
- `missing`: an asset's current data version has no file in the store;
- `missing`: also when the catalog's current data version is not one (edited by hand);
- `corrupt`: a published file does not read (bad page checksum, truncated, garbage, not
  a regular file), its content does not hash to the data version it is named after, or
  it records another asset or version (a valid file copied over it);
- `orphan`: a file in the store that no catalog row refers to (a run that died between
  publishing the file and recording it, or an asset's folder of a project that moved on);
- `temporary`: a temporary file whose writer died;
- `unfinished`: a run still marked `running` whose process on this machine is gone;
- `link`: a symbolic link in the store (an asset's folder, a file), never looked or
  cleaned through: it leads out of the store.

With `repair`: unfinished runs are marked `abandoned`; corrupt files are moved aside to
`<asset>/corrupt/` (so the asset is stale and the next run recomputes it, and the bytes are
still there to look at); orphans and dead writers' temporary files are removed. A file
that reads and matches its version is never touched. `--repair` waits for a run of the
project in progress to finish (it takes the run turn), since that run may have published
files it has not recorded yet; should a run of another machine still be marked running,
orphans are only reported, as they are for an asset whose current data version in the
catalog is invalid (one may be its real data). If the store itself is a symbolic link,
nothing is removed or moved.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vibepiper.catalog.catalog import Catalog, run_alive
from vibepiper.errors import StoreError
from vibepiper.graph.graph import Graph
from vibepiper.storage.parquet_store import (
    NotAFileError,
    ParquetStore,
    content_problem,
    identity_problem,
    move_aside,
    open_regular,
)
from vibepiper.text import first_line, quoted


@dataclass(frozen=True)
class Finding:
    kind: str  # missing | corrupt | orphan | temporary | unfinished | link
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
    exam = Examination([])
    live = _runs(catalog, exam.findings, repair)
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
    suspect = _current_files(store, catalog, exam.findings, repair)
    sources = {n for n, d in graph.assets.items() if d.is_source}
    notes = []
    if repair and live:
        notes.append(
            f"orphans were left alone: run {live[0]['run_id']} is in progress and may have "
            "published files it has not recorded yet"
        )
    if store.root.is_symlink():
        repair = False
        notes.append(
            f"nothing was changed: the store {store.root} is a symbolic link (to "
            f"{os.readlink(store.root)}), and doctor never removes or moves files through one"
        )
    if suspect and repair:
        notes.append(
            f"orphans of {', '.join(map(quoted, sorted(suspect)))} were left alone: the "
            "catalog records an invalid current data version, and one may be the real data"
        )
    exam.note = "; ".join(notes)
    scan = _Scan(exam, store, repair, repair and not live, published, known_ids, sources)
    for entry in sorted(_children(store.root)):
        if entry.is_symlink():
            exam.findings.append(_link(None, entry))
        elif entry.is_dir():
            scan.folder(entry, verify, keep_orphans=entry.name in suspect)
    return exam


def _runs(catalog: Catalog, found: list[Finding], repair: bool) -> list[dict[str, Any]]:
    """Report (and with `repair`, mark abandoned) the runs marked running whose process is
    gone; return the runs still going on."""
    runs = catalog.fetch("SELECT run_id, pid, host, started_at FROM runs WHERE status = 'running'")
    here = socket.gethostname()
    dead = [
        r["run_id"] for r in runs if r["host"] == here and not run_alive(r["pid"], r["started_at"])
    ]
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
    return [r for r in runs if r["run_id"] not in dead]


def _current_files(
    store: ParquetStore, catalog: Catalog, found: list[Finding], repair: bool
) -> set[str]:
    """Report each asset whose current data is not in the store (or whose current data
    version is not one: a catalog edited by hand); return the latter assets."""
    stale = "stale (recomputed by the next run)" if repair else ""
    suspect = set()
    for name, cur in sorted(catalog.current().items()):
        try:
            path = store.path_for(name, cur.data_version)
        except StoreError as exc:
            suspect.add(name)
            detail = f"{exc.message} (the catalog was edited by hand or is damaged)"
            found.append(Finding("missing", detail, name, repaired=stale))
            continue
        if not os.path.lexists(path):  # something else in its place: the scan judges it
            found.append(
                Finding(
                    "missing",
                    f"the current data of asset '{name}' ({cur.data_version[:12]}) is not "
                    "in the store; the next materialize recomputes it",
                    name,
                    str(path),
                    repaired=stale,
                )
            )
    return suspect


@dataclass
class _Scan:
    """The files of the store's asset folders, judged (and repaired) one folder at a time."""

    exam: Examination
    store: ParquetStore
    repair: bool
    may_remove: bool  # orphans: not while a run may publish files it has not recorded yet
    published: set[tuple[str, str]]
    known_ids: set[str]
    sources: set[str]

    def folder(self, folder: Path, verify: bool, *, keep_orphans: bool) -> None:
        found, name = self.exam.findings, folder.name
        remove = self.may_remove and not keep_orphans
        for path in sorted(folder.glob("*.parquet")):
            version = path.name.removesuffix(".parquet")
            if path.is_symlink():
                found.append(_link(name, path))
            elif (name, version) not in self.published:
                found.append(_orphan(name, path, remove))
            else:
                self.exam.files_checked += 1
                problem = _problem(path, name, version, name in self.sources, verify)
                if problem:
                    found.append(_corrupt(name, path, version, problem, self.repair))
        for kind in ("rejected", "quarantine"):
            kept = folder / kind
            if kept.is_symlink():
                found.append(_link(name, kept))
                continue
            for path in sorted(kept.glob("*.parquet")):
                if path.is_symlink():
                    found.append(_link(name, path))
                elif path.stem not in self.known_ids:
                    found.append(_orphan(name, path, remove))
        for temp in self.store.dead_temp_files(folder):  # not those being written right now
            if self.repair:
                temp.unlink(missing_ok=True)
            found.append(
                Finding(
                    "temporary",
                    "a temporary file left by a writer that died",
                    name,
                    str(temp),
                    repaired="removed" if self.repair else "",
                )
            )


def _children(root: Path) -> list[Path]:
    return list(root.iterdir()) if root.is_dir() else []


def _problem(path: Path, name: str, version: str, source: bool, verify: bool) -> str:
    """What is wrong with a published file, or ""."""
    import pyarrow.parquet as pq

    try:
        os.close(open_regular(path))  # a FIFO in its place would block a read forever
        if not verify:
            return identity_problem(pq.read_metadata(path).metadata, name, version)
        table = pq.read_table(path, page_checksum_verification=True)
    except NotAFileError:
        return "it is not a regular file"
    except Exception as exc:  # pyarrow raises several types for corrupt files
        return f"unreadable: {type(exc).__name__}: {first_line(exc)}"
    # a source's file is named after the source file's hash, not its content's: without
    # the content recorded in the file (older files), reading it is the test
    return content_problem(table, None if source else version) or identity_problem(
        table.schema.metadata, name, version
    )


def _link(name: str | None, path: Path) -> Finding:
    return Finding(
        "link",
        f"a symbolic link in the store (to {os.readlink(path)}); doctor neither looks nor "
        "cleans through links: replace it with what it points to, or remove it",
        name,
        str(path),
    )


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
        try:
            aside = move_aside(path)
        except OSError as exc:
            problem += f" (not moved aside: {first_line(exc)})"
        else:
            repaired = f"moved to {aside}; the asset is stale if this was its current data"
    return Finding(
        "corrupt",
        f"stored data of asset '{name}' ({version[:12]}) is corrupt: {problem}",
        name,
        str(path),
        repaired=repaired,
    )
