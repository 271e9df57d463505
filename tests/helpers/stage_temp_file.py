"""Stage a table in a ParquetStore and never publish it (test helper).

    python stage_temp_file.py STORE_ROOT ASSET [--hold]

Prints the temporary file's path. Without --hold it exits at once, with no cleanup, as a
writer killed between staging and publishing would; with --hold it stays alive (its
temp file still being "written") until stdin closes.
"""

from __future__ import annotations

import os
import select
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pyarrow as pa

from vibepiper.storage.parquet_store import ParquetStore


def main() -> None:
    store = ParquetStore(Path(sys.argv[1]))
    staged = store.stage(sys.argv[2], "0123456789abcdef" * 2, pa.table({"x": [1, 2, 3]}))
    print(staged.temp_path, flush=True)
    if "--hold" in sys.argv[3:]:
        select.select([sys.stdin], [], [], 60.0)  # returns when stdin closes
    os._exit(0)  # no cleanup, no publish


if __name__ == "__main__":
    main()
