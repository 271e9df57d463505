"""One Parquet file of the store: written with page checksums and the metadata that lets
a read prove what it got (content hash, asset, version), opened safely, judged.

Everything here works on one path; where files go and what they are named is
`parquet_store`'s business. Only regular files are opened, and without blocking: a FIFO
or a folder in a file's place is damage, not a hang or a crash.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vibepiper.text import first_line, quoted

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

_THREADED_CELLS = 4_000_000  # from this size on, pyarrow's threads convert a frame faster
CONTENT_KEY = b"vibepiper.content"  # the table_version of the data, in the file's metadata
PANDAS_KEY = b"vibepiper.pandas"  # a hash of the pandas metadata (column names, index, dtypes)
ASSET_KEY = b"vibepiper.asset"  # the asset the file was written for
VERSION_KEY = b"vibepiper.version"  # the data version it was written as (its name)
# set in a file written from a stream: its content is RowsDigest's (order-free) version
ROWS_KEY = b"vibepiper.rows"
_ROW_GROUP = 1 << 17  # rows: a stream's small batches are gathered to row groups this big
_INTEGERS = frozenset({"integer", "empty"})  # what pandas' infer_dtype says of row numbers


class IndexNotStorable(ValueError):
    """A DataFrame's index cannot be stored as columns (a level named like a column or
    another level, or by something other than a string)."""


class NotAFileError(OSError):
    """Something other than a regular file (a folder, a FIFO, a device) is in its place."""


def with_identity(table: pa.Table, asset: str, version: str, content: str) -> pa.Table:
    """`table` with the metadata a read checks: its content hash, asset and version."""
    metadata = dict(table.schema.metadata or {})
    metadata[CONTENT_KEY] = content.encode()
    metadata[ASSET_KEY] = asset.encode()
    metadata[VERSION_KEY] = version.encode()
    metadata[PANDAS_KEY] = _digest(metadata.get(b"pandas", b"")).encode()
    return table.replace_schema_metadata(metadata)


def write(table: pa.Table, path: Path) -> None:
    """Write `table` to `path` with page checksums; nothing is left of a failed write."""
    import pyarrow.parquet as pq

    try:
        with open(path, "wb") as handle:
            pq.write_table(table, handle, write_page_checksum=True)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Streamed:
    """What `write_stream` wrote: how many rows, their content version, their schema."""

    rows: int
    content: str
    schema: pa.Schema


class UnstorableStream(ValueError):
    """A stream's schema cannot be stored (no columns, names repeated or not strings)."""


