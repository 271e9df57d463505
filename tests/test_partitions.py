"""Partitions (SPEC §7): partitionings, partitioned assets end to end through the real CLI,
and every error a user can make with them."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from vibepiper import daily, hourly, monthly, static, weekly
from vibepiper.errors import DefinitionError, UsageError

from .conftest import catalog_rows, run_cli, start_cli, write_project

# -- partitionings -------------------------------------------------------------------------


def test_daily_keys_end_with_the_last_whole_day() -> None:
    days = daily("2026-01-01")
    assert days.keys(datetime(2026, 1, 3, 5, tzinfo=UTC)) == ["2026-01-01", "2026-01-02"]
    assert len(days.keys(datetime(2026, 4, 1, tzinfo=UTC))) == 90
    assert days.window("2026-01-02") == (
        datetime(2026, 1, 2, tzinfo=days.window("2026-01-02")[0].tzinfo),  # type: ignore[index]
        datetime(2026, 1, 3, tzinfo=days.window("2026-01-02")[0].tzinfo),  # type: ignore[index]
    )


def test_end_bounds_the_keys_and_start_rounds_up_to_a_boundary() -> None:
    weeks = weekly("2026-01-01", end="2026-02-01")  # 2026-01-01 is a Thursday
    assert weeks.keys(datetime(2027, 1, 1, tzinfo=UTC)) == [
        "2026-01-05",
        "2026-01-12",
        "2026-01-19",
        "2026-01-26",
    ]
    months = monthly("2026-01-15", end="2026-06-01")
    assert months.keys(datetime(2027, 1, 1, tzinfo=UTC)) == [
        "2026-02",
        "2026-03",
        "2026-04",
        "2026-05",
    ]


def test_hourly_partitions_follow_the_wall_clock_across_dst() -> None:
    spring = hourly("2026-03-29", end="2026-03-30", tz="Europe/Berlin").all_keys()
    assert len(spring) == 23 and "2026-03-29-02:00" not in spring  # the skipped hour
    start, end = hourly("2026-03-29", tz="Europe/Berlin").window("2026-03-29-01:00")  # type: ignore[misc]
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=1)  # CET to CEST
    autumn = hourly("2026-10-25", end="2026-10-26", tz="Europe/Berlin")
    assert len(autumn.all_keys()) == 24
    start, end = autumn.window("2026-10-25-02:00")  # type: ignore[misc]
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=2)  # it repeats
    with pytest.raises(UsageError, match="does not exist in Europe/Berlin"):
        hourly("2026-03-01", tz="Europe/Berlin").check_key("2026-03-29-02:00", "asset 'x'")


def test_a_day_in_a_dst_zone_is_23_or_25_hours_long() -> None:
    days = daily("2026-01-01", tz="America/New_York")
    start, end = days.window("2026-03-08")  # type: ignore[misc]
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)
    start, end = days.window("2026-11-01")  # type: ignore[misc]
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)
    # keys in that zone end with the last day whose window has ended there
    assert days.keys(datetime(2026, 1, 3, 4, 59, tzinfo=UTC))[-1] == "2026-01-01"
    assert days.keys(datetime(2026, 1, 3, 5, 0, tzinfo=UTC))[-1] == "2026-01-02"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("2026-13-01", "is not a partition key"),
        ("2026-1-1", "is not a partition key"),
        ("2025-12-31", "is before its first partition 2026-01-01"),
        ("2026-02-01", "is after its last partition"),
        ("", "an empty partition key"),
    ],
)
def test_bad_keys_are_named(key: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        daily("2026-01-01", end="2026-02-01").check_key(key, "asset 'x'")


def test_ranges_include_both_ends_and_refuse_reversal() -> None:
    days = daily("2026-01-01")
    assert days.between("2026-01-30", "2026-02-02", "asset 'x'") == [
        "2026-01-30",
        "2026-01-31",
        "2026-02-01",
        "2026-02-02",
    ]
    with pytest.raises(UsageError, match="reversed"):
        days.between("2026-02-02", "2026-01-30", "asset 'x'")
    regions = static(["eu", "us", "apac"])
    assert regions.between("us", "apac", "asset 'x'") == ["us", "apac"]
    with pytest.raises(UsageError, match="has no partition 'mars'"):
        regions.check_key("mars", "asset 'x'")


def test_time_windows_map_onto_each_other() -> None:
    days, hours = daily("2026-01-01"), hourly("2026-01-01")
    assert len(days.reads(hours, "2026-01-02")) == 24
    assert hours.reads(days, "2026-01-02-13:00") == ["2026-01-02"]
    assert days.reads(days, "2026-01-05", lookback=2) == ["2026-01-03", "2026-01-04", "2026-01-05"]
    assert days.reads(days, "2026-01-01", lookback=2) == ["2026-01-01"]  # nothing before start


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: daily("2026-01-01", tz="Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (lambda: daily("01/02/2026"), "is not a date"),
        (lambda: daily("2026-02-01", end="2026-01-01"), "is not after start"),
        (lambda: static([]), "at least one key"),
        (lambda: static(["a", "a"]), "listed twice"),
        (lambda: static(["a/b"]), "is not valid"),
        (lambda: static("eu"), "give a list of keys"),
    ],
)
def test_bad_partitionings_are_definition_errors(make: object, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        make()  # type: ignore[operator]


# -- projects ------------------------------------------------------------------------------

PIPELINE = """
import os
import time

