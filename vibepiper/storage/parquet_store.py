"""The local store: one immutable Parquet file per distinct version of each unit's data.

`ParquetStore` implements `Store` (see `vibepiper.storage.store`). Layout under the store
folder (an internal detail, not a contract):

    <asset>/<data_version>.parquet               published data, never modified (of the
                                                 whole asset, or of any of its partitions)
    <asset>/rejected/<materialization>.parquet   outputs that failed their checks
    <asset>/quarantine/<materialization>.parquet rows that quarantine removed, with reasons
    <asset>/corrupt/<data_version>.parquet       damaged data `doctor --repair` set aside
    <asset>/.<anything>.<pid>.tmp                being written; removed if its writer died

A file is written under a temporary name in the same folder, then renamed into place, so
a reader sees either nothing or the whole file. Making files durable (fsync of each file
and its folder) is batched: `sync()` does it for every file published since the last
call, and the runner calls it before each catalog write, so the catalog never refers to
a file that a power loss could take away. (A published file lost that way before being
recorded is seen as damaged, by its size and magic bytes or its content hash, and is
replaced by the next run that makes that version.)

Files carry page checksums and are read with verification; each also records the hash of
its content (`vibepiper.content` in its metadata), and every read hashes what it got
against it, which catches what the checksums do not cover (a flipped bit in a page
header). A corrupted file is an error, never wrong data. A file also records the asset and
the data version it was written as (`vibepiper.asset`, `vibepiper.version`), so a valid
file copied over another (another asset's, another version's) is damage too.

Names that become paths (data versions and materialization ids read from the catalog,
asset names) are checked first: a hand-edited catalog cannot point a read, or doctor,
outside the store. Only regular files are opened, and without blocking: a FIFO or a
folder in a stored file's place is damage, not a hang or a crash. Nothing is listed,
removed or moved through a symbolic link.

The path-based methods (`path_for`, `read_path`, ...) are the store's own; callers outside
`vibepiper.storage` are moving to the `Store` interface.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vibepiper.definitions.asset import NAME_RE
from vibepiper.errors import StoreError
from vibepiper.processes import pid_alive
from vibepiper.storage import parquet_files as files
from vibepiper.storage.fidelity import to_frame
from vibepiper.storage.parquet_files import (
    NotAFileError,
    content_problem,
    identity_problem,
    move_aside,
    open_regular,
    real_folders,
    to_arrow,
)
from vibepiper.storage.sound_files import SoundFiles
from vibepiper.storage.store import Entry, EntryKind, Kept, Staged, Store
from vibepiper.text import first_line, quoted
from vibepiper.units import Unit

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

TMP_SUFFIX = ".tmp"
# Versions are 32 hex digits (table_version, file_version); any lowercase letters and digits
# are let through (unit tests label versions "v1"): no separator and no dot, so no way out.
VERSION_RE = re.compile(r"[0-9a-z]{1,64}")
MATERIALIZATION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]*")  # a run id and a number
KEPT: tuple[Kept, ...] = ("rejected", "quarantine")

AssetOrUnit = Unit | str  # a bare asset name: for callers not yet converted to units


@dataclass(frozen=True)
class StagedFile(Staged):
    """A fully written file under a temporary name (`location`), waiting to be published
    or rejected."""

    @property
    def asset(self) -> str:
        return self.unit.asset

    @property
    def temp_path(self) -> Path:
        return Path(self.location)


class ParquetStore:
    """Reads and writes the Parquet files of every unit under one folder."""

    def __init__(
        self, root: Path, sound_files: Path | None = None, writers: Path | None = None
    ) -> None:
        self.root = root
        self.sound_files = sound_files  # where damage_many remembers sound files, if anywhere
        # A folder with a file for each run writing now, or that died writing (see
        # begin_writing): without it, every run that writes looks in every asset's folder.
        self.writers = writers
        self._unsynced: set[Path] = set()  # published files and folders not yet durable
        self._guard = threading.Lock()

    def __reduce__(self) -> tuple[type[ParquetStore], tuple[Path]]:
        return ParquetStore, (self.root,)  # sent to worker processes: only where it is

    # -- where things are ----------------------------------------------------------------

    def path_for(self, unit: AssetOrUnit, data_version: str) -> Path:
        """The published file of `unit` at `data_version`; a StoreError if either is not
        a name the store uses (read from a catalog edited by hand, say)."""
        asset = _asset(unit)
        _check(asset, data_version, VERSION_RE, "data version")
        return self.root / asset / f"{data_version}.parquet"

    def rejected_path(self, unit: AssetOrUnit, materialization_id: str) -> Path:
        return self._kept_path(unit, materialization_id, "rejected")

    def quarantine_path(self, unit: AssetOrUnit, materialization_id: str) -> Path:
        return self._kept_path(unit, materialization_id, "quarantine")

    def _kept_path(self, unit: AssetOrUnit, materialization_id: str, kind: Kept) -> Path:
        asset = _asset(unit)
        _check(asset, materialization_id, MATERIALIZATION_RE, "materialization id")
        return self.root / asset / kind / f"{materialization_id}.parquet"

    def location(self, unit: Unit, data_version: str) -> str:
        return str(self.path_for(unit, data_version))

    def exists(self, unit: AssetOrUnit, data_version: str) -> bool:
        return self.path_for(unit, data_version).is_file()

    # -- writing -------------------------------------------------------------------------

    def stage(
        self, unit: AssetOrUnit, data_version: str, table: pa.Table, *, content: str | None = None
    ) -> StagedFile:
        """Write `table` to a temporary file next to its final place (made durable once
        published, by `sync()`).

        `content` is the table's own version when the data version is something else (a
        source's is its file's hash); reads check the data against it.
        """
        final = self.path_for(unit, data_version)
        final.parent.mkdir(parents=True, exist_ok=True)
        name = f".{data_version[:16]}.{secrets.token_hex(4)}.{os.getpid()}{TMP_SUFFIX}"
        temp = final.parent / name
        asset = _asset(unit)
        files.write(files.with_identity(table, asset, data_version, content or data_version), temp)
        return StagedFile(unit if isinstance(unit, Unit) else Unit(asset), data_version, str(temp))

    def stage_stream(
        self, unit: Unit, batches: Any, *, data_version: str | None = None
    ) -> tuple[StagedFile, files.Streamed]:
        """Write a stream of record batches to a temporary file next to its final place,
        one row group in memory at a time; its data version is `data_version` (a source's
        file hash) or its rows' (`RowsDigest`: whatever order they came in)."""
        _check(unit.asset, "stream", VERSION_RE, "data version")
        folder = self.root / unit.asset
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".stream.{secrets.token_hex(4)}.{os.getpid()}{TMP_SUFFIX}"
        streamed = files.write_stream(batches, temp, unit.asset, data_version)
        version = data_version or streamed.content
        _check(unit.asset, version, VERSION_RE, "data version")
        return StagedFile(unit, version, str(temp)), streamed

    def staged_path(self, staged: Staged) -> Path:
        """The file of a staged output (for an engine that reads files: DuckDB)."""
        return self._temp(staged)

    def local_path(self, unit: Unit, data_version: str) -> Path:
        """A local file holding the published data (for an engine that reads files:
        DuckDB), checked to be a whole file of this unit's version first; a StoreError
        naming the asset if it is missing or damaged."""
        path = self.path_for(unit, data_version)
        damage = self.damage(unit, data_version)
        if damage == "missing":
            raise StoreError(
                f"the stored data of asset '{unit.asset}' is missing ({path})",
                _rebuild(unit.asset),
            )
        if damage:
            raise StoreError(
                f"the stored data of asset '{unit.asset}' is {damage} ({path})",
                _rebuild(unit.asset),
            )
        return path

    def publish(self, staged: Staged, *, replace: bool = False) -> None:
        """Move a staged file to its final name, atomically. Content-addressed: a file of
        the same version may exist already. It is kept (and the staged copy dropped) unless
        it is visibly damaged or `replace` is asked (`--force`: the user suspects it), in
        which case the fresh copy of the same data replaces it (readers that have it open
        keep reading the old one). Publishing the same staged file again does nothing."""
        temp, final = self._temp(staged), self.path_for(staged.unit, staged.data_version)
        damage = self.damage(staged.unit, staged.data_version)
        if not os.path.lexists(temp) and not damage:
            return  # published already
        if not replace and not damage:
            temp.unlink(missing_ok=True)
            return
        if os.path.lexists(final):  # a recorded version's file: never a moment without one
            files.fsync(temp)
        if final.is_dir() and not final.is_symlink():  # a file cannot replace a folder
            move_aside(final)
        os.replace(temp, final)
        self._pending(final)

    def reject(self, staged: Staged, materialization_id: str) -> None:
        """Keep a staged file that failed its checks, for inspection; never made current."""
        temp = self._temp(staged)
        final = self.rejected_path(staged.unit, materialization_id)
        if not os.path.lexists(temp) and final.is_file():
            return  # rejected already
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, final)
        self._pending(final)

    def discard(self, staged: Staged) -> None:
        self._temp(staged).unlink(missing_ok=True)

    def keep_quarantine(self, unit: AssetOrUnit, materialization_id: str, frame: Any) -> None:
        """Write the rows quarantine removed (with their reasons) next to the asset."""
        final = self.quarantine_path(unit, materialization_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.parent / f".{final.stem}.{os.getpid()}{TMP_SUFFIX}"
        files.write(to_arrow(frame), temp)
        os.replace(temp, final)  # written in a worker: made durable now, not by sync()
        files.fsync(final)
        files.fsync(final.parent)

    def _temp(self, staged: Staged) -> Path:
        """The temporary file of `staged`; a StoreError unless it is one `stage` names."""
        temp = Path(staged.location)
        folder = self.path_for(staged.unit, staged.data_version).parent
        if temp.parent != folder or not _is_temp_name(temp.name):
            raise StoreError(
                f"{temp} is not a file this store staged for asset '{staged.unit.asset}'",
                "publish, reject or discard only what `stage` returned",
            )
        return temp

    def _pending(self, path: Path) -> None:
        with self._guard:
            self._unsynced.update((path, path.parent))

    def sync(self) -> None:
        """Make every file published (or rejected) since the last call durable, with its
        folder (see `parquet_files.fsync_all`)."""
        with self._guard:
            paths, self._unsynced = sorted(self._unsynced), set()
        try:
            files.fsync_all(paths, self.root)
        except BaseException:
            with self._guard:  # still owed: the next call tries again
                self._unsynced.update(paths)
            raise

    # -- reading -------------------------------------------------------------------------

    def read(self, unit: Unit, data_version: str) -> pd.DataFrame:
        return self.read_path(self.path_for(unit, data_version), unit.asset)

    def read_table(self, unit: Unit, data_version: str) -> pa.Table:
        table: pa.Table = self.read_table_path(self.path_for(unit, data_version), unit.asset)
        return table

    def read_kept(self, unit: Unit, materialization_id: str, kind: Kept) -> pd.DataFrame:
        return self.read_path(self._kept_path(unit, materialization_id, kind), unit.asset)

    def read_path(self, path: Path, asset: str) -> pd.DataFrame:
        frame: pd.DataFrame = self.read_table_path(path, asset, frame=True)
        return frame

    def read_table_path(self, path: Path, asset: str, *, frame: bool = False) -> Any:
        """The table stored at `path` (as a pandas DataFrame with `frame`); any damage is
        a StoreError naming the asset and the file."""
        try:
            table = files.read_verified(path)
            wrong = content_problem(table) or identity_problem(
                table.schema.metadata, asset, self._named_version(path, asset)
            )
            if not wrong:
                return to_frame(table) if frame else table
        except FileNotFoundError:
            raise StoreError(
                f"the stored data of asset '{asset}' is missing ({path})", _rebuild(asset)
            ) from None
        except NotAFileError:
            raise _not_a_file(asset, path) from None
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise _unreadable(asset, path, exc) from exc
        raise StoreError(
            f"the stored data of asset '{asset}' is corrupt ({path}: {wrong})", _rebuild(asset)
        )

    def _named_version(self, path: Path, asset: str) -> str | None:
        """The version a published file is named after (None for a rejected file...)."""
        return path.stem if path.parent == self.root / asset else None

    def dataset(self, unit: Unit, data_version: str) -> Any | None:
        return self._dataset(self.path_for(unit, data_version), unit.asset, data_version)

    def kept_dataset(self, unit: Unit, materialization_id: str, kind: Kept) -> Any | None:
        return self._dataset(self._kept_path(unit, materialization_id, kind), unit.asset, None)

    def _dataset(self, path: Path, asset: str, version: str | None) -> Any | None:
        try:
            found = files.dataset(path)
        except FileNotFoundError:
            return None
        except NotAFileError:
            raise _not_a_file(asset, path) from None
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise _unreadable(asset, path, exc) from exc
        wrong = identity_problem(found.schema.metadata, asset, version)
        if wrong:
            raise StoreError(
                f"the stored data of asset '{asset}' is corrupt ({path}: {wrong})", _rebuild(asset)
            )
        return found

    # -- judging -------------------------------------------------------------------------

    def damage(self, unit: AssetOrUnit, data_version: str) -> str:
        """What is visibly wrong with a stored file ("missing", "damaged"), or "".

        A cheap look (its size, the magic bytes a Parquet file starts and ends with, the
        asset and version its footer records) that catches a missing, truncated or
        overwritten file, or something else in its place; bytes flipped inside it are
        caught by the page checksums when it is read.
        """
        if not VERSION_RE.fullmatch(data_version):
            return f"missing (the catalog records an invalid data version {quoted(data_version)})"
        path = self.path_for(unit, data_version)
        try:
            fd = open_regular(path)
        except FileNotFoundError:
            return "damaged" if os.path.lexists(path) else "missing"  # a dangling link
        except OSError:
            return "damaged"
        try:
            return files.footer_damage(fd, _asset(unit), data_version)
        except OSError:
            return "damaged"
        finally:
            os.close(fd)

    def damage_many(self, versions: Mapping[Unit, str]) -> dict[Unit, str]:
        """`damage` of each, without opening a file found sound before whose size, mtime
        and inode are still the same (storage/sound_files.py)."""
        if self.sound_files is None:
            return {unit: self.damage(unit, version) for unit, version in versions.items()}
        sound = SoundFiles(self.sound_files, self.root)
        root = str(self.root)
        found: dict[Unit, str] = {}
        seen: dict[tuple[str, str], str] = {}  # partitions with the same data share a file
        for unit, version in versions.items():
            same = seen.get((unit.asset, version))
            if same is not None:
                found[unit] = same
                continue
            # (plain strings: thousands of Path objects cost more than the stats)
            key = identity = None
            if VERSION_RE.fullmatch(version):
                asset = _asset(unit)
                _check(asset, version, VERSION_RE, "data version")  # as path_for does
                key = f"{asset}/{version}.parquet"
                identity = sound.identity(os.path.join(root, key))
            if key is not None and identity is not None and sound.known_key(key, identity):
                found[unit] = seen[unit.asset, version] = ""
                continue
            found[unit] = seen[unit.asset, version] = self.damage(unit, version)
            if key is not None and identity is not None and not found[unit]:
                sound.remember_key(key, identity)
        sound.save()
        return found

    def verify(
        self, unit: Unit, data_version: str, *, full: bool = True, source: bool = False
    ) -> str:
        try:
            path = self.path_for(unit, data_version)
        except StoreError as exc:
            return exc.message
        return files.problem(path, unit.asset, data_version, full=full, source=source)

    # -- looking after the store (doctor) -----------------------------------------------

    def entries(self) -> Iterator[Entry]:
        """Every file of the store, one asset folder at a time, in name order: published,
        rejected, quarantined, then the temporary files of dead writers. A symbolic link
        is a "foreign" entry, never looked through."""
        for child in _sorted_children(self.root):
            if child.is_symlink():
                yield _link(None, child, "")
            elif child.is_dir():
                yield from self._folder_entries(child)

    def _folder_entries(self, folder: Path) -> Iterator[Entry]:
        unit = Unit(folder.name)
        for path in sorted(folder.glob("*.parquet")):
            yield _file_entry(unit, path, "published")
        for kind in KEPT:
            kept = folder / kind
            if kept.is_symlink():
                yield _link(unit, kept, kind)
                continue
            for path in sorted(kept.glob("*.parquet")):
                yield _file_entry(unit, path, kind)
        for temp in self.dead_temp_files(folder):  # not those being written right now
            key = str(temp.relative_to(folder))
            yield Entry("temporary", unit, key, str(temp), modified=_mtime(temp))

    def remove(self, entry: Entry) -> None:
        """Remove an entry (an orphan, a dead writer's temporary file); never a link."""
        self._entry_path(entry).unlink(missing_ok=True)

    def set_aside(self, entry: Entry) -> str:
        """Move damaged data to its asset's `corrupt/` folder; an OSError if it cannot be."""
        return str(move_aside(self._entry_path(entry)))

    def _entry_path(self, entry: Entry) -> Path:
        """Where `entry` is, rebuilt from its unit and key (never taken from its
        `location`) and checked to lie in the store, not through a link."""
        if entry.kind == "foreign" or entry.unit is None or self.is_linked():
            raise StoreError(
                f"{entry.location} is not removed or moved: it is not the store's, or it "
                "lies through a symbolic link",
                "look at it, and remove it by hand if it should go",
            )
        folder = self.root / _component(entry.unit.asset)
        if entry.kind == "published":
            parts = [f"{entry.key}.parquet"]
        elif entry.kind == "temporary":
            parts = entry.key.split("/")
            if (
                len(parts) > 2
                or not parts[-1].startswith(".")
                or not entry.key.endswith(TMP_SUFFIX)
            ):
                raise StoreError(f"{entry.key!r} names no temporary file", "")
        else:
            parts = [entry.kind, f"{entry.key}.parquet"]
        path = folder.joinpath(*map(_component, parts))
        between = [folder, *(folder.joinpath(*parts[:i]) for i in range(1, len(parts)))]
        if any(p.is_symlink() for p in between):
            raise StoreError(f"{path} lies through a symbolic link: it is left alone", "")
        return path

    def hand_over(self, staged: Staged, materialization_id: str, *, rejected: bool) -> Staged:
        return staged  # its workers share its disk

    def for_workers(self) -> ParquetStore:
        return self  # its workers must see its folder

    def describe(self) -> str:
        return str(self.root)

    def is_linked(self) -> str:
        if self.root.is_symlink():
            return f"the store {self.root} is a symbolic link (to {files.link_target(self.root)})"
        return ""

    def dead_temp_files(self, folder: Path | None = None) -> list[Path]:
        """Temporary files whose writing process is gone, in one asset's folder or all."""
        return [t for t in self._temp_files(folder) if not _writer_alive(t)]

    def _temp_files(self, folder: Path | None = None) -> list[Path]:
        """Every temporary file, in one asset's folder or all."""
        folders = real_folders(self.root) if folder is None else [folder]
        found = []
        for top in folders:  # one listing per folder, never through a link: it leads elsewhere
            temps, inner = _temp_files_and_folders(top)
            found += temps
            for below in inner:
                found += _temp_files_and_folders(below)[0]
        return found

    def clean_temp_files(self) -> list[str]:
        """Remove temporary files whose writing process is gone; return where each was."""
        return _unlinked(self.dead_temp_files())

    def begin_writing(self) -> str:
        """Every asset's folder is looked in only if a run died writing since the last
        look (its ticket is still in `writers`), or if no look was ever recorded (the
        folder is missing): a run that ended wrote its ticket off after looking in the
        folders it wrote to (`end_writing`)."""
        if self.writers is None:
            self.clean_temp_files()
            return ""
        try:
            tickets = list(os.scandir(self.writers))
        except OSError:  # missing (never looked), or not a folder we can read: look now
            tickets = None  # (and if no ticket can be made below, every time)
        dead = [Path(t.path) for t in tickets or () if not _ticket_alive(t)]
        if tickets is None or dead:
            found = self._temp_files()
            live = {t for t in found if _writer_alive(t)}
            _unlinked([t for t in found if t not in live])
            # Another process still writing may be a dead run's orphaned worker: the
            # tickets stay until a look finds no one else writing.
            if all(_writer_pid(t) == os.getpid() for t in live):
                for ticket in dead:
                    ticket.unlink(missing_ok=True)
        try:
            self.writers.mkdir(parents=True, exist_ok=True)
            ticket = self.writers / f"{os.getpid()}.{secrets.token_hex(4)}"
            ticket.touch(exist_ok=False)
        except OSError:  # a read-only home, say: the next run looks everywhere
            return ""
        return ticket.name

    def end_writing(self, ticket: str, assets: Iterable[str]) -> None:
        for asset in dict.fromkeys(assets):
            folder = self.root / _component(asset)
            if not folder.is_symlink():  # (never looked through: it leads elsewhere)
                _unlinked(self.dead_temp_files(folder))
        if ticket and self.writers is not None:
            (self.writers / _component(ticket)).unlink(missing_ok=True)


_: type[Store] = ParquetStore  # mypy checks that it implements the interface


def _unlinked(temps: list[Path]) -> list[str]:
    for temp in temps:
        temp.unlink(missing_ok=True)
    return [str(temp) for temp in temps]


def _writer_alive(temp: Path) -> bool:
    return pid_alive(_writer_pid(temp), since=_mtime(temp))


def _ticket_alive(entry: os.DirEntry[str]) -> bool:
    """Whether the run of a writer's ticket (named `PID.TOKEN`, made when it began) is
    still running. A name not of that form is no run's: looked everywhere once, removed."""
    pid, _, token = entry.name.partition(".")
    if not (pid.isdigit() and token.isalnum()):
        return False
    try:
        made = entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return True  # gone meanwhile: its run ended and wrote it off
    return pid_alive(int(pid), since=made)


def _temp_files_and_folders(folder: Path) -> tuple[list[Path], list[Path]]:
    """The temporary files directly in `folder`, and its folders (not links to folders)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:  # missing, or not a folder
        return [], []
    temps = [
        Path(e.path) for e in entries if e.name.startswith(".") and e.name.endswith(TMP_SUFFIX)
    ]
    return temps, [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]


def _asset(unit: AssetOrUnit) -> str:
    """The asset whose folder keeps `unit`'s data: the partitions of an asset share it
    (data is addressed by its version, so two partitions with the same data share one
    file)."""
    return unit if isinstance(unit, str) else unit.asset


def _file_entry(unit: Unit, path: Path, kind: EntryKind) -> Entry:
    key = path.name.removesuffix(".parquet")
    if path.is_symlink():
        return _link(unit, path, key)
    return Entry(kind, unit, key, str(path), modified=_mtime(path))


def _link(unit: Unit | None, path: Path, key: str) -> Entry:
    detail = f"a symbolic link in the store (to {files.link_target(path)})"
    return Entry("foreign", unit, key, str(path), detail)


def _is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def _sorted_children(root: Path) -> list[Path]:
    return sorted(root.iterdir()) if root.is_dir() else []


def _component(name: str) -> str:
    """`name` if it is one component of a path (no separator, not `.` or `..`)."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise StoreError(f"{quoted(name)} names nothing in the store", "")
    return name


def _rebuild(asset: str) -> str:
    return f"re-create it with `vibepiper materialize {asset} --force`"


def _not_a_file(asset: str, path: Path) -> StoreError:
    return StoreError(
        f"the stored data of asset '{asset}' is damaged ({path} is not a regular file)",
        _rebuild(asset),
    )


def _unreadable(asset: str, path: Path, exc: Exception) -> StoreError:
    return StoreError(
        f"the stored data of asset '{asset}' is unreadable ({path}: "
        f"{type(exc).__name__}: {first_line(exc)})",
        _rebuild(asset),
    )


def _check(asset: str, value: str, form: re.Pattern[str], what: str) -> None:
    """A StoreError unless `asset` is an asset's name and `value` has the form of a
    `what`: both become a path in the store."""
    hint = (
        "the catalog was edited by hand or is damaged; re-create the data with "
        f"`vibepiper materialize {asset} --force`"
    )
    if not NAME_RE.fullmatch(asset):
        raise StoreError(
            f"{quoted(asset)} is not an asset name, so it names no folder of the store",
            "the catalog was edited by hand or is damaged; remove that asset's rows",
        )
    if not form.fullmatch(value):
        raise StoreError(f"asset '{asset}' has an invalid {what}: {quoted(value)}", hint)


def _mtime(path: Path) -> float | None:
    """When the file was last written (its writer was alive then), or None if it is gone."""
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _writer_pid(temp: Path) -> int:
    try:
        return int(temp.name[: -len(TMP_SUFFIX)].rsplit(".", 1)[1])
    except (IndexError, ValueError):
        return -1
