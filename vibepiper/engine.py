"""DuckDB connections with the settings every VibePiper connection needs.

Extension auto-install and auto-load are off: DuckDB would otherwise try the network
(measured: a 2.5 s wait on DNS). Parquet, JSON and ICU are built in.
"""

from __future__ import annotations

from typing import Any

DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


def connect(database: str = ":memory:", *, read_only: bool = False) -> Any:
    import duckdb

    return duckdb.connect(database, read_only=read_only, config=DUCKDB_CONFIG)
