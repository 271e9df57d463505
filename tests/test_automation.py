"""`vibepiper serve` (SPEC §8), end to end: the real CLI as a subprocess, a fake clock
(VIBEPIPER_CLOCK), a real catalog and store.

Schedules fire at cron's instants (daylight-saving days included), catch-up policies
hold, a watched file triggers exactly its downstream assets once, eager and missing
assets follow their inputs, a max_age asset is recomputed before it expires, and every
trigger runs once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli, start_cli, write_project

ASSETS = """
import time
import pandas as pd
from vibepiper import asset, expect, source_file

raw = source_file("raw", "data/raw.csv", watch=True)

@asset
def clean(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.assign(x=raw.x * 2)

@asset
def report(clean: pd.DataFrame) -> pd.DataFrame:
    return clean.tail(1)

@asset
def lonely() -> pd.DataFrame:
    return pd.DataFrame({"y": [1]})
"""

PLAIN = ASSETS.replace(", watch=True", "")  # no sensor: only the schedules act

FAST = "\n[tool.vibepiper.serve]\nsettle_seconds = 0.3\npoll_seconds = 0.1\n"


def schedule_toml(name: str, cron: str, tz: str = "UTC", **more: Any) -> str:
    lines = [f"\n[tool.vibepiper.schedules.{name}]", f'cron = "{cron}"', f'timezone = "{tz}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in more.items()]
    return "\n".join(lines) + "\n"


def project(tmp_path: Path, tool: str = "", assets: str = PLAIN) -> Path:
    return write_project(
        tmp_path / "proj", {"shop": assets}, {"data/raw.csv": "x\n1\n2\n"}, tool + FAST
    )


def clock_at(moment: str, rate: float = 1.0, epoch: float | None = None) -> dict[str, str]:
    text = f"{moment}*{rate:g}" + (f"@{epoch!r}" if epoch is not None else "")
    return {"VIBEPIPER_CLOCK": text}


def once(root: Path, moment: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(root, "serve", "--once", *args, env=clock_at(moment))


def ticks(root: Path) -> list[dict[str, Any]]:
    done = run_cli(root, "ticks", "--json", "--limit", "100000")
    assert done.returncode == 0, done.stderr
    return list(reversed(json.loads(done.stdout)))


def rows(root: Path, sql: str) -> list[dict[str, Any]]:
    done = run_cli(root, "query", "--json", sql)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def fired(root: Path, schedule: str) -> list[str]:
    """The UTC instants (ISO, minutes) at which `schedule` launched a run."""
    return [
        t["scheduled_for"][:16]
        for t in ticks(root)
        if t["schedule"] == schedule and t["run_id"] is not None
    ]


def one_run_each(root: Path) -> None:
    """Every tick that launched a run has exactly one run with that id, and every run
    serve launched belongs to a tick."""
    launched = {t["run_id"] for t in ticks(root) if t["run_id"]}
    recorded = rows(root, "SELECT run_id, trigger FROM runs WHERE trigger <> 'manual'")
    assert {r["run_id"] for r in recorded} == launched
    assert len(recorded) == len(launched)


# -- schedules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "start", "end", "cron", "expected"),
    [
        # Berlin springs forward at 02:00 on 2026-03-29: 02:30 does not exist, and fires
        # at the first minute after the jump (03:00 CEST = 01:00 UTC)
        (
            "Europe/Berlin",
            "2026-03-28T12:00:00+01:00",
            "2026-03-30T12:00:00+02:00",
            "30 2 * * *",
            ["2026-03-29T01:00", "2026-03-30T00:30"],
        ),
        # Berlin falls back at 03:00 on 2026-10-25: 02:30 happens twice, fires once
        (
            "Europe/Berlin",
            "2026-10-24T12:00:00+02:00",
            "2026-10-26T12:00:00+01:00",
            "30 2 * * *",
            ["2026-10-25T00:30", "2026-10-26T01:30"],
        ),
        # New York springs forward on 2026-03-08 and falls back on 2026-11-01
        (
            "America/New_York",
            "2026-03-07T12:00:00-05:00",
            "2026-03-09T12:00:00-04:00",
            "30 2 * * *",
            ["2026-03-08T07:00", "2026-03-09T06:30"],
        ),
        (
            "America/New_York",
            "2026-10-31T12:00:00-04:00",
            "2026-11-02T12:00:00-05:00",
            "30 1 * * *",
            ["2026-11-01T05:30", "2026-11-02T06:30"],
        ),
    ],
)
def test_a_schedule_fires_at_crons_instants_on_daylight_saving_days(
    tmp_path: Path, tz: str, start: str, end: str, cron: str, expected: list[str]
) -> None:
    root = project(tmp_path, schedule_toml("daily", cron, tz, select="lonely", catchup="all"))
    assert once(root, start).returncode == 0
    done = once(root, end)
    assert done.returncode == 0, done.stdout + done.stderr
    assert fired(root, "daily") == expected
    one_run_each(root)
    runs = rows(root, "SELECT trigger, status FROM runs")
    assert {(r["trigger"], r["status"]) for r in runs} == {("schedule:daily", "succeeded")}


def test_a_live_serve_fires_each_hour_of_a_fall_back_night_once(tmp_path: Path) -> None:
    """The real daemon, on a clock 20 minutes a second: an hourly schedule fires in both
    copies of the repeated hour (cron's rule for `*` hours), a 02:30 one fires once.

    The schedules are registered first, at 00:10, by `serve --once`: the live daemon has 40
    fake minutes (2 real seconds) to start before 01:00, and one that starts later on a
    busy machine must still fire 01:00, as catch-up replays what came after registration."""
    tool = schedule_toml("hourly", "0 * * * *", "Europe/Berlin", select="lonely", catchup="all")
    tool += schedule_toml("half_two", "30 2 * * *", "Europe/Berlin", select="lonely", catchup="all")
    root = project(tmp_path, tool)
    registered = once(root, "2026-10-25T00:10:00+02:00")
    assert registered.returncode == 0, registered.stderr
    assert fired(root, "hourly") == []
    epoch = time.time()
    env = clock_at("2026-10-25T00:20:00+02:00", 1200, epoch)
    server = start_cli(root, "serve", env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if time.time() - epoch > (4 * 3600 + 3000) / 1200:  # past 04:10 CET
                got = [t for t in ticks(root) if t["schedule"] == "hourly" and t["run_id"]]
                if len(got) >= 5 and all(t["status"] == "succeeded" for t in got):
                    break
    finally:
        server.send_signal(signal.SIGTERM)
        _out, err = server.communicate(timeout=60)
    assert server.returncode == 130, err
    assert fired(root, "hourly")[:5] == [
        "2026-10-24T23:00",  # 01:00 CEST
        "2026-10-25T00:00",  # 02:00 CEST
        "2026-10-25T01:00",  # 02:00 CET, the hour again
        "2026-10-25T02:00",  # 03:00 CET
        "2026-10-25T03:00",  # 04:00 CET
    ]
    assert fired(root, "half_two") == ["2026-10-25T00:30"]
    one_run_each(root)


def test_catch_up_latest_runs_one_and_records_the_skipped(tmp_path: Path) -> None:
    root = project(tmp_path, schedule_toml("h", "0 * * * *", select="lonely"))
    assert once(root, "2026-05-01T00:30:00+00:00").returncode == 0
    assert once(root, "2026-05-01T05:30:00+00:00").returncode == 0
    found = [t for t in ticks(root) if t["schedule"] == "h"]
    assert [(t["scheduled_for"][11:16], t["status"]) for t in found] == [
        ("00:30", "registered"),
        ("04:00", "skipped"),
        ("05:00", "succeeded"),
    ]
    assert "4 ticks fell due" in found[1]["reason"]
    one_run_each(root)


def test_catch_up_all_is_bounded_and_none_runs_nothing_missed(tmp_path: Path) -> None:
    tool = schedule_toml("every", "0 * * * *", select="lonely", catchup="all", max_catchup=3)
    tool += schedule_toml("never", "0 * * * *", select="lonely", catchup="none")
    root = project(tmp_path, tool)
    assert once(root, "2026-05-01T00:30:00+00:00").returncode == 0
    assert once(root, "2026-05-01T06:30:00+00:00").returncode == 0
    assert fired(root, "every") == ["2026-05-01T04:00", "2026-05-01T05:00", "2026-05-01T06:00"]
    assert fired(root, "never") == []
    skipped = [t for t in ticks(root) if t["status"] == "skipped"]
    assert {t["schedule"] for t in skipped} == {"every", "never"}
    # an on-time tick of a catchup = none schedule does run
    assert once(root, "2026-05-01T07:00:10+00:00").returncode == 0
    assert fired(root, "never") == ["2026-05-01T07:00"]


def test_changing_a_schedules_cron_never_replays_past_ticks(tmp_path: Path) -> None:
    root = project(tmp_path, schedule_toml("s", "0 6 * * *", select="lonely", catchup="all"))
    assert once(root, "2026-05-01T00:00:00+00:00").returncode == 0
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("0 6 * * *", "0 * * * *"))
    assert once(root, "2026-05-03T00:30:00+00:00").returncode == 0
    assert fired(root, "s") == []  # two days of hourly ticks under the new cron: none
    assert [t["status"] for t in ticks(root)] == ["registered", "registered"]
    assert once(root, "2026-05-03T01:00:05+00:00").returncode == 0
    assert fired(root, "s") == ["2026-05-03T01:00"]


def test_a_tick_runs_once_however_often_serve_looks(tmp_path: Path) -> None:
    root = project(tmp_path, schedule_toml("s", "0 6 * * *", select="lonely"))
    assert once(root, "2026-05-01T00:00:00+00:00").returncode == 0
    for moment in (
        "2026-05-01T06:00:01+00:00",
        "2026-05-01T06:00:02+00:00",
        "2026-05-01T07:00:00+00:00",
    ):
        assert once(root, moment).returncode == 0
    assert fired(root, "s") == ["2026-05-01T06:00"]
    one_run_each(root)


def test_schedules_lists_the_next_fire_times_in_the_schedules_zone(tmp_path: Path) -> None:
    root = project(tmp_path, schedule_toml("s", "30 2 * * *", "Europe/Berlin", select="clean"))
    done = run_cli(root, "schedules", "--json", env=clock_at("2026-03-28T12:00:00+01:00"))
    assert done.returncode == 0, done.stderr
    [found] = json.loads(done.stdout)
    assert found["next"] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]
    text = run_cli(root, "schedules", env=clock_at("2026-03-28T12:00:00+01:00")).stdout
    assert "s: 30 2 * * * (Europe/Berlin), clean, catchup latest" in text


# -- sensors, automation, freshness ---------------------------------------------------------


def wait_for(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out")


def computed(root: Path, run_id: str) -> list[str]:
    found = rows(
        root,
        f"SELECT asset FROM materializations WHERE run_id = '{run_id}' "
        "AND status = 'succeeded' ORDER BY asset",
    )
    return [r["asset"] for r in found]


def test_an_edited_watched_file_runs_exactly_its_downstream_assets_once(tmp_path: Path) -> None:
    root = project(tmp_path, assets=ASSETS)
    assert run_cli(root, "materialize").returncode == 0
    server = start_cli(root, "serve")
    try:
        wait_for(lambda: ticks_ready(root))
        time.sleep(1.5)  # nothing changed: nothing runs
        assert [t for t in ticks(root) if t["schedule"].startswith("sensor:")] == []
        (root / "data" / "raw.csv").write_text("x\n1\n2\n3\n")
        tick = wait_for(lambda: finished_ticks(root, "sensor:data/raw.csv"))[0]
        assert computed(root, tick["run_id"]) == ["clean", "raw", "report"]
        before = time.time()
        (root / "data" / "raw.csv").touch()  # touched, not changed: no run
        time.sleep(1.5)
        assert time.time() - before >= 1.5
        assert len(finished_ticks(root, "sensor:data/raw.csv")) == 1
        # a schedule added while serve runs is picked up (first seen: registered)
        with (root / "pyproject.toml").open("a") as file:
            file.write(schedule_toml("added", "0 6 * * *", select="lonely"))
        wait_for(lambda: [t for t in ticks(root) if t["schedule"] == "added"])
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
    assert server.returncode == 130
    one_run_each(root)
    runs = rows(root, "SELECT trigger FROM runs WHERE trigger <> 'manual'")
    assert runs == [{"trigger": "sensor:data/raw.csv"}]


def ticks_ready(root: Path) -> bool:
    return (root / ".vibepiper" / "serve.lock").exists()


def finished_ticks(root: Path, schedule: str) -> list[dict[str, Any]]:
    return [
        t
        for t in ticks(root)
        if t["schedule"] == schedule and t["status"] not in ("queued", "launched")
    ]


EAGER = """
import pandas as pd
from vibepiper import asset, expect, source_file

raw = source_file("raw", "data/raw.csv")

@asset
def base(raw: pd.DataFrame) -> pd.DataFrame:
    return raw

@asset(automation="eager")
def follower(base: pd.DataFrame) -> pd.DataFrame:
    return base.assign(y=1)

@asset(automation="eager")
def second(follower: pd.DataFrame) -> pd.DataFrame:
    return follower

@asset(automation="eager", checks=[expect.row_count(max=3)])
def picky(base: pd.DataFrame) -> pd.DataFrame:
    return base

@asset(automation="missing")
def once_only() -> pd.DataFrame:
    return pd.DataFrame({"z": [1]})
"""


def test_eager_assets_follow_their_upstream_and_a_failure_is_not_retried(
    tmp_path: Path,
) -> None:
    root = project(tmp_path, assets=EAGER)
    assert run_cli(root, "materialize", "raw", "base").returncode == 0
    done = run_cli(root, "serve", "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    # follower and second were never made, picky neither; once_only is missing
    assert {r["asset"] for r in rows(root, "SELECT asset FROM current_materializations")} == {
        "raw",
        "base",
        "follower",
        "second",
        "picky",
        "once_only",
    }
    assert run_cli(root, "serve", "--once").returncode == 0  # nothing new: no run
    assert len(rows(root, "SELECT * FROM runs WHERE trigger <> 'manual'")) == 1
    (root / "data" / "raw.csv").write_text("x\n1\n2\n3\n4\n")
    assert run_cli(root, "materialize", "raw", "base").returncode == 0
    done = run_cli(root, "serve", "--once")
    assert done.returncode == 1  # picky failed its check
    [run] = rows(
        root,
        "SELECT run_id, trigger FROM runs WHERE trigger <> 'manual' "
        "ORDER BY started_at DESC LIMIT 1",
    )
    kind, _, names = run["trigger"].partition(":")
    assert (kind, sorted(names.split(","))) == ("automation", ["follower", "picky", "second"])
    assert computed(root, run["run_id"]) == ["follower", "second"]
    # the same inputs again: picky is not retried (nor is anything else run)
    assert run_cli(root, "serve", "--once").returncode == 0
    assert len(rows(root, "SELECT * FROM runs WHERE trigger <> 'manual'")) == 2
    explained = run_cli(root, "explain", "second").stdout
    assert f"last computed in run {run['run_id']}, started by automation:" in explained
    assert "automation:second: eager: follower is recomputed first, in this run" in explained


AGED = """
import pandas as pd
from vibepiper import asset

@asset(max_age=3600)
def hourly() -> pd.DataFrame:
    return pd.DataFrame({"a": [1]})
"""


def test_a_max_age_asset_is_recomputed_before_it_expires(tmp_path: Path) -> None:
    root = project(tmp_path, assets=AGED)
    assert run_cli(root, "materialize", env=clock_at("2026-05-01T10:00:00+00:00")).returncode == 0
    assert once(root, "2026-05-01T10:50:00+00:00").returncode == 0
    assert rows(root, "SELECT * FROM runs WHERE trigger <> 'manual'") == []
    assert once(root, "2026-05-01T10:55:00+00:00").returncode == 0  # past 90% of an hour
    made = rows(
        root,
        "SELECT m.finished_at, r.trigger FROM materializations m JOIN runs r USING (run_id) "
        "WHERE m.status = 'succeeded' ORDER BY m.finished_at",
    )
    assert [m["trigger"] for m in made] == ["manual", "freshness:hourly"]
    second = datetime.fromisoformat(made[1]["finished_at"])
    assert second < datetime(2026, 5, 1, 11, 0)  # before the first one expired
    assert once(root, "2026-05-01T10:56:00+00:00").returncode == 0  # not again
    assert len(rows(root, "SELECT * FROM runs WHERE trigger <> 'manual'")) == 1


# -- one serve, stopping -------------------------------------------------------------------

SLOW = """
import time
import pandas as pd
from vibepiper import asset

@asset(automation="missing")
def slow() -> pd.DataFrame:
    time.sleep(60)
    return pd.DataFrame({"a": [1]})
"""


def test_a_second_serve_exits_2_naming_the_first_and_sigterm_cancels_the_run(
    tmp_path: Path,
) -> None:
    root = project(tmp_path, assets=SLOW)
    server = start_cli(root, "serve")
    try:
        wait_for(lambda: [t for t in ticks(root) if t["status"] == "launched"])
        wait_for(lambda: rows(root, "SELECT * FROM runs WHERE status = 'running'"))
        second = run_cli(root, "serve", "--once")
        assert second.returncode == 2
        [line] = second.stderr.strip().splitlines()
        assert "already running for this project" in line
        assert f"process {server.pid}" in line
    finally:
        server.send_signal(signal.SIGTERM)
        _out, err = server.communicate(timeout=60)
    assert server.returncode == 130, err
    [run] = rows(root, "SELECT status, trigger FROM runs")
    assert run == {"status": "cancelled", "trigger": "automation:slow"}
    assert [t["status"] for t in ticks(root)] == ["cancelled"]


# -- bad input ------------------------------------------------------------------------------

WATCH_FOLDER = (
    ASSETS
    + """
sub = source_file("sub", "data/sub", watch=True, read=lambda path: pd.DataFrame())
"""
)
WATCH_URL = (
    ASSETS
    + """
remote = source_file("remote", "https://example.com/x.csv", watch=True)
"""
)
TYPO = (
    ASSETS
    + """
@asset(automation="eagre")
def typo(clean: pd.DataFrame) -> pd.DataFrame:
    return clean
"""
)


@pytest.mark.parametrize(
    ("tool", "assets", "culprit"),
    [
        (schedule_toml("s", "61 * * * *"), ASSETS, "invalid cron expression '61 * * * *'"),
        (schedule_toml("s", "0 6 * *"), ASSETS, "invalid cron expression '0 6 * *'"),
        (schedule_toml("s", "0 6 * * *", "Europe/Berlim"), ASSETS, "unknown time zone"),
        (
            schedule_toml("s", "0 6 * * *", select="tag:nothing"),
            ASSETS,
            "selector 'tag:nothing' matches no",
        ),
        (schedule_toml("s", "0 6 * * *", select="nosuch"), ASSETS, "schedule 's'"),
        (
            schedule_toml("s", "0 6 * * *", select="clean", exclude="clean"),
            ASSETS,
            "select = 'clean' selects no asset",
        ),
        (schedule_toml("s", "0 6 * * *", catchup="some"), ASSETS, "catchup = 'some'"),
        (schedule_toml("s", "0 6 * * *", crom="x"), ASSETS, "unknown key 'crom'"),
        (
            schedule_toml("s", "0 6 * * *") + schedule_toml("s", "0 7 * * *"),
            ASSETS,
            "pyproject.toml is not valid TOML",
        ),
        ("", WATCH_FOLDER, "which is a folder, cannot be watched"),
        ("", WATCH_URL, "which is not a local file's path, cannot be watched"),
        ("", TYPO, "automation='eagre' is not valid (did you mean 'eager'?)"),
    ],
)
def test_bad_automation_definitions_are_one_line_and_exit_2(
    tmp_path: Path, tool: str, assets: str, culprit: str
) -> None:
    root = project(tmp_path, tool, assets)
    (root / "data" / "sub").mkdir()
    (root / "data" / "sub" / "f.csv").write_text("x\n1\n")
    done = run_cli(root, "serve", "--once")
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert culprit in line, line


def test_a_bad_fake_clock_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path)
    done = run_cli(root, "serve", "--once", env={"VIBEPIPER_CLOCK": "yesterday"})
    assert done.returncode == 2
    assert "VIBEPIPER_CLOCK='yesterday' is not a valid fake clock" in done.stderr


def test_runs_started_by_hand_say_manual(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert run_cli(root, "materialize").returncode == 0
    assert rows(root, "SELECT DISTINCT trigger FROM runs") == [{"trigger": "manual"}]
    bad = run_cli(root, "materialize", "--run-id", "../../etc")
    assert bad.returncode == 2 and "is not a run id" in bad.stderr


def test_the_clock_can_be_pinned_and_read_back() -> None:
    from vibepiper import clock

    fake = clock.parse("2026-03-29T00:30:00+01:00*60@1000.5")
    assert fake.start == datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    assert clock.parse(fake.pinned()) == fake
    for bad in ("2026-03-29T00:30:00", "2026-03-29T00:30:00Z*0", "x", "2026-03-29T00:30:00Z*a"):
        with pytest.raises(ValueError):
            clock.parse(bad)


# -- the schedule arithmetic ------------------------------------------------------------------

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

CRONS = ["30 2 * * *", "0 * * * *", "*/7 1-3 * * *", "15 1 * * 0", "0 0 1 * *", "* * * * *"]
ZONES = ["Europe/Berlin", "America/New_York", "UTC", "Australia/Lord_Howe", "Asia/Kolkata"]


@settings(max_examples=150, deadline=None)
@example(  # the walk back lands on the first minute after a jump forward
    cron="30 2 * * *",
    zone="America/New_York",
    after=datetime(2026, 3, 7, 17),
    minutes=47 * 60,
    limit=10,
)
@example(
    cron="30 2 * * *", zone="Europe/Berlin", after=datetime(2026, 3, 28, 11), minutes=2880, limit=3
)
@given(
    cron=st.sampled_from(CRONS),
    zone=st.sampled_from(ZONES),
    after=st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 1)),
    minutes=st.integers(1, 6000),
    limit=st.integers(1, 6),
)
def test_due_ticks_are_the_last_of_the_forward_walk(
    cron: str, zone: str, after: datetime, minutes: int, limit: int
) -> None:
    """The backwards shortcut `due` takes finds exactly the fire times walking forwards
    (cron's DST rules) finds, and counts them all."""
    from datetime import timedelta

    from vibepiper.definitions.schedule import Schedule

    schedule = Schedule("s", cron, zone)
    start = after.replace(tzinfo=UTC)
    until = start + timedelta(minutes=minutes)
    walked = []
    for moment in schedule.times(start):
        if moment > until:
            break
        walked.append(moment)
    found, count = schedule.due(start, until, limit)
    assert found == walked[-limit:]
    assert count == len(walked)


def test_cron_nicknames_fire_as_their_five_fields() -> None:
    from vibepiper.definitions.schedule import Schedule

    start = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert Schedule("a", "@daily", "UTC").next(start, 2) == Schedule("b", "0 0 * * *", "UTC").next(
        start, 2
    )
    assert Schedule("a", "@hourly", "UTC").next(start, 1) == [datetime(2026, 5, 1, 13, tzinfo=UTC)]


# -- schedules declared in Python ----------------------------------------------------------

DECLARED = (
    PLAIN
    + """
from vibepiper import schedule

nightly = schedule("nightly", "0 6 * * *", timezone="Europe/Berlin", select="lonely")
"""
)


def test_a_schedule_declared_in_python_fires_and_survives_the_snapshot(tmp_path: Path) -> None:
    root = project(tmp_path, assets=DECLARED)
    (root / "other.py").write_text("X = 1\n")
    assert once(root, "2026-05-01T00:00:00+00:00").returncode == 0
    listed = json.loads(run_cli(root, "schedules", "--json").stdout)
    assert [(s["name"], s["cron"], s["timezone"]) for s in listed] == [
        ("nightly", "0 6 * * *", "Europe/Berlin")
    ]
    assert once(root, "2026-05-01T04:00:05+00:00").returncode == 0  # 06:00 in Berlin
    assert fired(root, "nightly") == ["2026-05-01T04:00"]
    runs = rows(root, "SELECT trigger FROM runs")
    assert runs == [{"trigger": "schedule:nightly"}]


def test_a_schedule_declared_twice_is_refused_naming_both(tmp_path: Path) -> None:
    root = project(tmp_path, schedule_toml("nightly", "0 7 * * *"), assets=DECLARED)
    done = run_cli(root, "serve", "--once")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "schedule 'nightly' is declared twice: in" in line
    assert "pyproject.toml and in module shop" in line


def test_a_bad_schedule_in_python_names_its_module(tmp_path: Path) -> None:
    root = project(tmp_path, assets=DECLARED.replace('"0 6 * * *"', '"0 25 * * *"'))
    done = run_cli(root, "list")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "schedule 'nightly' (module shop): invalid cron expression '0 25 * * *'" in line


def test_an_edit_of_another_module_keeps_the_python_schedules(tmp_path: Path) -> None:
    more = (
        "import pandas as pd\nfrom vibepiper import asset\n\n@asset\n"
        "def extra() -> pd.DataFrame:\n    return pd.DataFrame({'e': [1]})\n"
    )
    root = write_project(
        tmp_path / "proj", {"shop": DECLARED, "more": more}, {"data/raw.csv": "x\n1\n"}, FAST
    )

    def names() -> list[str]:
        return [s["name"] for s in json.loads(run_cli(root, "schedules", "--json").stdout)]

    assert names() == ["nightly"]
    (root / "more.py").write_text(more.replace("[1]", "[2]"))  # only `more` is imported again
    assert names() == ["nightly"]
    (root / "shop.py").write_text(DECLARED.replace('"nightly"', '"early"'))
    assert names() == ["early"]


def test_a_schedule_first_seen_in_a_repeated_hour_fires_nothing_before_it() -> None:
    """At 01:09 EST on 2026-11-01 (the second 1 a.m. in New York), 01:15 EDT has passed:
    cron's arithmetic from the wall clock would give it; the schedule must not."""
    from datetime import timedelta, timezone

    from vibepiper.definitions.schedule import Schedule

    schedule = Schedule("s", "15 1 * * *", "America/New_York")
    after = datetime(2026, 11, 1, 1, 9, tzinfo=timezone(timedelta(hours=-5)))
    first = next(schedule.times(after))
    assert first > after
    assert first == datetime(2026, 11, 2, 6, 15, tzinfo=UTC)  # the next day, 01:15 EST
    assert schedule.due(after, after + timedelta(minutes=30), 5) == ([], 0)


def test_a_run_of_many_ticks_has_a_trigger_materialize_accepts(tmp_path: Path) -> None:
    from vibepiper.automation.daemon import TRIGGER_LENGTH, _trigger

    names = [f"freshness:asset_number_{i:03d}" for i in range(60)]
    trigger = _trigger(names)
    assert trigger.startswith("freshness:asset_number_000,asset_number_001,")
    assert trigger.endswith(" more") and len(trigger) <= TRIGGER_LENGTH + 12
    root = project(tmp_path)
    done = run_cli(root, "materialize", "lonely", "--trigger", trigger)
    assert done.returncode == 0, done.stderr
    assert rows(root, "SELECT trigger FROM runs") == [{"trigger": trigger}]


HOLDS_THE_TURN = (
    PLAIN
    + """
@asset
def slow() -> pd.DataFrame:
    time.sleep(8)
    return pd.DataFrame({"s": [1]})
"""
)


@pytest.mark.slow
def test_a_tick_whose_run_waits_when_serve_stops_runs_at_the_next_serve(
    tmp_path: Path,
) -> None:
    """serve is stopped while its run waits for a manual run to finish: the run never
    started, so its tick is queued again, and the next serve runs it, once."""
    root = project(tmp_path, schedule_toml("s", "0 6 * * *", select="lonely"), HOLDS_THE_TURN)
    assert once(root, "2026-05-01T00:00:00+00:00").returncode == 0  # registered
    manual = start_cli(root, "materialize", "slow")
    try:
        wait_for(lambda: rows(root, "SELECT * FROM runs WHERE status = 'running'"))
        server = start_cli(root, "serve", "--no-ui", env=clock_at("2026-05-01T06:00:01+00:00"))
        wait_for(lambda: [t for t in ticks(root) if t["status"] == "launched"])
        time.sleep(1.0)  # its run waits for the manual one
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
        assert server.returncode == 130
    finally:
        manual.communicate(timeout=60)
    [tick] = [t for t in ticks(root) if t["scheduled_for"].startswith("2026-05-01T06:00")]
    assert tick["status"] == "queued"
    assert once(root, "2026-05-01T06:10:00+00:00").returncode == 0
    assert fired(root, "s") == ["2026-05-01T06:00"]
    one_run_each(root)
    assert rows(root, "SELECT status FROM runs WHERE trigger = 'schedule:s'") == [
        {"status": "succeeded"}
    ]


def test_a_fake_clock_with_an_absurd_epoch_is_refused() -> None:
    from vibepiper import clock

    for bad in ("2026-03-29T00:30:00Z@inf", "2026-03-29T00:30:00Z@nan", "2026-03-29T00:30:00Z*inf"):
        with pytest.raises(ValueError):
            clock.parse(bad)
