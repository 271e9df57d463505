"""The catalog: a DuckDB file of runs, materializations, lineage and check results.

Every connection is short and guarded by our own lock (see `lock.py`): writers hold it
exclusively for one transaction, readers share it, so a reader gets in between a run's
writes. A run batches its rows and writes them in a few transactions, not one per asset.

A catalog belongs to one project: `vibepiper_meta` records the project's folder, and a
project that finds another's refuses the home (asset names would collide), unless that
folder is gone (the project was moved or renamed) or the home is inside the project's own
folder and outside the recorded one (a copied project's `.vibepiper`): then it adopts it.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vibepiper import clock, engine
from vibepiper.catalog import lock
from vibepiper.catalog.schema import (
    COLUMN_DEFAULTS,
    COLUMN_TYPES,
    MIGRATIONS,
    SCHEMA_VERSION,
    WRITTEN_TABLES,
    create_statements,
)
from vibepiper.errors import CatalogError, UsageError
from vibepiper.processes import pid_alive
from vibepiper.text import first_line
from vibepiper.units import Unit
from vibepiper.versioning.freshness import Current


@dataclass
class Batch:
    """Rows waiting to be written in one transaction."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    run_updates: list[dict[str, Any]] = field(default_factory=list)
    materializations: list[dict[str, Any]] = field(default_factory=list)
    lineage: list[dict[str, Any]] = field(default_factory=list)
    check_reads: list[dict[str, Any]] = field(default_factory=list)
    check_results: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    column_lineage: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: Batch) -> None:
        """Append `other`'s rows after this batch's."""
        for part in fields(self):
            getattr(self, part.name).extend(getattr(other, part.name))

    def __bool__(self) -> bool:
        return any(getattr(self, part.name) for part in fields(self))


