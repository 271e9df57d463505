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
header). A corrupted file is an error, never wrong data.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vibepiper.errors import StoreError
from vibepiper.processes import pid_alive
from vibepiper.storage.fidelity import to_frame
from vibepiper.text import first_line

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

TMP_SUFFIX = ".tmp"
_THREADED_CELLS = 4_000_000  # from this size on, pyarrow's threads convert a frame faster
_SERIAL_SYNCS = 8  # more files than this to sync: several fsyncs at once
_SYNC_THREADS = 8
CONTENT_KEY = b"vibepiper.content"  # the table_version of the data, in the file's metadata
PANDAS_KEY = b"vibepiper.pandas"  # a hash of the pandas metadata (column names, index, dtypes)


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
        return self.root / asset / f"{data_version}.parquet"

    def rejected_path(self, asset: str, materialization_id: str) -> Path:
        return self.root / asset / "rejected" / f"{materialization_id}.parquet"

    def quarantine_path(self, asset: str, materialization_id: str) -> Path:
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

        A cheap look (its size and the magic bytes a Parquet file starts and ends with)
        that catches a missing, truncated or overwritten file; bytes flipped inside it are
        caught by the page checksums when it is read.
        """
        path = self.path_for(asset, data_version)
        try:
            with open(path, "rb") as handle:
                head = handle.read(4)
                size = handle.seek(0, os.SEEK_END)
                if size < 12:
                    return "damaged"
                handle.seek(size - 4)
                tail = handle.read(4)
        except FileNotFoundError:
            return "missing"
        except OSError:
            return "damaged"
        return "" if head == tail == b"PAR1" else "damaged"

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
            table = pq.read_table(path, page_checksum_verification=True)
            wrong = content_problem(table)
            if not wrong:
                return to_frame(table) if frame else table
        except FileNotFoundError:
            raise StoreError(
                f"the stored data of asset '{asset}' is missing ({path})",
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

    def dead_temp_files(self, folder: Path | None = None) -> list[Path]:
        """Temporary files whose writing process is gone, in one asset's folder or all."""
        if folder is None:
            folders = [f for f in self.root.iterdir() if f.is_dir()] if self.root.is_dir() else []
        else:
            folders = [folder]
        return [
            temp
            for f in folders
            for temp in [*f.glob(f".*{TMP_SUFFIX}"), *f.glob(f"*/.*{TMP_SUFFIX}")]
            if not pid_alive(_writer_pid(temp), since=_mtime(temp))
        ]

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