import pandas as pd
from vibepiper import Context, asset, daily, expect, source_file

DAYS = daily(start="2026-01-01", end="2026-04-01")

events = source_file("events", "data/events/{partition}.csv", partitions=DAYS)


@asset(partitions=DAYS, time_column="ts", checks=[expect.unique("order_id")])
def daily_orders(events: pd.DataFrame, context: Context) -> pd.DataFrame:
    marks = os.environ.get("MARKS")
    if marks:
        with open(marks, "a") as f:
            f.write(context.partition.key + "\\n")
        time.sleep(float(os.environ.get("PAUSE", "0")))
    return pd.DataFrame(
        {
            "order_id": events.order_id,
            "ts": pd.to_datetime(events.ts, utc=True),
            "amount": events.amount,
        }
    )


@asset(partitions=DAYS)
def daily_totals(daily_orders: pd.DataFrame, context: Context) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "day": [context.partition.key],
            "orders": [len(daily_orders)],
            "amount": [int(daily_orders.amount.sum())],
        }
    )


@asset
def rollup(daily_totals: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"days": [len(daily_totals)], "amount": [int(daily_totals.amount.sum())]})
"""

FIRST = date(2026, 1, 1)
DAYS = [(FIRST + timedelta(days=i)).isoformat() for i in range(90)]


def day_csv(day: str, rows: int = 4, *, duplicate: bool = False, bump: int = 0) -> str:
    base = (date.fromisoformat(day) - FIRST).days * 100
    lines = ["order_id,ts,amount"]
    lines += [f"{base + j},{day}T{j:02d}:30:00Z,{j + 1 + bump}" for j in range(rows)]
    if duplicate:
        lines.append(f"{base},{day}T23:00:00Z,7")
    return "\n".join(lines) + "\n"


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    data = {f"data/events/{d}.csv": day_csv(d) for d in DAYS}
    write_project(root, {"pipeline": PIPELINE}, data)
    return root


def run_states(root: Path, run_id: str) -> dict[str, str]:
    rows = catalog_rows(
        root,
        "SELECT asset, partition_key, status FROM materializations WHERE run_id = ?",
        [run_id],
    )
    return {f"{a}[{p}]" if p else a: s for a, p, s in rows}


def latest_run(root: Path) -> str:
    [(run_id,)] = catalog_rows(
        root, "SELECT run_id FROM runs WHERE kind = 'materialize' ORDER BY started_at DESC LIMIT 1"
    )
    return str(run_id)


def computed(root: Path, run_id: str) -> set[str]:
    return {u for u, s in run_states(root, run_id).items() if s != "skipped"}


def partitions_json(root: Path, asset: str, *extra: str) -> list[dict[str, object]]:
    done = run_cli(root, "partitions", asset, "--json", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_daily_pipeline_end_to_end(pipeline: Path) -> None:
    root = pipeline
    first = run_cli(root, "materialize", timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    made = computed(root, latest_run(root))
    assert len(made) == 90 * 3 + 1
    assert json.loads(run_cli(root, "show", "rollup", "--json").stdout) == [
        {"days": 90, "amount": 900}
    ]
    # a no-op writes no row per fresh partition
    again = run_cli(root, "materialize")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert run_states(root, latest_run(root)) == {"rollup": "skipped"}  # none per partition
    states = {r["status"] for r in partitions_json(root, "daily_orders")}
    assert states == {"fresh"}

    # one bad day fails its checks; the other 89 stand, the rollup is blocked
    bad = DAYS[44]
    (root / f"data/events/{bad}.csv").write_text(day_csv(bad, duplicate=True))
    second = run_cli(root, "materialize")
    assert second.returncode == 1
    run_id = latest_run(root)
    assert run_states(root, run_id) == {
        f"events[{bad}]": "succeeded",
        f"daily_orders[{bad}]": "check_failed",
        f"daily_totals[{bad}]": "blocked",
        "rollup": "blocked",
    }
    assert "unique_order_id" in second.stdout
    rows = {r["key"]: r for r in partitions_json(root, "daily_orders")}
    assert rows[bad]["status"] == "failed"
    assert rows[bad]["reasons"] == ["check_failed: unique_order_id"]
    assert all(r["status"] == "fresh" for k, r in rows.items() if k != bad)
    assert [r["key"] for r in partitions_json(root, "daily_orders", "--status", "failed")] == [bad]
    text = run_cli(root, "partitions", "daily_orders").stdout.splitlines()
    assert text == [
        f"{DAYS[0]}..{DAYS[43]} fresh (44)",
        f"{bad} failed: check_failed: unique_order_id",
        f"{DAYS[45]}..{DAYS[89]} fresh (45)",
    ]
    totals = {r["key"]: r["status"] for r in partitions_json(root, "daily_totals")}
    assert totals[bad] == "stale"  # it has its data from before, and its input is stale

    # fixing that day and editing another recomputes those two days and the rollup only
    edited = DAYS[10]
    (root / f"data/events/{bad}.csv").write_text(day_csv(bad))
    (root / f"data/events/{edited}.csv").write_text(day_csv(edited, bump=1))
    third = run_cli(root, "materialize")
    assert third.returncode == 0, third.stdout + third.stderr
    # (the bad day's file is back as it was: its orders are as before the bad run, so its
    # totals are fresh: early cutoff, per partition)
    assert computed(root, latest_run(root)) == {
        f"events[{bad}]",
        f"daily_orders[{bad}]",
        f"events[{edited}]",
        f"daily_orders[{edited}]",
        f"daily_totals[{edited}]",
        "rollup",
    }
    assert json.loads(run_cli(root, "show", "rollup", "--json").stdout) == [
        {"days": 90, "amount": 904}
    ]
    # the catalog and query see every current partition
    [(count, total)] = catalog_rows(
        root,
        "SELECT count(*), count(DISTINCT partition_key) FROM current_materializations "
        "WHERE asset = 'daily_totals'",
    )
    assert (count, total) == (90, 90)
    query = run_cli(
        root, "query", "SELECT count(*) AS n, sum(amount) AS a FROM daily_orders", "--json"
    )
    assert json.loads(query.stdout) == [{"n": 360, "a": 904}]
    shown = run_cli(root, "show", "daily_totals", "--partition", edited, "--json")
    assert json.loads(shown.stdout) == [{"day": edited, "orders": 4, "amount": 14}]
    history = run_cli(root, "history", "daily_orders", "--partition", bad, "--json")
    assert [r["status"] for r in json.loads(history.stdout)] == [
        "succeeded",
        "check_failed",
        "succeeded",
    ]
    check = run_cli(root, "check", "daily_orders")
    assert check.returncode == 0, check.stdout + check.stderr
    doctor = run_cli(root, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_a_killed_backfill_resumes_with_the_remaining_days(pipeline: Path, tmp_path: Path) -> None:
    root = pipeline
    sources = run_cli(root, "materialize", "events")
    assert sources.returncode == 0, sources.stderr
    marks = tmp_path / "marks.txt"
    env = {"MARKS": str(marks), "PAUSE": "0.05"}
    proc = start_cli(
        root,
        "materialize",
        "daily_orders",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if marks.exists() and len(marks.read_text().splitlines()) >= 45:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    done_before = {
        p
        for (p,) in catalog_rows(
            root,
            "SELECT partition_key FROM current_materializations WHERE asset = 'daily_orders'",
        )
    }
    assert 0 < len(done_before) < 90
    marks.write_text("")
    resumed = run_cli(root, "materialize", "daily_orders", env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    again = marks.read_text().splitlines()
    assert sorted(again) == sorted(set(DAYS) - done_before)  # each remaining day, once
    assert {r["status"] for r in partitions_json(root, "daily_orders")} == {"fresh"}
    doctor = run_cli(root, "doctor", "--repair")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_a_retried_range_runs_those_windows_only(pipeline: Path) -> None:
    root = pipeline
    done = run_cli(root, "materialize", "events+", "--partitions", f"{DAYS[3]}..{DAYS[5]}")
    assert done.returncode == 0, done.stdout + done.stderr
    made = computed(root, latest_run(root))
    assert made == {
        f"{a}[{d}]" for a in ("events", "daily_orders", "daily_totals") for d in DAYS[3:6]
    } | {"rollup"}
    # the rollup read the partitions there are
    assert json.loads(run_cli(root, "show", "rollup", "--json").stdout) == [
        {"days": 3, "amount": 30}
    ]
    one = run_cli(root, "materialize", "daily_totals", "--partition", DAYS[4], "--force")
    assert computed(root, latest_run(root)) == {f"daily_totals[{DAYS[4]}]"}
    assert one.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--partition", "2026-13-01"), "'2026-13-01' is not a partition key"),
        (("--partition", "2025-12-31"), "before its first partition 2026-01-01"),
        (("--partitions", "2026-02-01..2026-01-01"), "is reversed"),
        (("--partitions", "2026-02-01"), "is not a range"),
        (("--partition", "2026-01-01", "--partitions", "2026-01-01..2026-01-02"), "both given"),
    ],
)
def test_bad_partition_options_exit_2(pipeline: Path, args: tuple[str, ...], message: str) -> None:
    done = run_cli(pipeline, "materialize", "daily_orders", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_partition_options_on_unpartitioned_assets_exit_2(pipeline: Path) -> None:
    done = run_cli(pipeline, "materialize", "rollup", "--partition", "2026-01-01")
    assert done.returncode == 2 and "no selected asset is partitioned" in done.stderr
    shown = run_cli(pipeline, "show", "rollup", "--partition", "2026-01-01")
    assert shown.returncode == 2 and "is not partitioned" in shown.stderr
    listed = run_cli(pipeline, "partitions", "rollup")
    assert listed.returncode == 2 and "is not partitioned" in listed.stderr
    never = run_cli(pipeline, "show", "daily_orders", "--partition", "2026-01-02")
    assert never.returncode != 0 and "partition 2026-01-02 of asset 'daily_orders'" in never.stderr


BAD_DEFINITIONS = {
    "mismatch": (
        """
        import pandas as pd
        from vibepiper import asset, daily, static

        @asset(partitions=static(["eu", "us"]))
        def regions() -> pd.DataFrame:
            return pd.DataFrame({"x": [1]})

        @asset(partitions=daily(start="2026-01-01"))
        def per_day(regions: pd.DataFrame) -> pd.DataFrame:
            return regions
        """,
        "asset 'per_day' (daily(start=2026-01-01, tz=UTC)) reads 'regions' (static(2 keys))",
    ),
    "source_without_field": (
        """
        from vibepiper import daily, source_file

        events = source_file("events", "data/events.csv", partitions=daily(start="2026-01-01"))
        """,
        "source 'events': {partition} in the path and partitions= go together",
    ),
    "field_without_partitions": (
        """
        from vibepiper import source_file

        events = source_file("events", "data/{partition}.csv")
        """,
        "but partitions= is not given",
    ),
    "bad_zone": (
        """
        import pandas as pd
        from vibepiper import asset, daily

        @asset(partitions=daily(start="2026-01-01", tz="Europe/Berlim"))
        def a() -> pd.DataFrame:
            return pd.DataFrame({"x": [1]})
        """,
        "unknown time zone 'Europe/Berlim'",
    ),
    "time_column_unpartitioned": (
        """
        import pandas as pd
        from vibepiper import asset

        @asset(time_column="ts")
        def a() -> pd.DataFrame:
            return pd.DataFrame({"x": [1]})
        """,
        "asset 'a': time_column= needs time partitions",
    ),
    "lookback_unknown_input": (
        """
        import pandas as pd
        from vibepiper import asset, daily

        D = daily(start="2026-01-01")

        @asset(partitions=D)
        def a() -> pd.DataFrame:
            return pd.DataFrame({"x": [1]})

        @asset(partitions=D, lookback={"b": 2})
        def c(a: pd.DataFrame) -> pd.DataFrame:
            return a
        """,
        "lookback= names 'b', which is not an input",
    ),
    "not_a_partitioning": (
        """
        import pandas as pd
        from vibepiper import asset

        @asset(partitions="daily")
        def a() -> pd.DataFrame:
            return pd.DataFrame({"x": [1]})
        """,
        "partitions='daily' is not a partitioning",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DEFINITIONS))
def test_bad_partition_definitions_exit_2_in_one_line(tmp_path: Path, case: str) -> None:
    source, message = BAD_DEFINITIONS[case]
    root = write_project(tmp_path / case, {"pipeline": source})
    done = run_cli(root, "status")
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


STATIC_AND_LOOKBACK = """
import pandas as pd
from vibepiper import Context, asset, daily, static

