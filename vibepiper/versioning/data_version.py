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

_CHUNK = 1 << 20


def frame_version(frame: pd.DataFrame) -> str:
    """A content hash of a DataFrame: column names, dtypes, values (and a non-range index)."""
    import pandas as pd

    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(str(len(frame)).encode())
    index = frame.index
    if not _is_default_index(index):
        digest.update(b"index")
        digest.update(pd.util.hash_pandas_object(index, index=False).to_numpy().tobytes())
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        digest.update(pd.util.hash_pandas_object(column, index=False).to_numpy().tobytes())
    return digest.hexdigest()


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
