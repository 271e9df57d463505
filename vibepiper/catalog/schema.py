"""The catalog's tables (SPEC §6) and the record of their schema version.

Times are UTC. The four public tables and their columns are a contract; columns may be
added, never renamed or removed. Bump SCHEMA_VERSION and add a step to MIGRATIONS when
the layout changes.
"""

from __future__ import annotations

SCHEMA_VERSION = 8

TABLES: dict[str, str] = {
    "vibepiper_meta": """
        key VARCHAR PRIMARY KEY,
        value VARCHAR NOT NULL""",
    "runs": """
        run_id VARCHAR PRIMARY KEY,
        started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP,
        status VARCHAR NOT NULL,
        selection VARCHAR,
        pid INTEGER,
        host VARCHAR,
        command VARCHAR,
        kind VARCHAR DEFAULT 'materialize',
        trigger VARCHAR DEFAULT 'manual'""",
    "materializations": """
        materialization_id VARCHAR PRIMARY KEY,
        run_id VARCHAR NOT NULL,
        asset VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        code_version VARCHAR,
        data_version VARCHAR,
        row_count BIGINT,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        error VARCHAR,
        attempts INTEGER,
        config VARCHAR,
        reason VARCHAR,
        quarantined_rows BIGINT,
        code_parts VARCHAR,
        partition_key VARCHAR""",
    "lineage": """
        materialization_id VARCHAR NOT NULL,
        upstream_asset VARCHAR NOT NULL,
        upstream_data_version VARCHAR""",
    # The data version of each other asset that a materialization's checks read when they
    # judged it (a relationship's target, a @check's other parameters, an expect.sql's
    # tables): when one changes, the asset's data is validated again.
    "check_reads": """
        materialization_id VARCHAR NOT NULL,
        asset VARCHAR NOT NULL,
        data_version VARCHAR""",
    # SPEC §10: which upstream columns each output column of a SQL asset comes from (one
    # row per pair; a column computed from no input column, a constant or a count, has one
    # row whose upstream_asset and upstream_column are NULL).
    "column_lineage": """
        materialization_id VARCHAR NOT NULL,
        column_name VARCHAR NOT NULL,
        upstream_asset VARCHAR,
        upstream_column VARCHAR""",
    "check_results": """
        materialization_id VARCHAR NOT NULL,
        check_name VARCHAR NOT NULL,
        severity VARCHAR NOT NULL,
        passed BOOLEAN NOT NULL,
        failing_rows BIGINT,
        message VARCHAR,
        sample VARCHAR,
        run_id VARCHAR,
        checked_at TIMESTAMP,
        quarantined BOOLEAN""",
    # Each asset's log lines in a run (context.log and anything its code logs), and a line
    # for each failed attempt that was retried.
    "logs": """
        run_id VARCHAR NOT NULL,
        materialization_id VARCHAR,
        asset VARCHAR NOT NULL,
        seq INTEGER NOT NULL,
        logged_at TIMESTAMP NOT NULL,
        level VARCHAR NOT NULL,
        logger VARCHAR,
        message VARCHAR""",
    # What `vibepiper serve` decided (SPEC §8): each due tick of a schedule, and each
    # sensor, automation or freshness trigger that fired or was held back. `schedule` is a
    # schedule's name or the trigger (`sensor:PATH`, `automation:ASSET`, `freshness:ASSET`);
    # `cause` what the trigger saw (a file's hash, the input versions...), so that one
    # cause fires once; `run_id` is chosen before the run starts.
    "ticks": """
        schedule VARCHAR NOT NULL,
        scheduled_for TIMESTAMP NOT NULL,
        evaluated_at TIMESTAMP NOT NULL,
        status VARCHAR NOT NULL,
        run_id VARCHAR,
        reason VARCHAR,
        cause VARCHAR,
        selection VARCHAR,
        force BOOLEAN,
        launched_at TIMESTAMP""",
}
# Constraints of the tables above, by table.
CONSTRAINTS: dict[str, str] = {"ticks": "PRIMARY KEY (schedule, scheduled_for)"}

