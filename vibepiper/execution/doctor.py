"""`vibepiper doctor`: the store and the catalog checked against each other.

It speaks only the `Store` interface: what the store holds comes from `entries()`, and
it is judged, removed or set aside through the store, whatever kind of store it is.

Problems it finds:
- `missing`: an asset's current data version has no file in the store;
- `missing`: also when the catalog's current data version is not one (edited by hand);
- `corrupt`: a published file does not read (bad page checksum, truncated, garbage, not
  a regular file), its content does not hash to the data version it is named after, or
  it records another asset or version (a valid file copied over it);
- `orphan`: a file in the store that no catalog row refers to (a run that died between
  publishing the file and recording it, or an asset's folder of a project that moved on);
- `temporary`: a temporary file whose writer died (an object store: an unfinished upload);
- `unfinished`: a run still marked `running` whose process on this machine is gone;
- `link`: a symbolic link in the store (an asset's folder, a file), never looked or
  cleaned through: it leads out of the store (what the store lists as "foreign").

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

import socket
from dataclasses import asdict, dataclass
from typing import Any

from vibepiper.catalog import reads
from vibepiper.catalog.catalog import Catalog, run_alive
from vibepiper.errors import StoreError
from vibepiper.graph.graph import Graph
from vibepiper.storage.store import Entry, Store
from vibepiper.text import first_line, quoted
from vibepiper.units import whole


@dataclass(frozen=True)
class Finding:
    kind: str  # missing | corrupt | orphan | temporary | unfinished | link | foreign
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
    graph: Graph, store: Store, catalog: Catalog, *, repair: bool, verify: bool = True
) -> Examination:
    """Check everything in the store against the catalog (reading all published data in
    full with `verify`, else only its metadata); repair what can be, if asked."""
    exam = Examination([])
    live = _runs(catalog, exam.findings, repair)
    published = reads.published_versions(catalog)
    known_ids = reads.materialization_ids(catalog)
    suspect = _current_data(store, catalog, exam.findings, repair)
    sources = {n for n, d in graph.assets.items() if d.is_source}
    notes = []
    if repair and live:
        notes.append(
            f"orphans were left alone: run {live[0]['run_id']} is in progress and may have "
            "published files it has not recorded yet"
        )
    linked = store.is_linked()
    if linked:
        repair = False
        notes.append(
            f"nothing was changed: {linked}, and doctor never removes or moves files through one"
        )
    if suspect and repair:
        notes.append(
            f"orphans of {', '.join(map(quoted, sorted(suspect)))} were left alone: the "
            "catalog records an invalid current data version, and one may be the real data"
        )
    exam.note = "; ".join(notes)
    scan = _Scan(exam, store, repair, repair and not live, published, known_ids, sources, suspect)
    for entry in store.entries():
        scan.judge(entry, verify)
    return exam


def _runs(catalog: Catalog, found: list[Finding], repair: bool) -> list[dict[str, Any]]:
    """Report (and with `repair`, mark abandoned) the runs marked running whose process is
    gone; return the runs still going on."""
    runs = reads.running_runs(catalog)
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


def _current_data(store: Store, catalog: Catalog, found: list[Finding], repair: bool) -> set[str]:
    """Report each asset whose current data is not in the store (or whose current data
    version is not one: a catalog edited by hand); return the latter assets."""
    stale = "stale (recomputed by the next run)" if repair else ""
    suspect = set()
    for cur in sorted(catalog.current().values(), key=lambda c: (c.asset, c.partition)):
        name, unit = cur.asset, cur.unit
        what = f"partition {unit.partition} of asset" if unit.partition else "asset"
        try:
            where = store.location(unit, cur.data_version)
        except StoreError as exc:
            suspect.add(name)
            detail = f"{exc.message} (the catalog was edited by hand or is damaged)"
            found.append(Finding("missing", detail, name, repaired=stale))
            continue
        if store.damage(unit, cur.data_version) == "missing":  # else the scan judges it
            found.append(
                Finding(
                    "missing",
                    f"the current data of {what} '{name}' ({cur.data_version[:12]}) is not "
                    "in the store; the next materialize recomputes it",
                    name,
                    where,
                    repaired=stale,
                )
            )
    return suspect


@dataclass
class _Scan:
    """What the store holds, judged (and repaired) one entry at a time."""

    exam: Examination
    store: Store
    repair: bool
    may_remove: bool  # orphans: not while a run may publish files it has not recorded yet
    published: set[tuple[str, str]]
    known_ids: set[str]
    sources: set[str]
    suspect: set[str]  # assets whose orphans may be their real data

    def judge(self, entry: Entry, verify: bool) -> None:
        found, name = self.exam.findings, entry.unit.asset if entry.unit else None
        if entry.kind == "foreign" or name is None:
            found.append(_foreign(name, entry))
        elif entry.kind == "temporary":
            # (an object store's unfinished upload may be a live writer's: removed only
            # while no run of the project is going on, as orphans are)
            if self.may_remove:
                self.store.remove(entry)
            found.append(
                Finding(
                    "temporary",
                    "a temporary file left by a writer that died"
                    if entry.location.endswith(".tmp")
                    else "an upload that never finished (its writer died or is still writing)",
                    name,
                    entry.location,
                    repaired="removed" if self.may_remove else "",
                )
            )
        elif entry.kind != "published":
            if entry.key not in self.known_ids:
                found.append(self._orphan(name, entry))
        elif (name, entry.key) not in self.published:
            found.append(self._orphan(name, entry))
        else:
            self.exam.files_checked += 1
            problem = self.store.verify(
                whole(name), entry.key, full=verify, source=name in self.sources
            )
            if problem:
                found.append(self._corrupt(name, entry, problem))

    def _orphan(self, name: str, entry: Entry) -> Finding:
        remove = self.may_remove and name not in self.suspect
        if remove:
            self.store.remove(entry)
        return Finding(
            "orphan",
            "a file no catalog row refers to",
            name,
            entry.location,
            repaired="removed" if remove else "",
        )

    def _corrupt(self, name: str, entry: Entry, problem: str) -> Finding:
        repaired = ""
        if self.repair:
            try:
                aside = self.store.set_aside(entry)
            except OSError as exc:
                problem += f" (not moved aside: {first_line(exc)})"
            else:
                repaired = f"moved to {aside}; the asset is stale if this was its current data"
        return Finding(
            "corrupt",
            f"stored data of asset '{name}' ({entry.key[:12]}) is corrupt: {problem}",
            name,
            entry.location,
            repaired=repaired,
        )


def _foreign(name: str | None, entry: Entry) -> Finding:
    if "symbolic link" not in entry.detail:  # something an object store did not write
        return Finding(
            "foreign", f"{entry.detail}; doctor leaves it alone: remove it if it should go", name
        )
    return Finding(
        "link",
        f"{entry.detail}; doctor neither looks nor cleans through links: replace it with "
        "what it points to, or remove it",
        name,
        entry.location,
    )
