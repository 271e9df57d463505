"""Units of partitioned assets, and what each unit reads of its upstream assets (SPEC §7).

An unpartitioned asset is one unit; a partitioned one has a unit per key. What a unit
reads of an upstream asset:

- an unpartitioned upstream: its one unit;
- a partitioned upstream, from a partitioned unit: the upstream's partitions that its
  partitioning maps the key to (the same key; the time windows overlapping its own, and
  `lookback` earlier ones);
- a partitioned upstream, from an unpartitioned unit: every partition the upstream has
  (`ALL`), in key order.

The data version a unit reads of an input is that unit's version when it reads exactly
one unit; otherwise a version combined from the keys and versions of the partitions that
exist (`combine`), so a change to any of them, or a new one, makes the reader stale.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from vibepiper.definitions.partitions import KeyFormError, Partitions
from vibepiper.errors import UsageError
from vibepiper.graph.graph import Graph
from vibepiper.units import Unit

ALL: tuple[Unit, ...] | None = None  # every partition the upstream has


def units_of(graph: Graph, name: str, now: datetime | None = None) -> list[Unit]:
    """Every unit of `name`: one, or one per key up to `now` (in key order)."""
    parts = graph.assets[name].partitions
    if parts is None:
        return [Unit(name)]
    return [Unit(name, key) for key in parts.keys(now)]


def selected_units(
    graph: Graph,
    names: Sequence[str],
    keys: Mapping[str, Sequence[str]] | None = None,
    now: datetime | None = None,
) -> list[Unit]:
    """The units of `names` (in their order): of each partitioned asset, the keys `keys`
    gives it (see `keys_for`), or all its keys up to `now`."""
    units: list[Unit] = []
    for name in names:
        parts = graph.assets[name].partitions
        if parts is None:
            units.append(Unit(name))
        elif keys is None:
            units += units_of(graph, name, now)
        else:
            chosen = keys.get(name, ())  # checked by `keys_for`
            units += [Unit(name, key) for key in sorted(set(chosen), key=parts.order)]
    return units


def keys_for(
    graph: Graph, names: Sequence[str], partition: str | None, span: str | None
) -> dict[str, list[str]] | None:
    """The keys `--partition KEY` or `--partitions FROM..TO` name, for each partitioned
    asset among `names` (None: neither given). A UsageError if no selected asset is
    partitioned, or if the key or range is not valid for one of them."""
    if partition is None and span is None:
        return None
    if partition is not None and span is not None:
        raise UsageError(
            "--partition and --partitions were both given", "give one key, or one range"
        )
    partitioned = {n: p for n in names if (p := graph.assets[n].partitions) is not None}
    option = "--partition" if partition is not None else "--partitions"
    if not partitioned:
        raise UsageError(
            f"{option} was given, but no selected asset is partitioned",
            "select a partitioned asset, or drop the option",
        )
    from vibepiper import clock
    from vibepiper.definitions.partitions import parse_range

    now = clock.now()
    first, last = (partition, partition) if partition is not None else parse_range(str(span))

    def keys_of(name: str, parts: Partitions) -> list[str]:
        owner = f"asset '{name}'"
        keys = (
            [parts.check_key(first, owner)]
            if first == last
            else (parts.between(first, last, owner))
        )
        parts.check_ended(keys[-1], owner, now)
        return keys

    found: dict[str, list[str]] = {}
    refused: dict[str, UsageError] = {}
    for name, parts in partitioned.items():
        try:
            found[name] = keys_of(name, parts)
        except UsageError as exc:
            refused[name] = exc
    if refused:
        _map_keys(partitioned, found, refused, first, last)
    return found


def _map_keys(
    partitioned: Mapping[str, Partitions],
    found: dict[str, list[str]],
    refused: Mapping[str, UsageError],
    first: str,
    last: str,
) -> None:
    """The keys of the time-partitioned assets whose partitioning the given keys are not
    of (an hourly asset selected with a daily one, `--partitions` in days): the windows
    that overlap the time the given keys span, by the partitioning they are keys of. A
    key that no selected asset has is refused as the first asset refused it."""
    reference = next((partitioned[n] for n in found if partitioned[n].is_time), None)
    for name, error in refused.items():
        parts = partitioned[name]
        if reference is None or not parts.is_time or not isinstance(error, KeyFormError):
            raise error
        begin, end = reference.reads(parts, first), reference.reads(parts, last)
        if not begin or not end:
            raise UsageError(
                f"asset '{name}' has no partition in {first}..{last} whose window has ended",
                "choose keys whose windows have ended",
            )
        found[name] = parts.between(begin[0], end[-1], f"asset '{name}'")


def reads(graph: Graph, unit: Unit, up: str) -> tuple[Unit, ...] | None:
    """The units of `up` that `unit` reads (`ALL`, None: every partition it has)."""
    mine = graph.assets[unit.asset]
    theirs = graph.assets[up].partitions
    if theirs is None:
        return (Unit(up),)
    if mine.partitions is None:
        return ALL
    lookback = max((n for p, n in mine.lookback.items() if mine.inputs.get(p) == up), default=0)
    if lookback == 0 and theirs.same_as(mine.partitions):
        return (Unit(up, unit.partition),)
    keys = mine.partitions.reads(theirs, unit.partition, lookback)
    return tuple(Unit(up, key) for key in keys)


def combine(pairs: Iterable[tuple[str, str]]) -> str:
    """One version for several partitions' (key, data version) pairs, in key order."""
    digest = hashlib.blake2b(digest_size=16)
    for key, version in pairs:
        digest.update(f"{key}\t{version}\n".encode())
    return digest.hexdigest()


def read_version(
    graph: Graph,
    unit: Unit,
    up: str,
    version_of: Callable[[Unit], str | None],
    present: Callable[[str], Iterable[str]],
) -> str | None:
    """The data version `unit` reads of `up` (None: nothing of it exists).

    `version_of(u)`: the version of a unit (None: it has none); `present(up)`: the keys
    of `up`'s partitions that have data, for a read of every partition."""
    read = reads(graph, unit, up)
    if read is not None and len(read) == 1:
        return version_of(read[0])
    keys = [u.partition for u in read] if read is not None else list(present(up))
    pairs = [(k, v) for k in keys if (v := version_of(Unit(up, k))) is not None]
    return combine(pairs) if pairs else None


def keys_by_asset(units: Iterable[Unit]) -> dict[str, set[str]]:
    """The partition keys among `units`, by asset (unpartitioned units left out)."""
    found: dict[str, set[str]] = {}
    for unit in units:
        if unit.partition:
            found.setdefault(unit.asset, set()).add(unit.partition)
    return found


def current_keys(
    graph: Graph, units: Iterable[Unit], now: datetime | None = None
) -> dict[str, set[str]]:
    """The keys among `units` (those with current data, say) that are partitions of their
    asset as it is declared now, by asset: a key left by an earlier partitioning of the
    asset (another start, other static keys, a window not over yet) is not one."""
    found = keys_by_asset(units)
    for name, keys in found.items():
        defn = graph.assets.get(name)
        parts = defn.partitions if defn is not None else None
        found[name] = set() if parts is None else keys.intersection(parts.keys(now))
    return found


def in_order(graph: Graph, up: str, keys: Iterable[str]) -> list[str]:
    parts = graph.assets[up].partitions
    assert parts is not None
    return sorted(keys, key=parts.order)