# The materialization each unit of work's current data comes from: its latest that
# succeeded. A unit is an asset and a partition key (NULL: the whole asset).
VIEWS: dict[str, str] = {
    "current_materializations": """
        SELECT * FROM materializations
        WHERE status = 'succeeded' AND data_version IS NOT NULL
        QUALIFY row_number() OVER (
            PARTITION BY asset, partition_key
            ORDER BY finished_at DESC, materialization_id DESC) = 1""",
    # Each unit's latest attempt to compute it (skipped and blocked runs attempted nothing):
    # succeeded, failed, check_failed, or cancelled (recorded as failed, "cancelled").
    "last_attempts": """
        SELECT asset, partition_key, finished_at,
            CASE WHEN status = 'failed' AND error = 'cancelled' THEN 'cancelled'
                ELSE status END AS status
        FROM materializations
        WHERE status IN ('succeeded', 'failed', 'check_failed')
        QUALIFY row_number() OVER (
            PARTITION BY asset, partition_key
            ORDER BY finished_at DESC, materialization_id DESC) = 1""",
}

PUBLIC_TABLES = (
    "runs",
    "materializations",
    "lineage",
    "check_results",
    "ticks",
    "column_lineage",
)
WRITTEN_TABLES = (
    "runs",
    "materializations",
    "lineage",
    "check_results",
    "check_reads",
    "logs",
    "column_lineage",
)
# what a run inserts rows into (ticks are written by `serve` alone: see catalog.ticks)
QUERIED_TABLES = (*WRITTEN_TABLES, "ticks")  # what `vibepiper query` can read

# MIGRATIONS[n] turns a catalog of schema version n into version n + 1 (the views are
# recreated after every migration).
MIGRATIONS: dict[int, list[str]] = {
    1: [
        "ALTER TABLE runs ADD COLUMN IF NOT EXISTS kind VARCHAR DEFAULT 'materialize'",
        "ALTER TABLE materializations ADD COLUMN IF NOT EXISTS quarantined_rows BIGINT",
        "ALTER TABLE materializations ADD COLUMN IF NOT EXISTS code_parts VARCHAR",
        "ALTER TABLE check_results ADD COLUMN IF NOT EXISTS run_id VARCHAR",
        "ALTER TABLE check_results ADD COLUMN IF NOT EXISTS checked_at TIMESTAMP",
        "ALTER TABLE check_results ADD COLUMN IF NOT EXISTS quarantined BOOLEAN",
    ],
    2: [],  # the `logs` table, made by the CREATE ... IF NOT EXISTS that follow each migration
    3: [],  # the `check_reads` table, made the same way
    4: ["ALTER TABLE materializations ADD COLUMN IF NOT EXISTS partition_key VARCHAR"],
    5: [],  # last_attempts tells a cancelled attempt from a failed one
    6: ["ALTER TABLE runs ADD COLUMN IF NOT EXISTS trigger VARCHAR DEFAULT 'manual'"],
    7: [],  # the `column_lineage` table (SPEC §10), made by the CREATE ... IF NOT EXISTS
    # (and the `ticks` table, made by the CREATE ... IF NOT EXISTS)
}


def _column_types(columns: str) -> dict[str, str]:
    types = {}
    for line in columns.strip().split(","):
        name, kind = line.split()[:2]
        types[name] = kind
    return types


# table -> column -> DuckDB type, read off the DDL above
COLUMN_TYPES: dict[str, dict[str, str]] = {
    name: _column_types(columns) for name, columns in TABLES.items()
}
# table -> the columns given a DEFAULT by the DDL above (an insert that leaves them out
# stores that default, not null)
COLUMN_DEFAULTS: dict[str, frozenset[str]] = {
    name: frozenset(
        line.split()[0] for line in columns.strip().split(",") if " DEFAULT " in f" {line} "
    )
    for name, columns in TABLES.items()
}


def create_statements() -> list[str]:
    statements = [
        f"CREATE TABLE IF NOT EXISTS {name} ({cols}"
        + (f", {CONSTRAINTS[name]})" if name in CONSTRAINTS else ")")
        for name, cols in TABLES.items()
    ]
    statements += [f"CREATE OR REPLACE VIEW {name} AS {sql}" for name, sql in VIEWS.items()]
    return statements