REGIONS = static(["eu", "us", "apac"])
DAYS = daily(start="2026-01-01", end="2026-01-08")


@asset(partitions=REGIONS)
def sales(context: Context) -> pd.DataFrame:
    return pd.DataFrame({"region": [context.partition.key], "amount": [len(context.partition.key)]})


@asset(partitions=REGIONS)
def doubled(sales: pd.DataFrame) -> pd.DataFrame:
    return sales.assign(amount=sales.amount * 2)


@asset(partitions=DAYS)
def visits(context: Context) -> pd.DataFrame:
    day = int(context.partition.key[-2:])
    return pd.DataFrame({"day": [day], "n": [day * 10]})


@asset(partitions=DAYS, lookback=2)
def three_days(visits: pd.DataFrame, context: Context) -> pd.DataFrame:
    return pd.DataFrame({"key": [context.partition.key], "days": [list(visits.day)]})
"""


def test_static_partitions_and_a_lookback(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"pipeline": STATIC_AND_LOOKBACK})
    done = run_cli(root, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    doubled = json.loads(run_cli(root, "show", "doubled", "--json").stdout)
    assert doubled == [
        {"region": "eu", "amount": 4},
        {"region": "us", "amount": 4},
        {"region": "apac", "amount": 8},
    ]
    windows = json.loads(run_cli(root, "show", "three_days", "--json", "--limit", "10").stdout)
    assert [w["days"] for w in windows] == [
        [1],
        [1, 2],
        [1, 2, 3],
        [2, 3, 4],
        [3, 4, 5],
        [4, 5, 6],
        [5, 6, 7],
    ]
    # a day recomputed to the same data leaves the windows that read it fresh
    plan = run_cli(root, "materialize", "visits", "--partition", "2026-01-03", "--force")
    assert plan.returncode == 0
    stale = [r["key"] for r in partitions_json(root, "three_days", "--status", "stale")]
    assert stale == []  # the same data again: nothing downstream changed (early cutoff)


def test_windows_never_overlap_where_the_clocks_skip_midnight() -> None:
    days = daily("2025-09-01", tz="America/Santiago")  # 2025-09-07 00:00 does not happen
    windows = [days.window(k) for k in days.keys(datetime(2025, 9, 12, tzinfo=UTC))]
    for (_, end), (start, _) in itertools.pairwise(windows):  # type: ignore[misc]
        assert end == start


def test_hourly_keys_are_on_the_hour_and_windows_must_have_ended() -> None:
    hours = hourly("2026-01-01")
    with pytest.raises(UsageError, match="is not on the hour"):
        hours.check_key("2026-01-01-13:30", "asset 'x'")
    now = datetime(2026, 1, 2, 10, 15, tzinfo=UTC)
    assert hours.check_ended("2026-01-02-09:00", "asset 'x'", now) == "2026-01-02-09:00"
    with pytest.raises(UsageError, match=r"has not ended yet.*the latest is 2026-01-02-09:00"):
        hours.check_ended("2026-01-02-10:00", "asset 'x'", now)


def test_the_time_column_is_read_in_the_partitionings_zone() -> None:
    import pandas as pd

    from vibepiper.validation.outcome import window_outcome

    days = daily("2026-01-01", tz="Europe/Berlin")
    start, end = days.window("2026-03-01")  # type: ignore[misc]
    late = pd.DataFrame({"ts": ["2026-03-01 23:30:00", "2026-03-01 00:00:00"]})
    assert window_outcome(late, "ts", start, end).passed  # wall-clock times in Berlin
    after = pd.DataFrame({"ts": ["2026-03-02 00:00:00", None]})
    outcome = window_outcome(after, "ts", start, end)
    assert not outcome.passed and outcome.failing_rows == 2  # the end is excluded; a null
    hour_start, hour_end = hourly("2026-10-25", tz="Europe/Berlin").window("2026-10-25-02:00")  # type: ignore[misc]
    repeated = pd.DataFrame({"ts": pd.to_datetime(["2026-10-25 02:30"])})
    assert window_outcome(repeated, "ts", hour_start, hour_end).passed  # the repeated hour
    missing = window_outcome(late, "when", start, end)
    assert not missing.passed and "column 'when' is missing" in missing.message


EVOLVING = """
import pandas as pd
from vibepiper import Context, asset, daily

