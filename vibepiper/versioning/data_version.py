"""Data versions: a hash of a table's content, independent of how its file is encoded.

Columns, their types and their values in row order go into the hash; Parquet encoding,
compression and row-group layout do not. Source files are versioned by their bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

_CHUNK = 1 << 20


def frame_version(frame: pd.DataFrame, schema: pa.Schema | None = None) -> str:
    """A content hash of a DataFrame: column names, types, values (and a non-range index).

    Types are taken as stored (Arrow), so the frame read back from its Parquet file has the
    version it was filed under, whichever pandas dtype held the strings. `schema` is the
    frame's Arrow schema when the caller already has it.
    """
    import pandas as pd
    import pyarrow as pa

    if schema is None:
        schema = pa.Schema.from_pandas(frame, preserve_index=None)
    types = [_stored_type(schema.field(i).type) for i in range(frame.shape[1])]
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(list(zip(map(str, frame.columns), types, strict=True))).encode())
    digest.update(str(len(frame)).encode())
    index = frame.index
    if not _is_default_index(index):
        digest.update(b"index")
        digest.update(pd.util.hash_pandas_object(index, index=False).to_numpy().tobytes())
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        digest.update(pd.util.hash_pandas_object(column, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _stored_type(arrow_type: pa.DataType) -> str:
    # string and large_string (etc.) hold the same values: one name for both
    return str(arrow_type).replace("large_", "")


def _is_default_index(index: pd.Index) -> bool:
    import pandas as pd

    return (
        isinstance(index, pd.RangeIndex)
        and index.start == 0
        and index.step == 1
        and index.name is None
    )


def file_version(path: Path) -> str:
    """A hash of a file's bytes."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
