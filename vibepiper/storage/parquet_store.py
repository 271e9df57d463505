"""The store: one immutable Parquet file per distinct version of each asset's data.

Layout under the store folder (an internal detail, not a contract):

    <asset>/<data_version>.parquet               published data, never modified
    <asset>/rejected/<materialization>.parquet   outputs that failed their checks
    <asset>/quarantine/<materialization>.parquet rows that quarantine removed, with reasons
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
folder in a stored file's place is damage, not a hang or a crash.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vibepiper.definitions.asset import NAME_RE
from vibepiper.errors import StoreError
from vibepiper.processes import pid_alive
from vibepiper.storage.fidelity import to_frame
from vibepiper.text import first_line, quoted

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

TMP_SUFFIX = ".tmp"
_THREADED_CELLS = 4_000_000  # from this size on, pyarrow's threads convert a frame faster
_SERIAL_SYNCS = 8  # more files than this to sync: several fsyncs at once
_SYNC_THREADS = 8
CONTENT_KEY = b"vibepiper.content"  # the table_version of the data, in the file's metadata
PANDAS_KEY = b"vibepiper.pandas"  # a hash of the pandas metadata (column names, index, dtypes)
ASSET_KEY = b"vibepiper.asset"  # the asset the file was written for
VERSION_KEY = b"vibepiper.version"  # the data version it was written as (its name)
# Versions are 32 hex digits (table_version, file_version); any lowercase letters and digits
# are let through (unit tests label versions "v1"): no separator and no dot, so no way out.
VERSION_RE = re.compile(r"[0-9a-z]{1,64}")
MATERIALIZATION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]*")  # a run id and a number


@dataclass(frozen=True)
class StagedFile:
    """A fully written file under a temporary name, waiting to be published or rejected."""

    asset: str
    data_version: str
    temp_path: Path


class ParquetStore:
    """Reads and writes the Parquet files of every asset under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._unsynced: set[Path] = set()  # published files and folders not yet durable
        self._guard = threading.Lock()

    def __reduce__(self) -> tuple[type[ParquetStore], tuple[Path]]:
        return ParquetStore, (self.root,)  # sent to worker processes: only where it is

    def path_for(self, asset: str, data_version: str) -> Path:
        """The published file of `asset` at `data_version`; a StoreError if either is not
        a name the store uses (read from a catalog edited by hand, say)."""
        _check(asset, data_version, VERSION_RE, "data version")
        return self.root / asset / f"{data_version}.parquet"

    def rejected_path(self, asset: str, materialization_id: str) -> Path:
        _check(asset, materialization_id, MATERIALIZATION_RE, "materialization id")
        return self.root / asset / "rejected" / f"{materialization_id}.parquet"

    def quarantine_path(self, asset: str, materialization_id: str) -> Path:
        _check(asset, materialization_id, MATERIALIZATION_RE, "materialization id")
        return self.root / asset / "quarantine" / f"{materialization_id}.parquet"

    def keep_quarantine(self, asset: str, materialization_id: str, frame: Any) -> Path:
        """Write the rows quarantine removed (with their reasons) next to the asset."""
        final = self.quarantine_path(asset, materialization_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.parent / f".{final.stem}.{os.getpid()}{TMP_SUFFIX}"
        _write(to_arrow(frame), temp)
        os.replace(temp, final)  # written in a worker: made durable now, not by sync()
        _fsync(final)
        _fsync(final.parent)
        return final

    def exists(self, asset: str, data_version: str) -> bool:
        return self.path_for(asset, data_version).is_file()

    def damage(self, asset: str, data_version: str) -> str:
        """What is visibly wrong with a stored file ("missing", "damaged"), or "".

        A cheap look (its size, the magic bytes a Parquet file starts and ends with, the
        asset and version its footer records) that catches a missing, truncated or
        overwritten file, or something else in its place; bytes flipped inside it are
        caught by the page checksums when it is read.
        """
        if not VERSION_RE.fullmatch(data_version):
            return f"missing (the catalog records an invalid data version {quoted(data_version)})"
        path = self.path_for(asset, data_version)
        try:
            fd = open_regular(path)
        except FileNotFoundError:
            return "missing"
        except OSError:
            return "damaged"
        try:
            return _footer_damage(fd, asset, data_version)
        except OSError:
            return "damaged"
        finally:
            os.close(fd)

    def stage(
        self, asset: str, data_version: str, table: pa.Table, *, content: str | None = None
    ) -> StagedFile:
        """Write `table` to a temporary file next to its final place (made durable once
        published, by `sync()`).

        `content` is the table's own version when the data version is something else (a
        source's is its file's hash); reads check the data against it.
        """
        folder = self.root / asset
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".{data_version[:16]}.{secrets.token_hex(4)}.{os.getpid()}{TMP_SUFFIX}"
        metadata = dict(table.schema.metadata or {})
        metadata[CONTENT_KEY] = (content or data_version).encode()
        metadata[ASSET_KEY] = asset.encode()
        metadata[VERSION_KEY] = data_version.encode()
        metadata[PANDAS_KEY] = _digest(metadata.get(b"pandas", b"")).encode()
        _write(table.replace_schema_metadata(metadata), temp)
        return StagedFile(asset, data_version, temp)

    def publish(self, staged: StagedFile, *, replace: bool = False) -> Path:
        """Move a staged file to its final name, atomically. Content-addressed: a file of
        the same version may exist already. It is kept (and the staged copy dropped) unless
        it is visibly damaged or `replace` is asked (`--force`: the user suspects it), in
        which case the fresh copy of the same data replaces it (readers that have it open
        keep reading the old one)."""
        final = self.path_for(staged.asset, staged.data_version)
        if not replace and not self.damage(staged.asset, staged.data_version):
            staged.temp_path.unlink(missing_ok=True)
        else:
            if final.exists():  # a recorded version's file: never a moment without one
                _fsync(staged.temp_path)
            if final.is_dir() and not final.is_symlink():  # a file cannot replace a folder
                move_aside(final)
            os.replace(staged.temp_path, final)
            self._pending(final)
        return final

    def reject(self, staged: StagedFile, materialization_id: str) -> Path:
        """Keep a staged file that failed its checks, for inspection; never made current."""
        final = self.rejected_path(staged.asset, materialization_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.temp_path, final)
        self._pending(final)
        return final

    def _pending(self, path: Path) -> None:
        with self._guard:
            self._unsynced.update((path, path.parent))

    def sync(self) -> None:
        """Make every file published (or rejected) since the last call durable, with its
        folder: an fsync of each, several at once (fsync waits on the disk, not the CPU)."""
        with self._guard:
            paths, self._unsynced = sorted(self._unsynced), set()
        try:
            if len(paths) <= _SERIAL_SYNCS:
                for path in paths:
                    _fsync(path)
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(max_workers=_SYNC_THREADS) as pool:
                    list(pool.map(_fsync, paths))
        except BaseException:
            with self._guard:  # still owed: the next call tries again
                self._unsynced.update(paths)
            raise

    def discard(self, staged: StagedFile) -> None:
        staged.temp_path.unlink(missing_ok=True)

    def read_table(self, path: Path, asset: str, *, frame: bool = False) -> Any:
        """The table stored at `path` (as a pandas DataFrame with `frame`); any damage is
        a StoreError naming the asset and the file."""
        import pyarrow.parquet as pq

        try:
            # read by path, not through the descriptor: pyarrow's own file reads the
            # columns of a wide file in parallel (a Python file object: ~20% slower)
            os.close(open_regular(path))
            table = pq.read_table(path, page_checksum_verification=True)
            wrong = content_problem(table) or identity_problem(
                table.schema.metadata, asset, self._named_version(path, asset)
            )
            if not wrong:
                return to_frame(table) if frame else table
        except FileNotFoundError:
            raise StoreError(
                f"the stored data of asset '{asset}' is missing ({path})",
                f"re-create it with `vibepiper materialize {asset} --force`",
            ) from None
        except NotAFileError:
            raise StoreError(
                f"the stored data of asset '{asset}' is damaged ({path} is not a regular file)",
                f"re-create it with `vibepiper materialize {asset} --force`",
            ) from None
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise StoreError(
                f"the stored data of asset '{asset}' is unreadable ({path}: "
                f"{type(exc).__name__}: {first_line(exc)})",
                f"re-create it with `vibepiper materialize {asset} --force`",
            ) from exc
        raise StoreError(
            f"the stored data of asset '{asset}' is corrupt ({path}: {wrong})",
            f"re-create it with `vibepiper materialize {asset} --force`",
        )

    def read(self, path: Path, asset: str) -> pd.DataFrame:
        frame: pd.DataFrame = self.read_table(path, asset, frame=True)
        return frame

    def _named_version(self, path: Path, asset: str) -> str | None:
        """The version a published file is named after (None for a rejected file...)."""
        return path.stem if path.parent == self.root / asset else None

    def dead_temp_files(self, folder: Path | None = None) -> list[Path]:
        """Temporary files whose writing process is gone, in one asset's folder or all."""
        folders = real_folders(self.root) if folder is None else [folder]
        found = [
            temp
            for f in folders
            for inner in [f, *real_folders(f)]  # never through a link: it leads elsewhere
            for temp in inner.glob(f".*{TMP_SUFFIX}")
        ]
        return [t for t in found if not pid_alive(_writer_pid(t), since=_mtime(t))]

    def clean_temp_files(self) -> list[Path]:
        """Remove temporary files whose writing process is gone; return what was removed."""
        removed = self.dead_temp_files()
        for temp in removed:
            temp.unlink(missing_ok=True)
        return removed


def content_problem(table: pa.Table, expected: str | None = None) -> str:
    """How the data read from a stored file differs from the content it was written with,
    or "" (also for files written before the content was recorded, unless `expected`)."""
    from vibepiper.versioning.data_version import table_version

    metadata = table.schema.metadata or {}
    pandas = metadata.get(PANDAS_KEY)
    if pandas is not None and pandas != _digest(metadata.get(b"pandas", b"")).encode():
        return "its pandas metadata (column names, index, types) differs from what was written"
    recorded = metadata.get(CONTENT_KEY)
    expected = recorded.decode(errors="replace") if recorded is not None else expected
    if expected is None:
        return ""
    actual = table_version(table)
    if actual == expected:
        return ""
    return f"its content hashes to {actual[:12]}, not to the {expected[:12]} it was written with"


def identity_problem(metadata: dict[bytes, bytes] | None, asset: str, version: str | None) -> str:
    """How the asset and version a file records differ from the ones it is read as (its
    version: the name of a published file), or "" (also for files that record neither)."""
    metadata = metadata or {}
    recorded = metadata.get(ASSET_KEY)
    if recorded is not None and recorded != asset.encode():
        return f"it holds the data of asset {quoted(recorded.decode(errors='replace'))}"
    recorded = metadata.get(VERSION_KEY)
    if version is not None and recorded is not None and recorded != version.encode():
        written = recorded.decode(errors="replace")[:12]
        return f"it holds data version {quoted(written)}, not '{version[:12]}' (its name)"
    return ""


def move_aside(path: Path) -> Path:
    """Move a damaged published file (or whatever is in its place) to the asset's
    `corrupt/` folder, to look at; return where it went."""
    folder = path.parent / "corrupt"
    if folder.is_symlink():
        raise NotAFileError(f"{folder} is a symbolic link: nothing is moved through it")
    folder.mkdir(exist_ok=True)
    aside = folder / path.name
    if os.path.lexists(aside):
        aside = folder / f"{path.stem}.{secrets.token_hex(4)}{path.suffix}"
    os.replace(path, aside)
    return aside


def real_folders(folder: Path) -> list[Path]:
    """The folders in `folder`, not symbolic links to folders."""
    try:
        entries = list(os.scandir(folder))
    except OSError:  # missing, or not a folder
        return []
    return [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]


class NotAFileError(OSError):
    """Something other than a regular file (a folder, a FIFO, a device) is in its place."""


def open_regular(path: Path) -> int:
    """A read-only descriptor of the regular file at `path`. Opened without blocking, so
    that a FIFO in its place is an OSError, as a folder is, rather than a wait forever."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotAFileError(f"{path} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _footer_damage(fd: int, asset: str, version: str) -> str:
    """ "damaged" unless the file of `fd` looks whole and its footer records `asset` and
    `version` (or neither: a file written before files recorded them), else ""."""
    size = os.fstat(fd).st_size
    if size < 12 or os.pread(fd, 4, 0) != b"PAR1":
        return "damaged"
    tail = os.pread(fd, 8, size - 8)
    length = int.from_bytes(tail[:4], "little")
    if tail[4:] != b"PAR1" or length > size - 12:
        return "damaged"
    footer = os.pread(fd, length, size - 8 - length)
    if ASSET_KEY not in footer:
        return ""
    if _pair(ASSET_KEY, asset) in footer and _pair(VERSION_KEY, version) in footer:
        return ""  # the usual case, found without parsing the footer
    import pyarrow.parquet as pq

    try:  # not where expected: parse the footer to be sure
        with os.fdopen(os.dup(fd), "rb") as handle:
            metadata = pq.read_metadata(handle).metadata
    except Exception:  # pyarrow raises several types for a corrupt footer
        return "damaged"
    return "damaged" if identity_problem(metadata, asset, version) else ""


def _pair(key: bytes, value: str) -> bytes:
    """A key-value pair as a Parquet footer stores it (Thrift compact: two binary fields
    with their lengths as varints, then the end of the struct)."""
    return b"".join(b"\x18" + _varint(len(part)) + part for part in (key, value.encode())) + b"\x00"


def _varint(number: int) -> bytes:
    out = bytearray()
    while number >= 0x80:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


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


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _write(table: pa.Table, path: Path) -> None:
    import pyarrow.parquet as pq

    try:
        with open(path, "wb") as handle:
            pq.write_table(table, handle, write_page_checksum=True)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _fsync(path: Path) -> None:
    """Flush a file's or a folder's data and metadata to disk; a file since removed (a
    version replaced by --force, a rejected file cleaned up) has nothing left to flush."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def to_arrow(frame: Any) -> pa.Table:
    """The Arrow table for a pandas DataFrame (index kept unless it is a plain range)."""
    import pyarrow as pa

    if isinstance(frame, pa.Table):
        return frame
    # pyarrow converts columns on a new thread pool by default, which costs ~2 ms a call:
    # ten times the conversion of a 10,000-row frame. Only large frames gain from it.
    rows, columns = frame.shape
    threads = None if rows * columns >= _THREADED_CELLS else 1
    return pa.Table.from_pandas(frame, preserve_index=None, nthreads=threads)