@asset(partitions=daily(start="{start}", end="2026-01-05"))
def per_day(context: Context) -> pd.DataFrame:
    day = int(context.partition.key[-2:])
    return pd.DataFrame({{"day": [day], "v": pd.array([day], dtype="{dtype}")}})
"""


def test_a_changed_partitioning_recomputes_and_old_partitions_are_left_out(
    tmp_path: Path,
) -> None:
    root = write_project(
        tmp_path / "p", {"pipeline": EVOLVING.format(start="2026-01-01", dtype="int64")}
    )
    assert run_cli(root, "materialize").returncode == 0
    (root / "pipeline.py").write_text(EVOLVING.format(start="2026-01-03", dtype="int64"))
    listed = partitions_json(root, "per_day")
    assert [(r["key"], r["status"]) for r in listed] == [
        ("2026-01-03", "stale"),
        ("2026-01-04", "stale"),
    ]
    assert "partitions changed" in " ".join(listed[0]["reasons"])  # type: ignore[arg-type]
    shown = json.loads(run_cli(root, "show", "per_day", "--json").stdout)
    assert [r["day"] for r in shown] == [3, 4]  # not the partitions it no longer has
    # partitions of different integer widths still make one view
    (root / "pipeline.py").write_text(EVOLVING.format(start="2026-01-03", dtype="int32"))
    assert run_cli(root, "materialize", "--partition", "2026-01-04").returncode == 0
    query = run_cli(root, "query", "SELECT sum(v) AS s, count(*) AS n FROM per_day", "--json")
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout) == [{"s": 7, "n": 2}]


def test_a_partition_whose_window_has_not_ended_is_refused(pipeline: Path) -> None:
    env = {"VIBEPIPER_CLOCK": "2026-02-10T12:00:00Z"}
    done = run_cli(pipeline, "materialize", "daily_orders", "--partition", "2026-02-10", env=env)
    assert done.returncode == 2
    assert "partition 2026-02-10 has not ended yet" in done.stderr
    assert "the latest is 2026-02-09" in done.stderr
    listed = run_cli(pipeline, "partitions", "events", "--json", env=env)
    assert json.loads(listed.stdout)[-1]["key"] == "2026-02-09"


HOURS_AND_DAYS = """
import pandas as pd
from vibepiper import Context, asset, daily, hourly