def write_stream(batches: Any, path: Path, asset: str, version: str | None) -> Streamed:
    """Write a stream of record batches (a pyarrow RecordBatchReader, or anything with
    `schema` that iterates batches) to `path` with page checksums, hashing the rows as
    they pass (`RowsDigest`); the file records its content, asset and version (`version`,
    else its content's). Memory holds one row group at a time. Nothing is left of a
    failed write."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vibepiper.versioning.data_version import RowsDigest

    schema = batches.schema
    names = schema.names
    if not names:
        raise UnstorableStream(f"asset '{asset}' returned a stream with no columns")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UnstorableStream(
            f"asset '{asset}' returned duplicate column names {repeated[:5]}; "
            "give each column its own name (AS ...)"
        )
    digest = RowsDigest()
    pending: list[pa.RecordBatch] = []
    held = 0
    try:
        with open(path, "wb") as handle:
            # No min/max statistics for floating-point columns: pyarrow leaves NaN out of
            # them, and DuckDB, trusting them, would skip the row groups that hold NaN
            # (`where x > 100`, `where isnan(x)`). (A frame's NaN is stored as null.)
            exact = [f.name for f in schema if not pa.types.is_floating(f.type)]
            writer = pq.ParquetWriter(
                handle, schema, write_page_checksum=True, write_statistics=exact
            )
            try:
                for batch in batches:
                    digest.add(batch)
                    pending.append(batch)
                    held += batch.num_rows
                    if held >= _ROW_GROUP:
                        writer.write_table(pa.Table.from_batches(pending, schema))
                        pending, held = [], 0
                if pending or digest.rows == 0:
                    writer.write_table(pa.Table.from_batches(pending, schema))
                content = digest.version()
                writer.add_key_value_metadata(
                    {
                        CONTENT_KEY: content.encode(),
                        ASSET_KEY: asset.encode(),
                        VERSION_KEY: (version or content).encode(),
                        ROWS_KEY: b"1",
                        PANDAS_KEY: _digest(b"").encode(),
                    }
                )
            finally:
                writer.close()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Streamed(digest.rows, content, schema)


def streamed_file(path: Path) -> bool:
    """Whether the Parquet file at `path` was written from a stream (`write_stream`)."""
    import pyarrow.parquet as pq

    metadata = pq.read_metadata(path).metadata or {}
    return metadata.get(ROWS_KEY) == b"1"


def fsync(path: Path) -> None:
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


def fsync_all(paths: list[Path], root: Path) -> None:
    """Make every one of `paths` (files and folders) durable.

    Many at once, on Linux: one syncfs(2) of the file system that holds `root` flushes
    them all in one journal commit (4,000 files: ~0.05 s, against ~0.6 s for an fsync of
    each, eight at a time); a path on another file system still gets its own fsync.
    Elsewhere, or for a few paths, an fsync of each, several at once (fsync waits on the
    disk, not the CPU).
    """
    if len(paths) > _SERIAL_SYNCS and _syncfs(root):
        try:
            device = os.stat(root).st_dev
        except OSError:
            device = None
        # (a path gone since, a version replaced by --force, has nothing left to flush)
        paths = [p for p in paths if _device(p) not in (device, None)]
    if len(paths) <= _SERIAL_SYNCS:
        for path in paths:
            fsync(path)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=_SYNC_THREADS) as pool:
        list(pool.map(fsync, paths))


_SERIAL_SYNCS = 8  # more paths than this to make durable: syncfs, or fsyncs in threads
_SYNC_THREADS = 8


def _device(path: Path) -> int | None:
    """The device a path is on, or None if it is gone (nothing left to flush)."""
    try:
        return os.lstat(path).st_dev
    except OSError:
        return None


def _syncfs(root: Path) -> bool:
    """syncfs(2) on the file system of `root`; False where that cannot be done (not
    Linux, no such call, an error reported): the caller then fsyncs each path."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.syncfs
    except (OSError, AttributeError):
        return False
    try:
        fd = os.open(root, os.O_RDONLY)
    except OSError:
        return False
    try:
        return bool(call(fd) == 0)
    finally:
        os.close(fd)


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


def read_verified(path: Path) -> pa.Table:
    """The table at `path`, its page checksums verified (pyarrow's errors let through)."""
    import pyarrow.parquet as pq

    # read by path, not through the descriptor: pyarrow's own file reads the columns of
    # a wide file in parallel (a Python file object: ~20% slower)
    os.close(open_regular(path))  # a FIFO in its place would block a read forever
    table = pq.read_table(path, page_checksum_verification=True)
    if CONTENT_KEY not in (table.schema.metadata or {}):
        # a file written from a stream records its identity in the footer only, after
        # its rows (the Arrow schema it keeps was written before them): take it from there
        footer = pq.read_metadata(path).metadata or {}
        if footer.get(ROWS_KEY) == b"1":
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **footer})
    return table


def problem(path: Path, asset: str, version: str, *, full: bool, source: bool) -> str:
    """What is wrong with the published file at `path`, or "": read in full with `full`
    (checksums, content hash), else only its footer."""
    import pyarrow.parquet as pq

    try:
        if not full:
            os.close(open_regular(path))
            return identity_problem(pq.read_metadata(path).metadata, asset, version)
        table = read_verified(path)
    except NotAFileError:
        return "it is not a regular file"
    except Exception as exc:  # pyarrow raises several types for corrupt files
        return f"unreadable: {type(exc).__name__}: {first_line(exc)}"
    # a source's file is named after the source file's hash, not its content's: without
    # the content recorded in the file (older files), reading it is the test
    return content_problem(table, None if source else version) or identity_problem(
        table.schema.metadata, asset, version
    )


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
    if metadata.get(ROWS_KEY) == b"1":
        from vibepiper.versioning.data_version import rows_version

        actual = rows_version(table.replace_schema_metadata(None))
    else:
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


def footer_damage(fd: int, asset: str, version: str) -> str:
    """ "damaged" unless the file of `fd` looks whole and its footer records `asset` and
    `version` (or neither: a file written before files recorded them), else ""."""
    size = os.fstat(fd).st_size
    if size < 12 or os.pread(fd, 4, 0) != b"PAR1":
        return "damaged"
    tail = os.pread(fd, 8, size - 8)
    length = int.from_bytes(tail[:4], "little")
    if tail[4:] != b"PAR1" or length > size - 12 or length == 0:  # a footer is never empty
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