class Catalog:
    """The one reader and writer of `catalog.duckdb` under a project's home folder."""

    def __init__(self, home: Path, project: Path | None = None) -> None:
        self.home = home
        self.path = home / "catalog.duckdb"
        self.lock_path = home / "catalog.lock"
        self.project = project  # the project folder using the home (None: not checked)
        self._ready = False
        self._owned = False  # the catalog records `project` as its owner

    @contextlib.contextmanager
    def connect(self, *, write: bool = False) -> Iterator[Any]:
        """A connection held under our lock; writers get the file read-write.

        The first connection of a process also checks the schema version on its way (a
        writer creates or migrates the catalog; a reader of an older one waits for that),
        and that the catalog is this project's (a writer records it if no one has).
        """
        import duckdb

        if write:
            self.make_home()
        elif not self._ready and not self.path.is_file():
            self._create_or_migrate()  # nothing to read yet: create it
        for _ in range(2):
            with lock.hold(self.lock_path, exclusive=write):
                con = self._open(read_only=not write)
                try:
                    if self._ready or self._adopt(con, write):
                        unrecorded = self._check_owner(con)
                        yield con
                        if write and unrecorded:  # only once the writer's work succeeded
                            self._record_owner(con)
                        return
                except duckdb.Error as exc:
                    raise CatalogError(
                        f"a catalog operation failed on {self.path}: {first_line(exc)}",
                        _hint_for(exc),
                    ) from exc
                finally:
                    con.close()
            self._create_or_migrate()  # an older schema seen by a reader: migrate it, read

    def write(self, batch: Batch) -> None:
        """Write every row of `batch` in one transaction."""
        if not batch:
            return
        with self.connect(write=True) as con:
            _write(con, batch)

    def start_run(self, batch: Batch) -> None:
        """Write a run's first rows, and mark abandoned the runs whose process is gone."""
        with self.connect(write=True) as con:
            _abandon_dead_runs(con)
            _write(con, batch)

    def abandon_dead_runs(self) -> list[str]:
        """Mark `abandoned` the runs of this machine whose process is gone; their ids."""
        with self.connect(write=True) as con:
            return _abandon_dead_runs(con)

    def current(self, assets: Iterable[str] | None = None) -> dict[Unit, Current]:
        """The current materialization of each unit of work (of `assets`) that has one."""
        with self.connect() as con:
            found = _current(con)
        if assets is None:
            return found
        wanted = set(assets)
        return {u: c for u, c in found.items() if u.asset in wanted}

    def fetch(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a read-only query as dicts."""
        with self.connect() as con:
            return rows(con, sql, params)

    def _open(self, *, read_only: bool) -> Any:
        import duckdb

        try:
            return engine.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            if _denied(exc):
                raise self._denied_error(exc, read_only) from exc
            raise CatalogError(
                f"cannot open the catalog {self.path}: {first_line(exc)}",
                "if it is not a VibePiper catalog, move it away (a new one is created)",
            ) from exc

    def _denied_error(self, exc: Exception, read_only: bool) -> CatalogError:
        """The catalog exists but this user may not open it as asked: say so, and whose it
        is (moving it away would lose its history)."""
        access = "reading" if read_only else "writing"
        return CatalogError(
            f"cannot open the catalog {self.path} for {access}: {_denial(exc)} "
            f"({lock.ownership(self.path)}; its folder {lock.ownership(self.home)})",
            _access_hint("read" if read_only else "write"),
        )

    def ensure(self) -> None:
        """Create the catalog or migrate it, once per process, and check that it is this
        project's; refuse a newer one, or another project's."""
        if self._ready and (self._owned or self.project is None):
            return
        with self.connect():
            pass

    def _create_or_migrate(self) -> None:
        self.make_home()
        with lock.hold(self.lock_path, exclusive=True):
            con = self._open(read_only=False)
            try:
                self._adopt(con, write=True)
                self._check_owner(con)
            finally:
                con.close()

    def make_home(self) -> None:
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CatalogError(
                f"cannot create the folder {self.home} for the store and catalog: "
                f"{exc.strerror or exc}",
                "pass --home DIR (or VIBEPIPER_HOME) with a folder that can be created",
            ) from None

    def _adopt(self, con: Any, write: bool) -> bool:
        """Check the schema version on `con`; create or migrate it if we may write.

        Returns whether the catalog is ready to use on this connection.
        """
        try:
            version = _schema_version(con)
        except (TypeError, ValueError):
            raise CatalogError(
                f"the schema version recorded in {self.path} is not a number",
                "it was changed by hand or is not a VibePiper catalog; restore it or move it away",
            ) from None
        self._refuse_newer(version)
        if version is None and _foreign_tables(con):
            raise CatalogError(
                f"{self.path} is a DuckDB database but not a VibePiper catalog (it has tables "
                f"{', '.join(_foreign_tables(con)[:3])})",
                "move it away, or pass --home DIR to keep VibePiper's data elsewhere",
            )
        if version != SCHEMA_VERSION:
            if not write:
                return False
            if version is None:
                _create(con, self.project)
                self._owned = self.project is not None
            else:
                _migrate(con, version)
        self._ready = True
        return True

    def _check_owner(self, con: Any) -> bool:
        """Refuse a catalog recorded as another project's; whether ours is still to be
        recorded (by the next successful write: reading claims nothing)."""
        if self.project is None or self._owned:
            return False
        recorded = _meta(con, "project")
        if recorded == str(self.project):
            self._owned = True
            return False
        if recorded is not None and not self._may_adopt(Path(recorded)):
            raise UsageError(
                f"the home {self.home} belongs to the project in {recorded}, not to this "
                f"one in {self.project}",
                "give each project its own home (--home DIR, VIBEPIPER_HOME or "
                "[tool.vibepiper] home), or move the project back; if this project was moved "
                "or copied from there, the home passes to it once that folder is gone",
            )
        return True

    def _record_owner(self, con: Any) -> None:
        con.execute(
            "INSERT OR REPLACE INTO vibepiper_meta VALUES ('project', ?)", [str(self.project)]
        )
        self._owned = True

    def _may_adopt(self, recorded: Path) -> bool:
        """Whether the project recorded as the owner is gone (moved or renamed), or the
        home is inside this project's folder and not the recorded one's (a copy)."""
        assert self.project is not None
        if not recorded.is_dir():
            return True
        return self.home.is_relative_to(self.project) and not self.home.is_relative_to(recorded)

    def _refuse_newer(self, version: int | None) -> None:
        if version is not None and version > SCHEMA_VERSION:
            raise CatalogError(
                f"the catalog {self.path} has schema version {version}, newer than "
                f"this VibePiper understands ({SCHEMA_VERSION})",
                "upgrade vibepiper; the catalog was left untouched",
            )


def _write(con: Any, batch: Batch) -> None:
    con.execute("BEGIN TRANSACTION")
    for table in WRITTEN_TABLES:
        _insert(con, table, getattr(batch, table))
    for update in batch.run_updates:
        con.execute(
            "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
            [update["status"], update["finished_at"], update["run_id"]],
        )
    con.execute("COMMIT")


def _hint_for(exc: Exception) -> str:
    text = str(exc).lower()
    if "no space left" in text or "disk quota" in text or "disk full" in text:
        return (
            "free some disk space and run again: the change was not committed, and nothing "
            "committed or published before it was changed"
        )
    if _denied(exc):
        return _access_hint("write")
    return "if the file was changed by hand, restore it; `vibepiper query` reads it"


def _access_hint(needs: str) -> str:
    return (
        f"this command needs {needs} access to the catalog and its folder: run it as their "
        "owner, or have them give you access; keep the file, it holds the project's history"
    )


def _denied(exc: Exception) -> bool:
    text = str(exc).lower()
    return "permission denied" in text or "read-only file system" in text


def _denial(exc: Exception) -> str:
    if "read-only file system" in str(exc).lower():
        return "a read-only file system"
    return "permission denied"


def run_alive(pid: int | None, started_at: datetime | None) -> bool:
    """Whether the process of a run (on this machine) that started at `started_at` (naive
    UTC, as recorded) is still running."""
    since = clock.to_real(started_at) if started_at is not None else None
    return pid_alive(pid, since=since)


def _abandon_dead_runs(con: Any) -> list[str]:
    """Mark `abandoned` the runs still `running` whose process on this machine is gone
    (killed, or the machine restarted): they will never finish by themselves."""
    import socket

    host = socket.gethostname()
    running = con.execute(
        "SELECT run_id, pid, started_at FROM runs WHERE status = 'running' AND host = ?", [host]
    ).fetchall()
    dead = [run_id for run_id, pid, started in running if not run_alive(pid, started)]
    if dead:
        con.execute(
            "UPDATE runs SET status = 'abandoned', finished_at = ? WHERE list_contains(?, run_id)",
            [utcnow(), dead],
        )
    return dead


def _current(con: Any) -> dict[Unit, Current]:
    cursor = con.execute(
        "SELECT c.asset, c.partition_key, c.materialization_id, c.code_version, "
        "c.data_version, c.row_count, c.finished_at, c.code_parts, a.status, "
        "l.upstream_asset, l.upstream_data_version "
        "FROM current_materializations c "
        "LEFT JOIN last_attempts a ON a.asset = c.asset "
        "AND a.partition_key IS NOT DISTINCT FROM c.partition_key "
        "AND a.finished_at > c.finished_at "
        "LEFT JOIN lineage l ON l.materialization_id = c.materialization_id"
    )
    found = itertools.chain.from_iterable(iter(lambda: cursor.fetchmany(10_000), []))
    result: dict[Unit, Current] = {}
    by_id: dict[str, Current] = {}
    # Texts that repeat from row to row (the asset, its code version and parts, for every
    # partition of an asset) are kept once, and rows are read 10,000 at a time: reading
    # 100,000 partitions does not hold them all twice.
    once: dict[str, str] = {}
    for asset, part, mid, code, data, count, finished, parts, last, up, up_version in found:
        asset, code = once.setdefault(asset, asset), once.setdefault(code, code) if code else code
        unit = Unit(asset, part or "")
        entry = result.get(unit)
        if entry is None:
            entry = result[unit] = by_id[mid] = Current(
                asset,
                mid,
                code,
                data,
                count,
                finished,
                {},
                once.setdefault(parts, parts) if parts else {},
                last or "succeeded",
                partition=unit.partition,
            )
        if up is not None:
            entry.inputs[up] = up_version
    for mid, other, version in con.execute(
        "SELECT c.materialization_id, r.asset, r.data_version FROM current_materializations c "
        "JOIN check_reads r ON r.materialization_id = c.materialization_id"
    ).fetchall():
        if mid in by_id:
            by_id[mid].check_reads[other] = version
    return result


def utcnow() -> datetime:
    """Now, in UTC without a zone: how the catalog records times (see vibepiper.clock)."""
    return clock.utcnow()


def rows(con: Any, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Rows of `sql` on an open connection, as dicts."""
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _schema_version(con: Any) -> int | None:
    value = _meta(con, "schema_version")
    return None if value is None else int(value)  # a ValueError if changed by hand: _adopt


def _meta(con: Any, key: str) -> str | None:
    """The value of `key` in `vibepiper_meta`, if the table and the key exist."""
    import duckdb

    try:  # (asking information_schema first would take 5 times as long)
        row = con.execute("SELECT value FROM vibepiper_meta WHERE key = ?", [key]).fetchone()
    except duckdb.CatalogException:  # no such table (DuckDB's "catalog": its schema)
        return None
    return None if row is None else str(row[0])


def _foreign_tables(con: Any) -> list[str]:
    """Tables of a database that has no `vibepiper_meta`: someone else's database."""
    return [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    ]


def _create(con: Any, project: Path | None) -> None:
    con.execute("BEGIN TRANSACTION")
    for statement in create_statements():
        con.execute(statement)
    con.execute(
        "INSERT OR REPLACE INTO vibepiper_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
    )
    if project is not None:  # the project the catalog belongs to
        con.execute("INSERT INTO vibepiper_meta VALUES ('project', ?)", [str(project)])
    con.execute("COMMIT")


def _migrate(con: Any, version: int) -> None:
    con.execute("BEGIN TRANSACTION")
    for step in range(version, SCHEMA_VERSION):
        for statement in MIGRATIONS[step]:
            con.execute(statement)
    for statement in create_statements():
        con.execute(statement)
    con.execute(
        "UPDATE vibepiper_meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)]
    )
    con.execute("COMMIT")


def _insert(con: Any, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (dicts; missing keys are null) in one statement: each column travels
    as one bound list, cast to the table's own column type (4,000 rows: 0.03 s, against
    0.1 s as one JSON document and seconds binding every value). A value of another kind
    than the catalog stores (a number of numpy's, say) sends the rows as JSON text
    instead, which says what it cannot store. Names come from our code; values are bound."""
    import json

    if not rows:
        return
    types = COLUMN_TYPES[table]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lists, constant = [], []
    plain = True
    for column in columns:
        values = [row.get(column) for row in rows]
        kinds = set(map(type, values))  # a handful: looked at once each, not per value
        if any(issubclass(kind, datetime) for kind in kinds):
            values = [_utc(value) for value in values]
        plain = plain and all(issubclass(kind, _PLAIN) for kind in kinds)
        lists.append(values)
        # One value of one kind in every row (1 == 1.0 == True and 0.0 == -0.0, but they
        # are not the same value to store: floats always go as a list).
        constant.append(
            len(kinds) == 1 and kinds != {float} and values.count(values[0]) == len(values)
        )
    if plain:
        _insert_lists(con, table, columns, lists, constant)
        return
    shape = json.dumps([{column: types[column] for column in columns}])
    payload = json.dumps(rows, default=_json_value)
    con.execute(
        f"INSERT INTO {table} BY NAME SELECT unnest(from_json(?::JSON, ?), recursive := true)",
        [payload, shape],
    )


_PLAIN = (str, int, float, datetime, type(None))  # (bool is an int)


def _insert_lists(
    con: Any, table: str, columns: list[str], lists: list[list[Any]], constant: list[bool]
) -> None:
    """Insert the rows whose values are `lists` (one per column, of plain values). A column
    with one value in every row (`constant[i]`) is bound once, not as a list, and left out
    if that value is null and the table gives the column no default (a no-op run's 4,000
    `skipped` rows: a third of the time)."""
    types, defaults = COLUMN_TYPES[table], COLUMN_DEFAULTS[table]
    selected, params = [], []
    for i, (column, values) in enumerate(zip(columns, lists, strict=True)):
        first = values[0]
        same = i > 0 and constant[i]  # (the first column keeps the row count: unnest)
        if same and first is None and column not in defaults:
            continue
        if same:
            selected.append(f"?::{types[column]} AS {column}")
            params.append(first)
        else:
            selected.append(f"unnest(?::{types[column]}[]) AS {column}")
            params.append(values)
    con.execute(f"INSERT INTO {table} BY NAME SELECT {', '.join(selected)}", params)


def _utc(value: Any) -> Any:
    """A time with a zone as the catalog keeps times: UTC, without a zone (bound or sent
    as text with its offset, DuckDB would keep its wall-clock time)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _json_value(value: Any) -> Any:
    value = _utc(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in the catalog")
