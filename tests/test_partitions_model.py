"""Partitions against a reference model (SPEC §7): random edits to random partitions' source
files recompute exactly the units the model predicts, through real runs on real files.

The pipeline: `events` (a daily-partitioned CSV source) -> `counts` (per day: rows and
total) -> `summary` (unpartitioned: reads every partition). The model knows only what
each edit does to the bytes and to the data:

- a source partition is recomputed when its file's bytes changed since the last run;
- `counts[d]` is recomputed when `events[d]` was (a source's version is its bytes);
- `summary` is recomputed when the data of some `counts[d]` changed (early cutoff: a
  reformatted file that reads as the same rows changes nothing downstream of `counts`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vibepiper import Project

from .conftest import write_project

DAYS = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]

PIPELINE = """
import pandas as pd
from vibepiper import Context, asset, daily, source_file

DAYS = daily(start="2026-01-01", end="2026-01-06")

events = source_file("events", "data/{partition}.csv", partitions=DAYS)


@asset(partitions=DAYS)
def counts(events: pd.DataFrame, context: Context) -> pd.DataFrame:
    return pd.DataFrame(
        {"day": [context.partition.key], "n": [len(events)], "total": [int(events.amount.sum())]}
    )


@asset
def summary(counts: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"n": [int(counts.n.sum())], "total": [int(counts.total.sum())]})
"""


class Day:
    """One day's source file: its rows (amounts) and how it is formatted."""

    def __init__(self) -> None:
        self.amounts = [1, 2]
        self.blank_lines = 0

    def text(self) -> str:
        body = "amount\n" + "".join(f"{a}\n" for a in self.amounts)
        return body + "\n" * self.blank_lines


EDITS = ("bump", "add_row", "reformat", "rewrite_same")


def apply(day: Day, edit: str) -> bool:
    """Apply `edit`; whether it changed the data (the rows read back)."""
    if edit == "bump":
        day.amounts[0] += 1
        return True
    if edit == "add_row":
        day.amounts.append(len(day.amounts) + 1)
        return True
    if edit == "reformat":  # blank lines at the end: other bytes, the same rows
        day.blank_lines = (day.blank_lines + 1) % 3
        return False
    return False  # the same bytes written again


edit_steps = st.lists(
    st.dictionaries(st.sampled_from(DAYS), st.sampled_from(EDITS), min_size=1, max_size=3),
    min_size=1,
    max_size=4,
)


def computed(result: object) -> set[str]:
    return {label for label, r in result.results.items() if r.state != "skipped"}  # type: ignore[attr-defined]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=edit_steps)
def test_random_edits_recompute_what_the_model_predicts(steps: list[dict[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "p"
        days = {d: Day() for d in DAYS}
        write_project(root, {"pipeline": PIPELINE}, {f"data/{d}.csv": days[d].text() for d in DAYS})
        first = Project(root).materialize()
        assert first.ok and len(computed(first)) == 2 * len(DAYS) + 1
        for step in steps:
            expected: set[str] = set()
            data_changed = False
            for d, edit in step.items():
                before = days[d].text()
                data_changed |= apply(days[d], edit)
                path = root / "data" / f"{d}.csv"
                path.write_text(days[d].text())
                if days[d].text() != before:
                    expected |= {f"events[{d}]", f"counts[{d}]"}
            if data_changed:
                expected.add("summary")
            result = Project(root).materialize()
            assert result.ok
            assert computed(result) == expected, step
        total = sum(sum(day.amounts) for day in days.values())
        rows = sum(len(day.amounts) for day in days.values())
        assert Project(root).read("summary").to_dict("records") == [{"n": rows, "total": total}]


# -- the planner's quick test of fresh partitions agrees with judging each in full -----------

PLAN_DAYS = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]


def _plan_graph() -> object:
    import pandas as pd

    from vibepiper import asset, daily
    from vibepiper.graph.graph import Graph

    days = daily(start="2026-01-01", end="2026-01-05")

    @asset(partitions=days)
    def up() -> pd.DataFrame:
        return pd.DataFrame()

    @asset(partitions=days)
    def down(up: pd.DataFrame) -> pd.DataFrame:
        return up

    return Graph.build([up, down])


# what can be wrong with a partition of `down`: nothing, or one thing
FLAWS = ("none", "missing", "code", "input", "last_failed", "damaged", "up_missing")


@settings(max_examples=60, deadline=None)
@given(flaws=st.lists(st.sampled_from(FLAWS), min_size=4, max_size=4))
def test_the_quick_test_agrees_with_a_full_judgement(flaws: list[str]) -> None:
    from datetime import datetime

    from vibepiper.units import Unit
    from vibepiper.versioning.fingerprint import CodeVersion
    from vibepiper.versioning.freshness import Current
    from vibepiper.versioning.planner import (
        Action,
        Observed,
        PlanOptions,
        input_versions,
        judge_unit,
        make_plan,
    )

    graph = _plan_graph()
    code = CodeVersion("c1", {"code": "h"})
    made = datetime(2026, 1, 10)
    current: dict[Unit, Current] = {}
    damage: dict[Unit, str] = {}
    for day, flaw in zip(PLAN_DAYS, flaws, strict=True):
        if flaw != "up_missing":
            current[Unit("up", day)] = Current("up", f"u{day}", "c1", f"v{day}", 1, made, {})
            damage[Unit("up", day)] = ""
        if flaw == "missing":
            continue
        current[Unit("down", day)] = Current(
            "down",
            f"d{day}",
            "c0" if flaw == "code" else "c1",
            f"w{day}",
            1,
            made,
            {"up": "other" if flaw == "input" else f"v{day}"},
            last_attempt="failed" if flaw == "last_failed" else "succeeded",
            partition=day,
        )
        damage[Unit("down", day)] = "damaged" if flaw == "damaged" else ""
    for unit in list(current):
        current[unit].partition = unit.partition
    observed = Observed({"up": code, "down": code}, {}, {}, damage, made)
    units = [Unit("down", d) for d in PLAN_DAYS]
    plan = make_plan(graph, current, observed, units, PlanOptions())  # type: ignore[arg-type]

    def version_of(u: Unit) -> str | None:
        cur = current.get(u)
        return cur.data_version if cur is not None else None

    for unit in units:
        inputs, checked = input_versions(graph, unit, version_of, lambda up: [])  # type: ignore[arg-type]
        full = judge_unit(graph, unit, current, observed, inputs, checked)  # type: ignore[arg-type]
        assert (plan.decisions[unit].action is Action.SKIP) == full.fresh, (unit, flaws)
