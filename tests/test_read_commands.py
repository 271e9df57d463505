"""The commands that read what was made, as a new user meets them (issue 16): the hint to
a failure's traceback, `logs latest` and check runs, rejected versions, exact JSON from
`show`, `history` without no-op rows, a cancelled last attempt, and JUnit XML."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from tests.conftest import catalog_rows, run_cli, write_project
from tests.helpers.output import ok_json

SHOP = """
import pandas as pd
from vibepiper import asset, expect, source_file

raw = source_file("raw", "data/raw.csv")


@asset(checks=[expect.in_range("n", max=10, name="small"), expect.not_null("n", severity="warn")])
def capped(context, raw: pd.DataFrame) -> pd.DataFrame:
    context.log.info("capped has %d rows", len(raw))
    return raw


def explode(frame):
    raise RuntimeError("boom in explode")


@asset
def broken(raw: pd.DataFrame) -> pd.DataFrame:
    if len(raw) > 3:
        explode(raw)
    return raw
"""


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = write_project(tmp_path / "proj", {"read_shop": SHOP}, {"data/raw.csv": "n\n1\n2\n3\n"})
    first = run_cli(root, "materialize")
    assert first.returncode == 0, first.stdout + first.stderr
    return root


# -- 3. the hint to the full traceback ---------------------------------------------------


def test_the_failure_hint_names_history_errors_which_prints_the_traceback(shop: Path) -> None:
    (shop / "data" / "raw.csv").write_text("n\n1\n2\n3\n4\n")
    failed = run_cli(shop, "materialize", "+broken")
    assert failed.returncode == 1
    assert "vibepiper history broken --errors" in failed.stdout

    brief = run_cli(shop, "history", "broken")
    assert "Traceback" not in brief.stdout  # one line per materialization
    full = run_cli(shop, "history", "broken", "--errors")
    assert full.returncode == 0, full.stderr
    assert "Traceback (most recent call last)" in full.stdout
    assert "in explode" in full.stdout and "RuntimeError: boom in explode" in full.stdout
    assert "succeeded" not in full.stdout  # only the failed materializations
    as_json = ok_json(run_cli(shop, "history", "broken", "--errors", "--json"))
    assert [r["status"] for r in as_json] == ["failed"]
    assert "in explode" in as_json[0]["error"]

    nothing = run_cli(shop, "history", "capped", "--errors")
    assert nothing.returncode == 0 and nothing.stdout == ""
    assert "no failed materializations" in nothing.stderr


# -- 5. check runs in `runs` and `logs latest` -------------------------------------------


def test_runs_say_their_kind_and_logs_latest_is_the_latest_materialize(shop: Path) -> None:
    assert run_cli(shop, "check").returncode == 0
    runs = ok_json(run_cli(shop, "runs", "--json"))
    assert [r["kind"] for r in runs] == ["check", "materialize"]
    table = run_cli(shop, "runs").stdout
    assert "kind" in table.splitlines()[0] and "check" in table

    logs = run_cli(shop, "logs", "latest")
    assert logs.returncode == 0, logs.stderr
    assert "capped has 3 rows" in logs.stdout
    assert "latest materialize run" in run_cli(shop, "logs", "--help").stdout


# -- 7. rejected versions can be looked up -----------------------------------------------


def test_a_rejected_version_is_shown_traced_and_records_its_inputs(shop: Path) -> None:
    (shop / "data" / "raw.csv").write_text("n\n1\n2\n30\n")
    assert run_cli(shop, "materialize", "+capped").returncode == 1
    rejected, published = ok_json(run_cli(shop, "history", "capped", "--json"))
    assert (rejected["status"], published["status"]) == ("check_failed", "succeeded")
    assert [i["asset"] for i in rejected["inputs"]] == ["raw"]  # its input versions too
    assert rejected["inputs"][0]["data_version"] != published["inputs"][0]["data_version"]

    version = rejected["data_version"][:12]
    shown = run_cli(shop, "show", "capped", "--version", version, "--json")
    assert shown.returncode == 0, shown.stderr
    assert [r["n"] for r in json.loads(shown.stdout)] == [1, 2, 30]
    assert "rejected" in shown.stderr and "small" in shown.stderr
    table = run_cli(shop, "show", "capped", "--version", version)
    assert table.returncode == 0 and "30" in table.stdout
    assert "rejected" in table.stderr and "small" in table.stderr

    traced = ok_json(run_cli(shop, "lineage", "capped", "--version", version, "--format", "json"))
    assert traced["data_version"] == rejected["data_version"]
    assert [(i["asset"], i["data_version"]) for i in traced["inputs"]] == [
        ("raw", rejected["inputs"][0]["data_version"])
    ]
    assert traced["status"] == "check_failed" and traced["inputs"][0]["status"] == "succeeded"
    text = run_cli(shop, "lineage", "capped", "--version", version).stdout.splitlines()
    assert "(rejected by its checks, never published; made " in text[0]
    assert "rejected" not in text[1]

    # The published version is still current, and still shown without a word of rejection.
    current = run_cli(shop, "show", "capped", "--json")
    assert [r["n"] for r in json.loads(current.stdout)] == [1, 2, 3]
    older = run_cli(shop, "show", "capped", "--version", published["data_version"][:12])
    assert older.returncode == 0 and "rejected" not in older.stderr
    (current_version,) = catalog_rows(
        shop, "SELECT data_version FROM current_materializations WHERE asset = 'capped'"
    )
    assert current_version == (published["data_version"],)


# -- 8. `show --json` is exact -----------------------------------------------------------

FLOATS = """
import pandas as pd
from vibepiper import asset