@asset(partitions=hourly(start="2026-01-01"))
def readings(context: Context) -> pd.DataFrame:
    return pd.DataFrame({"hour": [context.partition.key], "v": [1]})

@asset(partitions=daily(start="2026-01-01"))
def per_day(readings: pd.DataFrame, context: Context) -> pd.DataFrame:
    return pd.DataFrame({"day": [context.partition.key], "hours": [len(readings)]})
"""


def test_one_range_of_days_runs_an_hourly_asset_and_its_daily_reader(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"pipeline": HOURS_AND_DAYS})
    env = {"VIBEPIPER_CLOCK": "2026-01-10T00:00:00Z"}
    done = run_cli(
        root, "materialize", "readings+", "--partitions", "2026-01-02..2026-01-03", env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    made = computed(root, latest_run(root))
    assert len([u for u in made if u.startswith("readings[")]) == 48
    assert {u for u in made if u.startswith("per_day[")} == {
        "per_day[2026-01-02]",
        "per_day[2026-01-03]",
    }
    shown = json.loads(run_cli(root, "show", "per_day", "--json", env=env).stdout)
    assert shown == [{"day": "2026-01-02", "hours": 24}, {"day": "2026-01-03", "hours": 24}]
    # an hour of a day that has not ended: the daily reader cannot follow
    late = run_cli(root, "materialize", "readings+", "--partition", "2026-01-10-05:00", env=env)
    assert late.returncode == 2 and "has not ended yet" in late.stderr
