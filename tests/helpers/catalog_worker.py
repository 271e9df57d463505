"""Many short open-write-close (or open-read-close) cycles on one catalog (test helper).

    python catalog_worker.py HOME writer|reader WORKER_ID CYCLES [--raw]

A writer inserts one run row per cycle with `Catalog.write` and prints its run id on
stdout once the write has returned (acknowledged). A reader calls `Catalog.current()` and
`Catalog.fetch()`. With --raw, the same cycles go straight to duckdb, without VibePiper's
lock (retrying DuckDB's own "Could not set lock" refusals): the control experiment that
shows the race the lock exists for.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vibepiper.catalog.catalog import Batch, Catalog

# Like VibePiper's own connections: never reach for the network.
RAW_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def run_row(run_id: str) -> dict[str, object]:
    return {"run_id": run_id, "started_at": datetime.now(), "status": "test", "selection": ""}


def vibepiper_cycles(home: Path, role: str, worker: str, cycles: int) -> None:
    catalog = Catalog(home)
    for i in range(cycles):
        if role == "writer":
            run_id = f"{worker}-{i}"
            catalog.write(Batch(runs=[run_row(run_id)]))
            print(run_id, flush=True)
        else:
            catalog.current()
            catalog.fetch("SELECT count(*) AS n FROM runs")


def raw_connect(path: Path, read_only: bool) -> Any:
    import duckdb

    deadline = time.monotonic() + 60
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=RAW_CONFIG)
        except duckdb.IOException as exc:
            if "lock" not in str(exc) or time.monotonic() > deadline:
                raise  # only DuckDB's own "Could not set lock" refusal is worth a retry
            time.sleep(0.001)


def raw_cycles(home: Path, role: str, worker: str, cycles: int) -> None:
    import duckdb

    path = home / "catalog.duckdb"
    for i in range(cycles):
        run_id = f"{worker}-{i}"
        try:
            con = raw_connect(path, read_only=role != "writer")
            try:
                if role == "writer":
                    con.execute(
                        "INSERT INTO runs (run_id, started_at, status, selection) "
                        "VALUES (?, ?, ?, ?)",
                        list(run_row(run_id).values()),
                    )
                else:
                    con.execute("SELECT count(*) FROM runs").fetchall()
            finally:
                con.close()
        except duckdb.Error as exc:  # the race can also break a cycle: not acknowledged
            print(f"{run_id}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            continue
        if role == "writer":
            print(run_id, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home", type=Path)
    parser.add_argument("role", choices=["writer", "reader"])
    parser.add_argument("worker")
    parser.add_argument("cycles", type=int)
    parser.add_argument("--raw", action="store_true")
    args = parser.parse_args()
    cycles = raw_cycles if args.raw else vibepiper_cycles
    cycles(args.home, args.role, args.worker, args.cycles)


if __name__ == "__main__":
    main()
