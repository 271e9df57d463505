"""Data version (content hash) of a frame against writing the same frame to Parquet.

    python bench/data_version.py [--rows N] [--repeat K] [--json PATH]

The data version runs on every output, so it must cost well below the Parquet write it
accompanies. Both are timed in-process on the same Arrow table (median of K runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from common import OtherCpu, save_report, time_runs

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    others = OtherCpu()
    table = pa.Table.from_pandas(frame(args.rows), preserve_index=None)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "t.parquet"
        _, write = time_runs(
            lambda: pq.write_table(table, target, write_page_checksum=True), args.repeat
        )
    _, version = time_runs(lambda: table_version(table), args.repeat)
    result = {
        "rows": args.rows,
        "repeat": args.repeat,
        "machine": platform.platform(),
        "parquet_write_s": statistics.median(write),
        "data_version_s": statistics.median(version),
        "parquet_write_times_s": write,
        "data_version_times_s": version,
        "other_processes_cpu_share": others.share(),
    }
    result["ratio"] = result["data_version_s"] / result["parquet_write_s"]
    print(
        f"{args.rows:,} rows: data version {result['data_version_s']:.3f} s, "
        f"Parquet write {result['parquet_write_s']:.3f} s, ratio {result['ratio']:.2f}"
    )
    save_report(result, "data_version", args.json, dt.datetime.now(dt.UTC))


if __name__ == "__main__":
    main()
