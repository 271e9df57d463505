"""The `ticks` table (SPEC §8): what `vibepiper serve` decided, written before it acts.

A tick is recorded (with the id its run will have) before that run is launched, in one
transaction with the other ticks of the same evaluation, and `(schedule, scheduled_for)`
is the table's primary key: a tick fires at most once, and a recorded tick whose run never
started is launched when `serve` starts again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vibepiper.catalog.catalog import Catalog, rows, utcnow

# A tick's status: waiting for its run (`queued`), its run started (`launched`), its run's
# end (`succeeded`, `failed`, `cancelled`, `abandoned`), not launched (`skipped`), or the
# moment a schedule was first seen or changed (`registered`: no earlier tick is replayed).
WAITING = ("queued", "launched")
COLUMNS = (
    "schedule",
    "scheduled_for",
    "evaluated_at",
    "status",
    "run_id",
    "reason",
    "cause",
    "selection",
    "force",
    "launched_at",
)


@dataclass(frozen=True)
class Tick:
    schedule: str  # a schedule's name, or a trigger: sensor:PATH, automation:A, freshness:A
    scheduled_for: datetime  # naive UTC
    status: str
    run_id: str | None = None
    reason: str = ""
    cause: str | None = None
    selection: str = ""
    force: bool = False

    def row(self, evaluated_at: datetime) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "scheduled_for": self.scheduled_for,
            "evaluated_at": evaluated_at,
            "status": self.status,
            "run_id": self.run_id,
            "reason": self.reason or None,
            "cause": self.cause,
            "selection": self.selection,
            "force": self.force,
            "launched_at": None,
        }


def record(catalog: Catalog, ticks: list[Tick]) -> list[Tick]:
    """Insert `ticks` in one transaction; those already recorded (same schedule and
    scheduled_for) are left as they are. The ticks that were inserted."""
    if not ticks:
        return []
    now = utcnow()
    inserted = []
    with catalog.connect(write=True) as con:
        con.execute("BEGIN TRANSACTION")
        for tick in ticks:
            row = tick.row(now)
            placeholders = ", ".join("?" for _ in COLUMNS)
            done = con.execute(
                f"INSERT INTO ticks ({', '.join(COLUMNS)}) VALUES ({placeholders}) "
                "ON CONFLICT DO NOTHING RETURNING schedule",
                [row[c] for c in COLUMNS],
            ).fetchall()
            if done:
                inserted.append(tick)
        con.execute("COMMIT")
    return inserted


def latest(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Each schedule's (or trigger's) latest tick, by scheduled_for."""
    with catalog.connect() as con:
        found = rows(
            con,
            "SELECT * FROM ticks QUALIFY row_number() OVER "
            "(PARTITION BY schedule ORDER BY scheduled_for DESC) = 1",
        )
    return {r["schedule"]: r for r in found}


def latest_causes(catalog: Catalog) -> dict[str, str | None]:
    """The cause of each trigger's latest tick that was not skipped (`{"automation:clean":
    "...", "sensor:data/raw.csv": "..."}`): what fired it last."""
    with catalog.connect() as con:
        found = con.execute(
            "SELECT schedule, cause FROM ticks WHERE status <> 'skipped' QUALIFY "
            "row_number() OVER (PARTITION BY schedule ORDER BY scheduled_for DESC) = 1"
        ).fetchall()
    return dict(found)


def waiting(catalog: Catalog) -> list[dict[str, Any]]:
    """The ticks whose run has not ended (queued or launched), oldest first, each with its
    run's status if the run was recorded (else None)."""
    with catalog.connect() as con:
        return rows(
            con,
            "SELECT t.*, r.status AS run_status, r.pid AS run_pid, "
            "r.started_at AS run_started_at, r.host AS run_host "
            "FROM ticks t LEFT JOIN runs r USING (run_id) "
            "WHERE t.status IN ('queued', 'launched') ORDER BY t.scheduled_for, t.schedule",
        )


def launched(catalog: Catalog, run_id: str) -> None:
    """The run of these ticks was started now."""
    with catalog.connect(write=True) as con:
        con.execute(
            "UPDATE ticks SET status = 'launched', launched_at = ? "
            "WHERE run_id = ? AND status = 'queued'",
            [utcnow(), run_id],
        )


def requeue(catalog: Catalog, run_id: str) -> None:
    """The run of these ticks never started (it was stopped before it recorded itself):
    they wait for it again."""
    with catalog.connect(write=True) as con:
        con.execute(
            "UPDATE ticks SET status = 'queued', launched_at = NULL "
            "WHERE run_id = ? AND status IN ('queued', 'launched')",
            [run_id],
        )


def finished(catalog: Catalog, run_id: str, status: str, reason: str | None = None) -> None:
    """The run of these ticks ended with `status` (or never started: `reason` says why)."""
    with catalog.connect(write=True) as con:
        con.execute(
            "UPDATE ticks SET status = ?, reason = coalesce(?, reason) "
            "WHERE run_id = ? AND status IN ('queued', 'launched')",
            [status, reason, run_id],
        )


def recent(catalog: Catalog, limit: int = 50, schedule: str | None = None) -> list[dict[str, Any]]:
    """The latest ticks, newest first (of `schedule` only, if given)."""
    where = "WHERE schedule = ?" if schedule is not None else ""
    params: list[Any] = [schedule] if schedule is not None else []
    with catalog.connect() as con:
        return rows(
            con,
            f"SELECT schedule, scheduled_for, evaluated_at, status, run_id, reason, "
            f"launched_at FROM ticks {where} "
            "ORDER BY evaluated_at DESC, scheduled_for DESC LIMIT ?",
            [*params, limit],
        )


def of_run(catalog: Catalog, run_id: str) -> list[dict[str, Any]]:
    """The ticks that launched run `run_id`."""
    with catalog.connect() as con:
        return rows(
            con,
            "SELECT schedule, scheduled_for, reason FROM ticks WHERE run_id = ? ORDER BY schedule",
            [run_id],
        )
