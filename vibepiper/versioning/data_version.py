"""Data versions: a hash of a table's content, independent of how its file is encoded.

Column names, their types and their values in row order go into the hash (and the index,
as pandas stores it); Parquet encoding, compression, row groups and chunking do not. The
values are hashed straight from the Arrow buffers (SHA-256), which costs a fraction of
writing the same table to Parquet. Source files are versioned by their bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

_CHUNK = 1 << 20
_PARALLEL_CELLS = 1_000_000


def table_version(table: pa.Table) -> str:
    """The data version of an Arrow table (as written to, or read from, the store)."""
    digest = hashlib.sha256()
    header = [
        [name, _stored_type(table.schema.field(i).type)]
        for i, name in enumerate(table.column_names)
    ]
    index = (table.schema.pandas_metadata or {}).get("index_columns", [])
    digest.update(json.dumps([header, index, table.num_rows], default=str).encode())
    columns = [_storage(c) for c in table.columns]
    if table.num_rows * len(columns) >= _PARALLEL_CELLS and len(columns) > 1:
        # hashlib releases the GIL on large buffers: columns hash in parallel
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(len(columns), os.cpu_count() or 1)) as pool:
            parts = list(pool.map(_column_digest, columns))
    else:
        parts = [_column_digest(c) for c in columns]
    for part in parts:
        digest.update(part)
    return digest.hexdigest()[:32]


def _column_digest(column: pa.ChunkedArray) -> bytes:
    digest = hashlib.sha256()
    _update(digest, column.combine_chunks() if column.num_chunks != 1 else column.chunk(0))
    return digest.digest()


def _storage(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """An extension column (pandas' Period, Interval) as its storage: what a process
    that does not know the extension type reads back."""
    import pyarrow as pa

    if isinstance(column.type, pa.ExtensionType):
        return pa.chunked_array([c.storage for c in column.chunks], column.type.storage_type)
    return column


def _stored_type(arrow_type: pa.DataType) -> str:
    """One name per logical type, the same before and after a Parquet round trip: string
    and large_string (etc.) hold the same values, a dictionary's index width and a list's
    item name are encoding details, and an extension type is stored as its storage."""
    import pyarrow as pa

    if isinstance(arrow_type, pa.ExtensionType):
        return _stored_type(arrow_type.storage_type)
    if pa.types.is_dictionary(arrow_type):
        value_type = _stored_type(arrow_type.value_type)
        return f"dictionary<{value_type}, ordered={arrow_type.ordered}>"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return f"list<{_stored_type(arrow_type.value_type)}>"
    if pa.types.is_map(arrow_type):
        return f"map<{_stored_type(arrow_type.key_type)}, {_stored_type(arrow_type.item_type)}>"
    if pa.types.is_struct(arrow_type):
        fields = ", ".join(f"{f.name}: {_stored_type(f.type)}" for f in arrow_type)
        return f"struct<{fields}>"
    return str(arrow_type).replace("large_", "")


def _update(digest: Any, array: pa.Array) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    digest.update(f"|{len(array)}:{array.null_count}|".encode())
    if array.null_count:
        digest.update(pc.is_valid(array).to_numpy(zero_copy_only=False).tobytes())
    if pa.types.is_dictionary(kind):
        _update(digest, array.dictionary)
        _update(digest, array.indices.cast(pa.int64()))
    elif (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
    ):
        _update_binary(digest, array)
    elif _fixed_width(kind):
        if array.null_count:  # what lies under a null is undefined: make it zero
            array = array.fill_null(pa.scalar(False if pa.types.is_boolean(kind) else 0, kind))
        if pa.types.is_boolean(kind):
            array = array.cast(pa.uint8())  # bit-packed otherwise
        width = array.type.bit_width // 8
        start = array.offset * width
        digest.update(memoryview(array.buffers()[1])[start : start + len(array) * width])
    else:  # nested and other rare types: their Python values, slower but exact
        digest.update(repr(array.to_pylist()).encode())


def _fixed_width(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_boolean(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_temporal(kind)
    )


def _update_binary(digest: Any, array: pa.Array) -> None:
    """Strings and bytes: the offsets (rebased to 0, as int64) and the bytes they span."""
    import numpy as np
    import pyarrow as pa

    large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    offset_type = np.int64 if large else np.int32
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offset_type)[
        array.offset : array.offset + len(array) + 1
    ].astype(np.int64, copy=False)
    if len(offsets) == 0:
        return
    digest.update(offsets - offsets[0] if offsets[0] else offsets)
    if buffers[2] is not None:
        digest.update(memoryview(buffers[2])[int(offsets[0]) : int(offsets[-1])])


def file_version(path: Path) -> str:
    """A hash of a file's bytes."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class RowsDigest:
    """The data version of a table that comes as a stream of record batches (a SQL
    asset's output, a streamed one): it does not depend on the rows' order, which
    DuckDB's threads do not keep, nor on how the rows are cut into batches.

    Each row is hashed by DuckDB (`hash()` of all its columns, 64 bits) and the hashes
    are summed (modulo 2**128) with the count of rows; the names and types of the columns
    go in as for `table_version`. Two tables with the same rows in any order get the same
    version; a changed row changes it but with a chance of 2**-64. DuckDB's hash of a
    value may change between DuckDB versions: a new version then makes new data versions
    once (recomputations, never stale data). Its one blind spot: DuckDB hashes 0.0 and
    -0.0 alike.
    """

    def __init__(self) -> None:
        from vibepiper import engine

        self._con = engine.connect()
        self._con.execute("SET threads = 2")
        self.rows = 0
        self._total = 0
        self._header: list[list[str]] | None = None

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        if self._header is None:
            self._header = [[f.name, _stored_type(f.type)] for f in batch.schema]
        if batch.num_rows == 0:
            return
        self._con.register("_vp_rows", batch)
        try:
            [(count, total)] = self._con.execute(
                "SELECT count(*), sum(hash(*COLUMNS(*))::HUGEINT) FROM _vp_rows"
            ).fetchall()
        finally:
            self._con.unregister("_vp_rows")
        self.rows += int(count)
        self._total = (self._total + int(total)) % (1 << 128)

    def version(self) -> str:
        self._con.close()
        text = json.dumps(["rows", self._header or [], self.rows, str(self._total)])
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def rows_version(table: pa.Table) -> str:
    """`RowsDigest`'s version of a whole table (to check a streamed file read back)."""
    digest = RowsDigest()
    digest.add(table)
    return digest.version()
