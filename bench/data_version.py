"""Data version (content hash) of a frame against writing the same frame to Parquet.

    python bench/data_version.py [--rows N] [--repeat K] [--json PATH]

The data version runs on every output, so it must cost well below the Parquet write it
accompanies. Both are timed in-process on the same Arrow table (median of K runs).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vibepiper.versioning.data_version import table_version


def frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    data = pd.DataFrame(
        {
            "id": np.arange(rows),
            "amount": rng.random(rows) * 100,
            "status": rng.choice(["placed", "shipped", "completed", "returned"], rows),
            "customer": rng.integers(0, 100_000, rows),
            "when": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 10**6, rows), "s"),
        }
    )
    data.loc[::1000, "amount"] = np.nan
    return data


def timed(work: object, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat + 1):  # the first run warms up
        start = time.perf_counter()
        work()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    table = pa.Table.from_pandas(frame(args.rows), preserve_index=None)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "t.parquet"
        write = timed(lambda: pq.write_table(table, target, write_page_checksum=True), args.repeat)
    version = timed(lambda: table_version(table), args.repeat)
    result = {
        "rows": args.rows,
        "repeat": args.repeat,
        "machine": platform.platform(),
        "parquet_write_s": statistics.median(write),
        "data_version_s": statistics.median(version),
    }
    result["ratio"] = result["data_version_s"] / result["parquet_write_s"]
    print(
        f"{args.rows:,} rows: data version {result['data_version_s']:.3f} s, "
        f"Parquet write {result['parquet_write_s']:.3f} s, ratio {result['ratio']:.2f}"
    )
    out = args.json or Path(__file__).with_name("results") / (
        f"data_version-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    )
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
