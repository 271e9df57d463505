"""Every read of the catalog that commands and reports make: what happened (runs,
materializations, logs, check results) and which versions exist.

Each function takes the `Catalog` and plain values and returns plain rows (dicts), read on
one connection so that a run writing meanwhile is seen entirely or not at all. Shaping and
rendering them is `vibepiper.reporting`'s job. What the catalog holds came from disk: a
name or version that matches nothing, or several things, is refused with a hint.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from vibepiper.catalog.catalog import Catalog, rows
from vibepiper.errors import AssetNotMaterializedError, SelectionError
from vibepiper.text import quoted

Row = dict[str, Any]

# -- runs and materializations ---------------------------------------------------------


def history_rows(
    catalog: Catalog,
    asset: str,
    limit: int,
    statuses: Collection[str] | None = None,
    partition: str | None = None,
) -> list[Row]:
    """Materializations of `asset` (only those of `statuses`, and of the partition
    `partition`, if given), newest first, each with its inputs and check results."""
    wanted = None if statuses is None else sorted(statuses)
    with catalog.connect() as con:
        made = rows(
            con,
            "SELECT * FROM materializations WHERE asset = ? "
            "AND (? IS NULL OR list_contains(?, status)) "
            "AND (CAST(? AS VARCHAR) IS NULL OR partition_key = ?) "
            "ORDER BY finished_at DESC, materialization_id DESC LIMIT ?",
            [asset, wanted, wanted, partition, partition, limit],
        )
        ids = [r["materialization_id"] for r in made]
        lineage = rows(
            con,
            "SELECT materialization_id, upstream_asset, upstream_data_version "
            "FROM lineage WHERE list_contains(?, materialization_id) "
            "ORDER BY upstream_asset",
            [ids],
        )
        checks = rows(
            con,
            "SELECT * FROM check_results WHERE list_contains(?, "
            "materialization_id) ORDER BY check_name",
            [ids],
        )
    for row in made:
        mid = row["materialization_id"]
        row["inputs"] = [
            {"asset": r["upstream_asset"], "data_version": r["upstream_data_version"]}
            for r in lineage
            if r["materialization_id"] == mid
        ]
        row["checks"] = [r for r in checks if r["materialization_id"] == mid]
    return made


def status_counts(catalog: Catalog, asset: str) -> dict[str, int]:
    """How many materializations of `asset` ended in each state."""
    found = catalog.fetch(
        "SELECT status, count(*) AS n FROM materializations WHERE asset = ? GROUP BY status",
        [asset],
    )
    return {r["status"]: r["n"] for r in found}


def run_rows(catalog: Catalog, limit: int) -> list[Row]:
    """The latest runs, newest first, each with how many of its assets ended in each state."""
    return catalog.fetch(
        "SELECT r.run_id, r.kind, r.trigger, r.status, r.started_at, r.finished_at, "
        "date_diff('millisecond', r.started_at, r.finished_at) / 1000.0 AS seconds, "
        "r.selection, count(m.asset) AS assets, "
        "count(*) FILTER (m.status = 'succeeded') AS succeeded, "
        "count(*) FILTER (m.status = 'skipped') AS skipped, "
        "count(*) FILTER (m.status IN ('failed', 'check_failed')) AS failed, "
        "count(*) FILTER (m.status = 'blocked') AS blocked, r.pid, r.host, r.command "
        "FROM runs r LEFT JOIN materializations m ON m.run_id = r.run_id "
        "GROUP BY ALL ORDER BY r.started_at DESC, r.run_id DESC LIMIT ?",
        [limit],
    )


def _computed_by(con: Any, asset: str) -> Row | None:
    """The run that last computed (or tried to compute) `asset`: its trigger, and the
    reasons of the ticks that launched it (`vibepiper serve`'s)."""
    found = rows(
        con,
        "SELECT m.run_id, r.trigger, m.finished_at FROM materializations m "
        "JOIN runs r USING (run_id) WHERE m.asset = ? "
        "AND m.status IN ('succeeded', 'failed', 'check_failed') "
        "ORDER BY m.finished_at DESC, m.materialization_id DESC LIMIT 1",
        [asset],
    )
    if not found:
        return None
    row = found[0]
    row["ticks"] = rows(
        con,
        "SELECT schedule, scheduled_for, reason FROM ticks WHERE run_id = ? ORDER BY schedule",
        [row["run_id"]],
    )
    return row


def log_rows(catalog: Catalog, run_id: str, asset: str | None) -> tuple[str, list[Row]]:
    """The log lines of a run (a unique prefix of its id, or `latest`: the latest
    materialize run, as check runs log nothing), optionally of one asset, in the order
    they were logged; with the run's full id."""
    with catalog.connect() as con:
        if run_id == "latest":
            found = rows(
                con,
                "SELECT run_id FROM runs WHERE coalesce(kind, 'materialize') = 'materialize' "
                "ORDER BY started_at DESC, run_id DESC LIMIT 1",
            )
        else:
            found = rows(
                con,
                "SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id LIMIT 2",
                [run_id],
            )
        if len(found) != 1:
            what = "no run" if not found else "more than one run"
            raise SelectionError(
                f"{what} matches {quoted(run_id)}",
                "give a run id (or a unique prefix, or `latest`) from `vibepiper runs`",
            )
        full = found[0]["run_id"]
        lines = rows(
            con,
            "SELECT logged_at, asset, level, logger, message FROM logs "
            "WHERE run_id = ? AND (? IS NULL OR asset = ?) "
            "ORDER BY logged_at, materialization_id, seq",
            [full, asset, asset],
        )
    return full, lines


def last_states(catalog: Catalog) -> dict[str, str]:
    """Each asset's latest materialization status."""
    found = catalog.fetch(
        "SELECT asset, status FROM materializations QUALIFY row_number() "
        "OVER (PARTITION BY asset ORDER BY finished_at DESC, "
        "materialization_id DESC) = 1",
    )
    return {r["asset"]: r["status"] for r in found}


def last_run(catalog: Catalog, asset: str, ancestors: Collection[str]) -> Row | None:
    """The asset's latest materialization row; for a block, the failures among its
    `ancestors` in that run (`caused_by`); for failed checks, those checks."""
    with catalog.connect() as con:
        found = rows(
            con,
            "SELECT run_id, status, reason, error, finished_at, row_count, "
            "data_version FROM materializations WHERE asset = ? "
            "ORDER BY finished_at DESC, materialization_id DESC LIMIT 1",
            [asset],
        )
        if not found:
            return None
        row = found[0]
        row["computed_by"] = _computed_by(con, asset)
        if row["status"] == "blocked":
            row["caused_by"] = rows(
                con,
                "SELECT asset, status, error FROM materializations WHERE run_id = ? AND "
                "status IN ('failed', 'check_failed') AND list_contains(?, asset) "
                "ORDER BY finished_at",
                [row["run_id"], sorted(ancestors)],
            )
        if row["status"] == "check_failed":
            row["failed_checks"] = rows(
                con,
                "SELECT check_name, failing_rows, message FROM check_results "
                "JOIN materializations USING (materialization_id) WHERE asset = ? AND "
                "materializations.run_id = ? AND NOT passed AND severity = 'error'",
                [asset, row["run_id"]],
            )
    return row


def last_check_results(catalog: Catalog) -> list[Row]:
    """The latest result of each check of each asset's latest materialization that ran
    its checks (succeeded or check_failed; `vibepiper check` judges it again, each time
    adding results): asset, check_name, severity, passed, failing_rows, message,
    checked_at; by check name."""
    return catalog.fetch(
        "SELECT m.asset, c.check_name, c.severity, c.passed, c.failing_rows, c.message, "
        "c.checked_at FROM check_results c JOIN ("
        "SELECT asset, materialization_id FROM materializations "
        "WHERE status IN ('succeeded', 'check_failed') QUALIFY "
        "row_number() OVER (PARTITION BY asset ORDER BY finished_at DESC)"
        " = 1) m USING (materialization_id) QUALIFY row_number() OVER ("
        "PARTITION BY m.asset, c.check_name ORDER BY c.checked_at DESC NULLS LAST) = 1 "
        "ORDER BY c.check_name",
    )


def recent_materializations(catalog: Catalog, per_asset: int) -> list[Row]:
    """The latest `per_asset` materializations of every asset, newest first: asset,
    finished_at, status, row_count, data_version."""
    return catalog.fetch(
        "SELECT asset, finished_at, status, row_count, data_version "
        "FROM materializations QUALIFY row_number() OVER (PARTITION BY "
        "asset ORDER BY finished_at DESC) <= ? ORDER BY finished_at DESC",
        [per_asset],
    )


def running_runs(catalog: Catalog) -> list[Row]:
    """The runs still marked running (their process may be gone: see `run_alive`)."""
    return catalog.fetch("SELECT run_id, pid, host, started_at FROM runs WHERE status = 'running'")


def current_data_rows(catalog: Catalog) -> list[Row]:
    """Each unit's current materialization: its asset, partition key (None: the whole
    asset), id, data version and quarantined rows; by asset, then key."""
    return catalog.fetch(
        "SELECT asset, partition_key, materialization_id, data_version, quarantined_rows "
        "FROM current_materializations ORDER BY asset, partition_key"
    )


def failed_partition_rows(catalog: Catalog, asset: str) -> list[Row]:
    """The partitions of `asset` whose latest attempt (succeeded, failed or check_failed)
    failed, with its status, error and the names of the checks that failed it."""
    return catalog.fetch(
        "WITH last AS (SELECT partition_key, status, error, materialization_id, finished_at "
        "FROM materializations WHERE asset = ? AND partition_key IS NOT NULL "
        "AND status IN ('succeeded', 'failed', 'check_failed') "
        "QUALIFY row_number() OVER (PARTITION BY partition_key "
        "ORDER BY finished_at DESC, materialization_id DESC) = 1) "
        "SELECT last.*, (SELECT list(c.check_name ORDER BY c.check_name) FROM check_results c "
        "WHERE c.materialization_id = last.materialization_id AND NOT c.passed "
        "AND c.severity = 'error') AS failed_checks FROM last WHERE status <> 'succeeded'",
        [asset],
    )


# -- versions --------------------------------------------------------------------------


def published_versions(catalog: Catalog) -> set[tuple[str, str]]:
    """Every (asset, data version) a run published or kept, current or not."""
    return {
        (r["asset"], r["data_version"])
        for r in catalog.fetch(
            "SELECT DISTINCT asset, data_version FROM materializations "
            "WHERE data_version IS NOT NULL AND status IN ('succeeded', 'skipped')"
        )
    }


def materialization_ids(catalog: Catalog) -> set[str]:
    """Every materialization id the catalog records."""
    return {
        r["materialization_id"]
        for r in catalog.fetch("SELECT materialization_id FROM materializations")
    }


def full_version(catalog: Catalog, asset: str, prefix: str) -> str:
    """The data version of `asset` that `prefix` abbreviates (one that was published)."""
    made = find_version(catalog, asset, prefix)
    if made["status"] != "succeeded":
        raise AssetNotMaterializedError(
            f"data version {prefix!r} of asset '{asset}' was rejected by its checks "
            "and never published",
            f"see the output kept for inspection with `vibepiper show {asset} --version {prefix}`",
        )
    return str(made["data_version"])


def find_version(catalog: Catalog, asset: str, prefix: str) -> Row:
    """The materialization that made the data version of `asset` that `prefix`
    abbreviates: the latest that published it or, if its checks rejected it every time,
    the latest that kept it aside (status check_failed, with the names of the checks
    that failed in `failed_checks`). Its materialization_id, run_id, data_version,
    status and finished_at."""
    with catalog.connect() as con:
        found = _versions(con, asset, prefix)
        if len(found) == 1 and found[0]["status"] == "check_failed":
            found[0]["failed_checks"] = [
                r["check_name"]
                for r in rows(
                    con,
                    "SELECT check_name FROM check_results WHERE materialization_id = ? "
                    "AND NOT passed AND severity = 'error' ORDER BY check_name",
                    [found[0]["materialization_id"]],
                )
            ]
    if len(found) == 1:
        return found[0]
    if not found:
        raise AssetNotMaterializedError(
            f"asset '{asset}' has no data version {prefix!r}",
            f"see its versions with `vibepiper history {asset}`",
        )
    raise AssetNotMaterializedError(
        f"data version {prefix!r} of asset '{asset}' is ambiguous ({len(found)} match)",
        "give more characters of it",
    )


def _versions(con: Any, asset: str, version: str, before: Any = None, limit: int = 2) -> list[Row]:
    """Up to `limit` data versions of `asset` that `version` abbreviates (or that its
    materialization with that id made), made no later than `before`: each by the latest
    materialization that published it, else the latest whose checks rejected it."""
    return rows(
        con,
        "SELECT materialization_id, run_id, data_version, status, finished_at "
        "FROM materializations WHERE asset = ? AND status IN ('succeeded', 'check_failed') "
        "AND (materialization_id = ? OR starts_with(data_version, ?)) "
        "AND (? IS NULL OR finished_at <= ?) "
        "QUALIFY row_number() OVER (PARTITION BY data_version "
        "ORDER BY status = 'succeeded' DESC, finished_at DESC, materialization_id DESC) = 1 "
        "ORDER BY finished_at DESC LIMIT ?",
        [asset, version, version, before, before, limit],
    )


def rejected_materialization(catalog: Catalog, asset: str) -> str:
    """The id of the latest materialization of `asset` whose output failed its checks
    (kept in the store, never published)."""
    return _one_id(
        catalog,
        "SELECT materialization_id FROM materializations WHERE asset = ? AND "
        "status = 'check_failed' AND data_version IS NOT NULL "
        "ORDER BY finished_at DESC LIMIT 1",
        asset,
        "no rejected output",
    )


def quarantined_materialization(catalog: Catalog, asset: str) -> str:
    """The id of the current materialization of `asset`, if quarantine removed rows."""
    return _one_id(
        catalog,
        "SELECT materialization_id FROM current_materializations WHERE asset = ? "
        "AND quarantined_rows > 0 ORDER BY finished_at DESC, materialization_id DESC",
        asset,
        "no quarantined rows in its current data",
    )


def _one_id(catalog: Catalog, sql: str, asset: str, none: str) -> str:
    found = catalog.fetch(sql, [asset])
    if not found:
        raise AssetNotMaterializedError(
            f"asset '{asset}' has {none}", f"see `vibepiper history {asset}`"
        )
    return str(found[0]["materialization_id"])


def version_tree(catalog: Catalog, asset: str, version: str) -> Row:
    """The materialization that made `version` of `asset` (a data version, a unique prefix
    of one, or a materialization id) and, recursively, those of the exact input versions
    it read: nested rows of asset, data_version, materialization_id, run_id, finished_at
    and inputs (an input nothing recorded making has no materialization_id)."""
    with catalog.connect() as con:
        made = _find(con, asset, version)
        if made is None:
            raise AssetNotMaterializedError(
                f"asset '{asset}' has no data version or materialization {version!r}",
                f"see its versions with `vibepiper history {asset}`",
            )
        _expand(con, made, set())
    return made


def _made(asset: str, data_version: str, found: Row | None = None) -> Row:
    found = found or {}
    return {
        "asset": asset,
        "data_version": data_version,
        "materialization_id": found.get("materialization_id"),
        "run_id": found.get("run_id"),
        "finished_at": found.get("finished_at"),
        "status": found.get("status"),
        "inputs": [],
    }


def _find(con: Any, asset: str, version: str, before: Any = None) -> Row | None:
    found = _versions(con, asset, version, before)
    if not found:
        return None
    if len(found) > 1:
        raise AssetNotMaterializedError(
            f"{version!r} matches several data versions of '{asset}'", "give more characters of it"
        )
    return _made(asset, found[0]["data_version"], found[0])


def _expand(con: Any, made: Row, seen: set[tuple[str, str]]) -> None:
    inputs = rows(
        con,
        "SELECT upstream_asset, upstream_data_version FROM lineage WHERE "
        "materialization_id = ? ORDER BY upstream_asset",
        [made["materialization_id"]],
    )
    for row in inputs:
        asset, version = row["upstream_asset"], row["upstream_data_version"]
        # The materialization that made exactly that version, no later than its reader.
        child = _find(con, asset, version, made["finished_at"]) or _made(asset, version)
        made["inputs"].append(child)
        if child["materialization_id"] and (asset, version) not in seen:
            seen.add((asset, version))
            _expand(con, child, seen)


def runs_page(catalog: Catalog, offset: int, limit: int) -> tuple[int, list[Row]]:
    """How many runs there are, and `limit` of them from `offset`, newest first."""
    with catalog.connect() as con:
        total = con.execute("SELECT count(*) FROM runs").fetchone()[0]
        found = rows(
            con,
            "SELECT r.run_id, r.kind, r.trigger, r.status, r.started_at, r.finished_at, "
            "r.selection, (SELECT count(*) FROM materializations m WHERE m.run_id = r.run_id) "
            "AS assets FROM runs r ORDER BY r.started_at DESC, r.run_id DESC LIMIT ? OFFSET ?",
            [limit, offset],
        )
    return int(total), found


def run_detail(catalog: Catalog, run_id: str) -> tuple[Row | None, list[Row]]:
    """A run's row (None if there is no such run) and its materializations, in order."""
    with catalog.connect() as con:
        found = rows(con, "SELECT * FROM runs WHERE run_id = ?", [run_id])
        if not found:
            return None, []
        made = rows(
            con,
            "SELECT asset, partition_key, status, started_at, finished_at, row_count, "
            "data_version, error, reason, attempts FROM materializations WHERE run_id = ? "
            "ORDER BY started_at NULLS LAST, materialization_id",
            [run_id],
        )
    return found[0], made


def latest_partition_version(catalog: Catalog, asset: str) -> Row | None:
    """The current materialization of `asset`'s partition made last: its key, data
    version and row count."""
    found = catalog.fetch(
        "SELECT partition_key, data_version, row_count FROM current_materializations "
        "WHERE asset = ? AND partition_key IS NOT NULL "
        "ORDER BY finished_at DESC, materialization_id DESC LIMIT 1",
        [asset],
    )
    return found[0] if found else None


def current_version(catalog: Catalog, asset: str) -> Row | None:
    """The current materialization of a whole asset (as `current_materializations` has
    it), found by its own rows only: its data version and row count."""
    found = catalog.fetch(
        "SELECT data_version, row_count FROM materializations WHERE asset = ? "
        "AND partition_key IS NULL AND status = 'succeeded' AND data_version IS NOT NULL "
        "ORDER BY finished_at DESC, materialization_id DESC LIMIT 1",
        [asset],
    )
    return found[0] if found else None


# -- column lineage (SPEC §10) ---------------------------------------------------------


def column_lineage_rows(catalog: Catalog, assets: Collection[str]) -> dict[str, list[Row]]:
    """Of each of `assets`, the column lineage of the data it made last (its current
    materialization, or, if partitioned, that of the partition made last): rows of
    (column_name, upstream_asset, upstream_column) in the output's column order. An
    asset with none recorded (a Python asset, or one never made) is left out."""
    if not assets:
        return {}
    found = catalog.fetch(
        "WITH latest AS (SELECT asset, materialization_id FROM current_materializations "
        "WHERE list_contains(?, asset) "
        "QUALIFY row_number() OVER (PARTITION BY asset "
        "ORDER BY finished_at DESC, materialization_id DESC) = 1) "
        "SELECT l.asset, c.column_name, c.upstream_asset, c.upstream_column, "
        "l.materialization_id FROM latest l JOIN column_lineage c USING (materialization_id) "
        "ORDER BY l.asset, c.rowid",
        [sorted(assets)],
    )
    result: dict[str, list[Row]] = {}
    for row in found:
        result.setdefault(row.pop("asset"), []).append(row)
    return result
