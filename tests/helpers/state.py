"""What a project's home holds, read straight from disk: current versions and files, the
states of the latest run, file digests, and whether a store file is whole.

Functions take the home folder (`root / ".vibepiper"` unless a test moved it) and read the
catalog through the same Catalog class (and lock) the CLI uses."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from tests.conftest import catalog_rows
from vibepiper.catalog.catalog import Catalog
from vibepiper.versioning.data_version import table_version

CATALOG_TABLES = ("runs", "materializations", "lineage", "check_results", "logs")


def home_of(root: Path) -> Path:
    """The default home of the project in `root`."""
    return root / ".vibepiper"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by path relative to it."""
    return {
        p.relative_to(folder).as_posix(): digest(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def store_hashes(root: Path) -> dict[str, str]:
    """Every file of the project's store, by path relative to it, with a hash of its bytes."""
    return file_digests(home_of(root) / "store")


def catalog_path(root: Path) -> Path:
    return home_of(root) / "catalog.duckdb"


def project_hashes(root: Path) -> dict[str, str]:
    """Every file under the project but lock files (their content is the holder's pid) and
    the snapshot (rewritten by any command that imports the project, by design)."""
    return {
        p.relative_to(root).as_posix(): digest(p)
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(".lock") and p.name != "snapshot.json"
    }


def table_counts(root: Path) -> dict[str, int]:
    """Rows in each catalog table, read in one read-only connection (not through Catalog,
    so that the catalog under test is only looked at)."""
    sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in CATALOG_TABLES)
    con = duckdb.connect(str(catalog_path(root)), read_only=True)
    try:
        return dict(con.execute(sql).fetchall())
    finally:
        con.close()


def catalog_files(root: Path) -> dict[str, str]:
    """The catalog file (or what stands in its place) and its write-ahead log, hashed."""
    path = catalog_path(root)
    found = [p for p in path.parent.glob("catalog.duckdb*") if p.is_file()]
    if path.is_dir():
        found += [p for p in path.rglob("*") if p.is_file()]
    return {p.relative_to(path.parent).as_posix(): digest(p) for p in found}


def catalog_state(root: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The catalog's bytes and the row count of each of its tables."""
    return catalog_files(root), table_counts(root)


def current_versions(home: Path) -> dict[str, str]:
    """asset -> data version of its current materialization."""
    assert (home / "catalog.duckdb").is_file(), f"no catalog in {home} (pass the home)"
    rows = Catalog(home).fetch("SELECT asset, data_version FROM current_materializations")
    return {r["asset"]: r["data_version"] for r in rows}


def current_file(root: Path, asset: str) -> Path:
    """The store file of `asset`'s current version."""
    version = current_versions(home_of(root))[asset]
    return home_of(root) / "store" / asset / f"{version}.parquet"


def last_run_states(home: Path) -> dict[str, str]:
    """Each asset's state in the latest run."""
    assert (home / "catalog.duckdb").is_file(), f"no catalog in {home} (pass the home)"
    rows = Catalog(home).fetch(
        "SELECT asset, status FROM materializations WHERE run_id = (SELECT run_id FROM runs "
        "ORDER BY started_at DESC, run_id DESC LIMIT 1)"
    )
    return {r["asset"]: r["status"] for r in rows}


def stored_problem(path: Path, version: str | None = None, source: bool = False) -> str:
    """What is wrong with a store file ("" if nothing): it must read with page checksums
    verified and, unless it is a source's (named by its CSV's hash), hash to `version`."""
    try:
        table = pq.read_table(path, page_checksum_verification=True)
    except FileNotFoundError:
        return "missing"
    except Exception as exc:  # pyarrow raises several types for damaged files
        return f"unreadable: {type(exc).__name__}: {exc}"
    if version is not None and not source:
        actual = table_version(table)
        if actual != version:
            return f"hashes to {actual}, not to {version}"
    return ""


def assert_store_matches_catalog(root: Path) -> None:
    """Each current materialization's file exists and reads; every published (non-temp)
    file in the store is one the catalog recorded as succeeded."""
    home = home_of(root)
    store = home / "store"
    for asset, version in current_versions(home).items():
        path = store / asset / f"{version}.parquet"
        assert path.is_file(), path
        pq.read_table(path)
    rows = Catalog(home).fetch(
        "SELECT asset, data_version FROM materializations WHERE status = 'succeeded'"
    )
    known = {(r["asset"], r["data_version"]) for r in rows}
    published = {
        (p.parent.name, p.stem) for p in store.glob("*/*.parquet") if not p.name.startswith(".")
    }
    assert published <= known, published - known


def last_run(root: Path) -> tuple[str, str, int]:
    """(run_id, status, pid) of the latest run."""
    rows = catalog_rows(
        root, "SELECT run_id, status, pid FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1"
    )
    return rows[0]


def states(root: Path, run_id: str | None = None) -> dict[str, tuple[str, str | None]]:
    """asset -> (status, error) in a run (default: the latest)."""
    run_id = run_id or last_run(root)[0]
    rows = catalog_rows(
        root, "SELECT asset, status, error FROM materializations WHERE run_id = ?", [run_id]
    )
    return {asset: (status, error) for asset, status, error in rows}


def read_asset(root: Path, asset: str) -> Any:
    """An asset's current data, straight from its Parquet file."""
    [(version,)] = catalog_rows(
        root, "SELECT data_version FROM current_materializations WHERE asset = ?", [asset]
    )
    return pq.read_table(home_of(root) / "store" / asset / f"{version}.parquet").to_pandas()


def max_overlap(intervals: list[tuple[Any, Any]]) -> int:
    """The most intervals open at one moment (an end before a start at the same time)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most
