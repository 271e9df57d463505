"""`vibepiper store gc`: remove what no materialization refers to, once it is old enough.

It speaks only the `Store` interface, as `doctor` does: what the store holds comes from
`entries()`, and it is removed through the store. Removed: published data whose (asset,
data version) no materialization of the catalog records, what a run kept aside
(rejected outputs, quarantined rows) under a materialization id the catalog does not
know, and temporary files or unfinished uploads — each only once older than the grace
period, so that a run going on now, which publishes data a moment before recording it,
loses nothing. Never removed: anything the catalog refers to (every version of its
history, not only the current ones), what the store did not write ("foreign" entries),
and anything at all while the store's folder is a symbolic link.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from vibepiper.catalog import reads
from vibepiper.catalog.catalog import Catalog
from vibepiper.errors import UsageError
from vibepiper.storage.store import Entry, Store

DEFAULT_GRACE = "1h"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Garbage:
    kind: str  # published | rejected | quarantine | temporary
    asset: str | None
    key: str
    location: str
    age_seconds: float | None
    removed: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Collection:
    found: list[Garbage]
    kept_young: int = 0  # unreferenced, but younger than the grace period
    note: str = ""


def grace_seconds(text: str) -> float:
    """`30s`, `15m`, `1h`, `7d` (or `0`) in seconds; a UsageError names the option."""
    given = text.strip().lower()
    number, unit = (given[:-1], given[-1]) if given[-1:] in _UNITS else (given, "s")
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if value < 0 or value != value:  # negative, or not a number (nan)
        raise UsageError(
            f"--grace {text!r} is not a duration", "write it as 30s, 15m, 1h or 7d (0: none)"
        )
    return value * _UNITS[unit]


def collect(store: Store, catalog: Catalog, *, grace: float, dry_run: bool) -> Collection:
    """Find (and unless `dry_run`, remove) what no materialization refers to and is older
    than `grace` seconds."""
    catalog.ensure()
    done = Collection([])
    linked = store.is_linked()
    if linked:
        dry_run = True
        done.note = f"nothing was removed: {linked}"
    published = reads.published_versions(catalog)
    known_ids = reads.materialization_ids(catalog)
    now = time.time()
    for entry in store.entries():
        if not _unreferenced(entry, published, known_ids):
            continue
        age = None if entry.modified is None else max(now - entry.modified, 0.0)
        if age is None or age < grace:
            done.kept_young += 1
            continue
        if not dry_run:
            store.remove(entry)
        done.found.append(
            Garbage(
                entry.kind,
                entry.unit.asset if entry.unit else None,
                entry.key,
                entry.location,
                age,
                removed=not dry_run,
            )
        )
    return done


def _unreferenced(entry: Entry, published: set[tuple[str, str]], known_ids: set[str]) -> bool:
    if entry.kind == "foreign" or entry.unit is None:
        return False
    if entry.kind == "temporary":
        return True
    if entry.kind == "published":
        return (entry.unit.asset, entry.key) not in published
    return entry.key not in known_ids