def dataset(path: Path) -> Any:
    """A pyarrow dataset over the file at `path`, its pages verified as they are read."""
    import pyarrow.dataset as ds

    fmt = ds.ParquetFileFormat(
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(page_checksum_verification=True)
    )
    os.close(open_regular(path))  # a FIFO in its place would block forever
    return ds.dataset(str(path), format=fmt)


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


def link_target(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:  # gone meanwhile
        return "?"


def to_arrow(frame: Any) -> pa.Table:
    """The Arrow table for a pandas DataFrame, its index stored by the rule of
    docs/types.md ("The index"): row numbers dropped, any other index as columns named
    by `index_fields` that pandas reads back as the index."""
    import pyarrow as pa

    if isinstance(frame, pa.Table):
        return frame
    frame = without_row_numbers(frame)
    fields = index_fields(frame)
    # pyarrow converts columns on a new thread pool by default, which costs ~2 ms a call:
    # ten times the conversion of a 10,000-row frame. Only large frames gain from it.
    rows, columns = frame.shape
    threads = None if rows * columns >= _THREADED_CELLS else 1
    if not fields:  # numbered 0, 1, 2...: stored as a range, no column
        return pa.Table.from_pandas(frame, preserve_index=None, nthreads=threads)
    table = pa.Table.from_pandas(frame, preserve_index=True, nthreads=threads)
    return _unnamed_levels_named(table, fields)


def without_row_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` numbered 0, 1, 2... if its index is only row numbers (`row_numbers`), which
    pyarrow would store as a column `__index_level_0__`; else `frame` itself. A default
    RangeIndex is not copied."""
    import pandas as pd

    index = frame.index
    if not row_numbers(index) or index.equals(pd.RangeIndex(len(index))):
        return frame
    return frame.reset_index(drop=True)


def row_numbers(index: pd.Index) -> bool:
    """Whether an index holds nothing but row numbers: unnamed, one level, integers (a
    RangeIndex, or what filtering or sorting a frame leaves of one)."""
    from pandas.api.types import infer_dtype

    return index.nlevels == 1 and index.name is None and infer_dtype(index) in _INTEGERS


def index_fields(frame: pd.DataFrame) -> list[str]:
    """The columns that store the index of `frame` (with its row numbers dropped): none
    for rows numbered 0, 1, 2...; else each level's name, an unnamed one named as
    `reset_index()` names it (`index`, or `level_0`, `level_1`... in a MultiIndex). An
    IndexNotStorable if a level has no such name of its own."""
    index = frame.index
    if row_numbers(index):
        return []
    odd = [n for n in index.names if n is not None and not isinstance(n, str)]
    if odd:
        raise IndexNotStorable(
            f"its index is named {odd[0]!r}, not a string; name it with "
            "rename_axis('name') or drop it with reset_index(drop=True)"
        )
    default = ["index"] if index.nlevels == 1 else [f"level_{i}" for i in range(index.nlevels)]
    fields = [default[i] if n is None else str(n) for i, n in enumerate(index.names)]
    for i, field in enumerate(fields):
        if field in frame.columns or field in fields[:i]:
            raise IndexNotStorable(_collision(field, unnamed=index.names[i] is None))
    return fields


def _collision(field: str, unnamed: bool) -> str:
    if unnamed:
        return (
            f"its unnamed index would be stored as column {quoted(field)}, which it has "
            "already; name the index with rename_axis('name') or drop it with "
            "reset_index(drop=True)"
        )
    return (
        f"its index {quoted(field)} has the name of a column or of another index level; "
        "drop one of them (reset_index(drop=True), or set_index(..., drop=True)) or rename "
        "it with rename_axis([...])"
    )


def _unnamed_levels_named(table: pa.Table, fields: list[str]) -> pa.Table:
    """`table` with the columns pyarrow names `__index_level_0__`... for unnamed index
    levels renamed to `fields`. The pandas metadata keeps the level's name (null) apart
    from its column's (`field_name`), so pandas still reads the level back unnamed."""
    import json

    metadata = table.schema.pandas_metadata
    renamed = dict(zip(metadata["index_columns"], fields, strict=True))
    if all(old == new for old, new in renamed.items()):
        return table
    metadata["index_columns"] = fields
    for column in metadata["columns"]:
        column["field_name"] = renamed.get(column["field_name"], column["field_name"])
    table = table.rename_columns([renamed.get(c, c) for c in table.column_names])
    return table.replace_schema_metadata({b"pandas": json.dumps(metadata).encode()})


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


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()