VALUES = [0.1, 1 / 3, 1e-300, 5e-324, 1.7976931348623157e308, -2.5e-17, 123456789.12345679,
          float("inf"), float("-inf"), float("nan")]


@asset
def numbers() -> pd.DataFrame:
    return pd.DataFrame({"x": VALUES, "i": range(len(VALUES))})
"""


def test_show_json_gives_floats_exactly_as_query_json(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"floats_shop": FLOATS})
    assert run_cli(root, "materialize").returncode == 0
    shown = ok_json(run_cli(root, "show", "numbers", "--json", "--limit", "100"))
    queried = ok_json(run_cli(root, "query", "select * from numbers order by i", "--json"))
    assert shown == queried
    values = [0.1, 1 / 3, 1e-300, 5e-324, 1.7976931348623157e308, -2.5e-17, 123456789.12345679]
    assert [r["x"] for r in shown[: len(values)]] == values
    assert all(type(r["x"]) is float for r in shown[: len(values)])
    assert [r["x"] for r in shown[len(values) :]] == ["Infinity", "-Infinity", None]
    assert not math.isnan(float(shown[0]["x"]))


# -- 16. history without no-op rows; a cancelled last attempt; JUnit XML ------------------


def test_history_shows_materializations_and_skips_only_with_all(shop: Path) -> None:
    for _ in range(2):
        assert run_cli(shop, "materialize", "capped").returncode == 0  # fresh: skipped
    (shop / "data" / "raw.csv").write_text("n\n1\n2\n30\n")
    assert run_cli(shop, "materialize", "+capped+").returncode == 1  # capped check_failed

    default = ok_json(run_cli(shop, "history", "capped", "--json"))
    assert [r["status"] for r in default] == ["check_failed", "succeeded"]
    everything = ok_json(run_cli(shop, "history", "capped", "--json", "--all"))
    assert [r["status"] for r in everything] == [
        "check_failed",
        "skipped",
        "skipped",
        "succeeded",
    ]
    table = run_cli(shop, "history", "capped")
    assert "skipped" not in table.stdout and "2 skipped" in table.stderr
    assert "--all" in table.stderr
    assert table.stdout.count("\n") < run_cli(shop, "history", "capped", "--all").stdout.count("\n")
    assert "--all" in run_cli(shop, "history", "--help").stdout


WAITING = """
from pathlib import Path

import pandas as pd
from vibepiper import asset

HERE = Path(__file__).parent


@asset
def slow() -> pd.DataFrame:
    (HERE / "started").touch()
    while not (HERE / "release").exists():
        pass
    return pd.DataFrame({"x": [1]})
"""


def test_status_after_a_cancelled_run_says_the_last_attempt_was_cancelled(
    tmp_path: Path, forget_project_modules: None
) -> None:
    from vibepiper import Project

    root = write_project(tmp_path / "proj", {"waiting_shop": WAITING})
    (root / "release").touch()
    assert Project(root).materialize().ok
    (root / "release").unlink()
    (root / "started").unlink()
    cancel = threading.Event()

    def cancel_once_started() -> None:
        while not (root / "started").exists():
            time.sleep(0.02)
        cancel.set()
        (root / "release").touch()  # the threads executor waits for the asset to end

    watcher = threading.Thread(target=cancel_once_started, daemon=True)
    watcher.start()
    try:
        result = Project(root).materialize(force=True, executor="threads", cancel=cancel)
    finally:
        watcher.join(timeout=60)
    assert result.cancelled

    (slow,) = ok_json(run_cli(root, "status", "--json"))
    assert slow["reasons"] == ["the last attempt was cancelled"]
    assert "the last attempt was cancelled" in run_cli(root, "status").stdout
    assert "failed" not in run_cli(root, "status").stdout


def test_junit_says_each_warning_once_and_no_failing_rows_for_stale_entries(
    shop: Path, tmp_path: Path
) -> None:
    (shop / "data" / "raw.csv").write_text("n\n1\nNA\n3\n")  # a null: the warn check fails
    assert run_cli(shop, "materialize", "+capped").returncode == 0
    junit = tmp_path / "junit.xml"
    assert run_cli(shop, "check", "capped", "--junit-xml", str(junit)).returncode == 0
    (warning,) = [c for c in ET.parse(junit).getroot().iter("system-out")]
    text = warning.text or ""
    message = "not_null('n') failed for 1 of 3 rows"
    assert text.count(message) == 1, text
    assert text.startswith(f"warning: {message}")
    assert "failing rows: 1" in text

    (shop / "data" / "raw.csv").write_text("n\n1\n2\n")  # capped and broken are stale
    stale = run_cli(shop, "check", "--require-fresh", "--junit-xml", str(junit))
    assert stale.returncode == 1
    failures = list(ET.parse(junit).getroot().iter("failure"))
    assert failures and all("stale" in (f.text or "") for f in failures)
    assert not [f for f in failures if "failing rows" in (f.text or "")]


def test_a_cancelled_last_attempt_is_a_reason_of_its_own() -> None:
    from datetime import datetime

    from vibepiper.versioning.fingerprint import CodeVersion
    from vibepiper.versioning.freshness import Current, judge

    def last(state: str) -> tuple[str, ...]:
        made = Current("a", "m1", "c1", "d1", 1, datetime(2026, 1, 1), {}, last_attempt=state)
        return judge(made, code=CodeVersion("c1", {}), inputs={}).reasons

    assert last("cancelled") == ("the last attempt was cancelled",)
    assert last("failed") == ("the last attempt failed",)
    assert last("succeeded") == ()
