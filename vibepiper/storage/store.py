"""The store interface: where the data of every unit of work is kept, by version.

Callers (the run, the workers, `check`, `show`/`read`, `query`, `doctor`) speak only this
interface, keyed by (unit, data version) for published data and (unit, materialization
id) for what a run kept aside; never by a path. `ParquetStore` (local files) is the first
implementation; `ObjectStore` (an S3-compatible bucket, storage/object_store.py) the
second: there `publish` is a conditional create of the final key (a second publish of the
same version is a no-op), `sync` does nothing (a put is durable when it returns), and an
unfinished upload is judged by age.

The life of an output: `stage` writes it where no reader looks; the run then `publish`es
it (atomically, idempotently: data is addressed by its version, so publishing a version
that is already there keeps the stored copy unless `replace`), `reject`s it (kept aside
under its materialization id, never current) or `discard`s it. `sync` makes everything
published or rejected since the last call durable; the run calls it before each catalog
write, so the catalog never refers to data a power loss could take away.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from vibepiper.units import Unit

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

Kept = Literal["rejected", "quarantine"]  # what a run keeps aside, by materialization id
EntryKind = Literal["published", "rejected", "quarantine", "temporary", "foreign"]


@dataclass(frozen=True)
class Staged:
    """An output written where no reader looks, waiting to be published or rejected.

    `location` is the store's own handle of it (a temporary file, a temporary key)."""

    unit: Unit
    data_version: str
    location: str


@dataclass(frozen=True)
class Entry:
    """One thing found in the store by `entries()`.

    `kind`: "published" (`key` is its data version), "rejected" or "quarantine" (`key` is
    the materialization id), "temporary" (left by a writer that died: `key` is the store's
    own name of it), "foreign" (something the store did not write, or cannot look into
    safely, such as a symbolic link: `detail` says what; it is never removed or moved).
    `unit` is None for what lies outside every unit's place. `location` is where it is,
    for messages: the store acts on (unit, kind, key), never on it. `modified`: when it
    was last written (seconds since the epoch), if known: `store gc` spares what is young.
    """

    kind: EntryKind
    unit: Unit | None
    key: str
    location: str
    detail: str = ""
    modified: float | None = None


