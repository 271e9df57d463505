"""`vibepiper partitions ASSET`: the state of each partition, and compressed ranges of it.

A partition is `failed` when its latest attempt failed (or its checks failed it), even if
an older version of it is still current; else `missing` if it has no data, `fresh` if a
run would skip it, `stale` otherwise (SPEC §7).
"""

from __future__ import annotations

import itertools
from typing import Any

from vibepiper.definitions.partitions import shown_range
from vibepiper.execution.workspace import Workspace, plan
from vibepiper.versioning.planner import Action, PlanOptions

STATUSES = ("fresh", "stale", "missing", "failed")


def partition_rows(ws: Workspace, name: str) -> list[dict[str, Any]]:
    """Each partition of `name` up to now, in key order (see the module doc)."""
    from vibepiper.catalog.reads import failed_partition_rows

    the_plan = plan(ws, [name], PlanOptions(whole_graph=True))
    failed = {}
    for row in failed_partition_rows(ws.catalog, name):
        if row["status"] == "check_failed":
            checks = ", ".join(row["failed_checks"] or []) or "its checks"
            failed[row["partition_key"]] = f"check_failed: {checks}"
        elif row["status"] == "failed":
            error = (row["error"] or "").strip().splitlines()
            failed[row["partition_key"]] = (error[-1] if error else "it failed")[:300]
    found = []
    for unit in the_plan.units:
        decision = the_plan.decisions[unit]
        cur = the_plan.current.get(unit)
        fresh = decision.action is Action.SKIP
        reasons = [] if fresh else [str(c) for c in decision.causes]
        if unit.partition in failed:
            status, reasons = "failed", [failed[unit.partition]]
        elif cur is None:
            status = "missing"
        elif fresh:
            status = "fresh"
        else:
            status = "stale"
        found.append(
            {
                "key": unit.partition,
                "status": status,
                "data_version": cur.data_version if cur is not None else None,
                "row_count": cur.row_count if cur is not None else None,
                "reasons": reasons,
            }
        )
    return found


def range_lines(rows: list[dict[str, Any]], status: str | None = None) -> list[str]:
    """Runs of consecutive partitions in the same state, one line each
    (`2026-01-01..2026-02-13 fresh`), with their reason when they share one; only those
    of `status`, if given."""
    lines = []
    for state, group in itertools.groupby(rows, key=lambda r: r["status"]):
        chunk = list(group)
        if status is not None and state != status:
            continue
        why = {"; ".join(r["reasons"]) for r in chunk}
        shown = f"{shown_range(chunk[0]['key'], chunk[-1]['key'])} {state}"
        if len(chunk) > 1:
            shown += f" ({len(chunk)})"
        if len(why) == 1 and (reason := why.pop()):
            shown += f": {reason}"
        elif len(why) > 1:
            shown += ": reasons vary (--json lists them)"
        lines.append(shown)
    return lines
