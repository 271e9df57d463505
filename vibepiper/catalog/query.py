"""Read-only SQL over the catalog and the current data of every asset.

The connection is an in-memory DuckDB that attaches the catalog read-only and sees each
asset's current Parquet file through Arrow, then gives up all file access and locks its
configuration. What a query can touch is enforced by DuckDB's own settings (no writes, no
other files, no extensions), not by inspecting the SQL text. Statements that would only
change the throwaway in-memory database (`CREATE TABLE`, `DROP VIEW`) are refused too,
by the type DuckDB's parser gives each statement, so that `query` reads and nothing else.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from vibepiper import engine
from vibepiper.catalog import lock
from vibepiper.catalog.catalog import Catalog
from vibepiper.catalog.schema import VIEWS, WRITTEN_TABLES
from vibepiper.errors import UsageError

ASSET_SCHEMA = "assets"
# Statement types that only read; PIVOT parses as MULTI. CALL runs table functions.
READING = frozenset({"SELECT", "EXPLAIN", "PRAGMA", "CALL", "MULTI"})
QUARANTINE_SCHEMA = "quarantine"


@contextlib.contextmanager
def sandbox(
    catalog: Catalog,
    asset_files: Mapping[str, Path],
    quarantine_files: Mapping[str, Path] | None = None,
) -> Iterator[Any]:
    """A locked-down connection: catalog tables, plus one view per asset in `asset_files`.

    Catalog tables are `runs`, `materializations`, ... (also `catalog.<table>`); an asset is
    `<name>` (also `assets.<name>`, which always works, even if its name is a table's); the
    rows quarantine removed from an asset's current data are `quarantine.<name>`.
    """
    import pyarrow.dataset as ds

    catalog.ensure()
    with lock.hold(catalog.lock_path, exclusive=False):
        con = engine.connect()
        try:
            con.execute("ATTACH ? AS catalog (READ_ONLY)", [str(catalog.path)])
            for table in (*WRITTEN_TABLES, *VIEWS):
                con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM catalog."{table}"')
            con.execute(f"CREATE SCHEMA {ASSET_SCHEMA}")
            fmt = ds.ParquetFileFormat(
                default_fragment_scan_options=ds.ParquetFragmentScanOptions(
                    page_checksum_verification=True
                )
            )
            for name, path in asset_files.items():
                try:
                    con.register(f"_vp_asset_{name}", ds.dataset(str(path), format=fmt))
                    con.execute(
                        f'CREATE VIEW {ASSET_SCHEMA}."{name}" AS SELECT * FROM "_vp_asset_{name}"'
                    )
                    if name not in WRITTEN_TABLES and name not in VIEWS:
                        con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM "_vp_asset_{name}"')
                except Exception as exc:  # a damaged file: the other assets still answer
                    print(
                        f"warning: asset '{name}' is left out: its stored file {path} is "
                        f"unreadable ({type(exc).__name__}); rebuild it with "
                        f"`vibepiper materialize {name} --force`",
                        file=sys.stderr,
                    )
            con.execute(f"CREATE SCHEMA {QUARANTINE_SCHEMA}")
            for name, path in (quarantine_files or {}).items():
                con.register(f"_vp_quarantine_{name}", ds.dataset(str(path), format=fmt))
                con.execute(
                    f'CREATE VIEW {QUARANTINE_SCHEMA}."{name}" AS '
                    f'SELECT * FROM "_vp_quarantine_{name}"'
                )
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
            yield con
        finally:
            con.close()


def run_query(
    catalog: Catalog,
    asset_files: Mapping[str, Path],
    sql: str,
    quarantine_files: Mapping[str, Path] | None = None,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of `sql`; a SQL error is a UsageError naming the problem."""
    import duckdb

    with sandbox(catalog, asset_files, quarantine_files) as con:
        try:
            cursor = None
            if sql.strip().strip(";").strip():
                _refuse_writes(con, sql)
                cursor = con.execute(sql)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise UsageError(
                f"query failed: {first}", "the catalog is read-only; see `vibepiper query --help`"
            ) from None
        if cursor is None:
            raise UsageError("the query has no statement", "give a SELECT statement")
        if cursor.description is None:
            return [], []
        names = [d[0] for d in cursor.description]
        return names, cursor.fetchall()


def _refuse_writes(con: Any, sql: str) -> None:
    for statement in con.extract_statements(sql):
        kind = statement.type.name
        if kind not in READING:
            raise UsageError(
                f"query failed: {kind} statements are refused: the query is read-only",
                "use SELECT (or WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN, PRAGMA)",
            )