class Store(Protocol):
    """Reads and writes the data of every unit of work, by version (see the module doc)."""

    def stage(
        self, unit: Unit, data_version: str, table: pa.Table, *, content: str | None = None
    ) -> Staged:
        """Write `table` where no reader looks. `content`: the table's own version when the
        data version is something else (a source's is its file's hash)."""
        ...

    def stage_stream(
        self, unit: Unit, batches: Any, *, data_version: str | None = None
    ) -> tuple[Staged, Any]:
        """Write a stream of record batches where no reader looks, a batch at a time; its
        data version is `data_version` or its rows' own, whatever their order. Returns the
        staged output and what was written (rows, content version, schema)."""
        ...

    def staged_path(self, staged: Staged) -> Any:
        """A local file holding a staged output, for an engine that reads files (DuckDB)."""
        ...

    def local_path(self, unit: Unit, data_version: str) -> Any:
        """A local file holding the published data, for an engine that reads files
        (DuckDB); a StoreError naming the asset if it is missing or damaged."""
        ...

    def publish(self, staged: Staged, *, replace: bool = False) -> None:
        """Make a staged output the data of (unit, version): atomic and idempotent (data
        already there, whole, is kept and the staged copy dropped, unless `replace`;
        publishing the same staged output again does nothing)."""
        ...

    def reject(self, staged: Staged, materialization_id: str) -> None:
        """Keep a staged output that failed its checks, under its materialization id."""
        ...

    def discard(self, staged: Staged) -> None:
        """Drop a staged output (its task failed, or the run was cancelled)."""
        ...

    def keep_quarantine(self, unit: Unit, materialization_id: str, frame: Any) -> None:
        """Keep the rows quarantine removed (with their reasons), durably, now."""
        ...

    def sync(self) -> None:
        """Make everything published or rejected since the last call durable."""
        ...

    def read(self, unit: Unit, data_version: str) -> pd.DataFrame:
        """The published data, verified (checksums, content hash, identity); any damage
        is a StoreError naming the asset."""
        ...

    def read_table(self, unit: Unit, data_version: str) -> pa.Table:
        """`read`, as an Arrow table."""
        ...

    def read_kept(self, unit: Unit, materialization_id: str, kind: Kept) -> pd.DataFrame:
        """What a run kept aside (verified as `read` is)."""
        ...

    def damage(self, unit: Unit, data_version: str) -> str:
        """What is visibly wrong with published data ("missing", "damaged"), or "": a
        cheap look, done for every asset a run or `status` considers."""
        ...

    def damage_many(self, versions: Mapping[Unit, str]) -> dict[Unit, str]:
        """`damage` of each unit's published version, all at once: an implementation may
        remember what it found sound by a cheaper identity than a look (local files: size,
        mtime, inode) and not look again while that identity holds."""
        ...

    def verify(
        self, unit: Unit, data_version: str, *, full: bool = True, source: bool = False
    ) -> str:
        """What is wrong with published data, or "": with `full` it is read entirely
        (checksums and content hash), else only its metadata. `source`: its version is a
        source file's hash, not its content's."""
        ...

    def dataset(self, unit: Unit, data_version: str) -> Any | None:
        """The published data as a pyarrow dataset (for `query`: pages are verified as
        they are read), or None if it is not there; a StoreError naming the asset if it is
        visibly damaged (unreadable, not a file, another asset's or version's data)."""
        ...

    def kept_dataset(self, unit: Unit, materialization_id: str, kind: Kept) -> Any | None:
        """What a run kept aside, as `dataset` gives published data."""
        ...

    def location(self, unit: Unit, data_version: str) -> str:
        """Where the published data is, for messages (a path, a URL). A StoreError if the
        version is not a name the store uses (read from a catalog edited by hand), as from
        every method given a version or a materialization id, but `damage` and `verify`,
        which say so."""
        ...

    def entries(self) -> Iterator[Entry]:
        """Everything in the store, for `doctor` (not what a live writer is staging)."""
        ...

    def remove(self, entry: Entry) -> None:
        """Remove an orphan or a dead writer's temporary output (a StoreError for a
        "foreign" entry, or while `is_linked()`)."""
        ...

    def set_aside(self, entry: Entry) -> str:
        """Move damaged published data out of the way (kept to look at); return where. An
        OSError if it cannot be moved."""
        ...

    def clean_temp_files(self) -> list[str]:
        """Remove what writers that died left staged; return where each was."""
        ...

    def begin_writing(self) -> str:
        """Before a run stages anything: remove what writers that died left staged (a
        store may skip looking everywhere when it knows that none died since it last
        looked), and count the run as a writer until `end_writing`; its ticket."""
        ...

    def end_writing(self, ticket: str, assets: Iterable[str]) -> None:
        """After the run of `ticket` staged outputs of `assets` only, and nothing of it is
        still writing: remove what its dead workers left of theirs, and stop counting it
        as a writer."""
        ...

    def hand_over(self, staged: Staged, materialization_id: str, *, rejected: bool) -> Staged:
        """In a worker whose files the run cannot read (another machine): make the staged
        output reachable, and return the handle the run then publishes, rejects or
        discards. The local store returns it as it is (its workers share its disk); an
        object store's worker copy uploads it now (published by conditional create, or
        kept as rejected), and the run's publish then only confirms that it is there."""
        ...

    def for_workers(self) -> Store:
        """This store as a worker on another machine opens it (the local store: itself,
        whose workers must see its folder)."""
        ...

    def describe(self) -> str:
        """Where the store is, for messages (a folder, a URL)."""
        ...

    def is_linked(self) -> str:
        """Why nothing may be removed or moved in this store ("" if all is well): e.g. the
        store's root is a symbolic link."""
        ...
