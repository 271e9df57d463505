"""Concurrency: four `materialize` runs and four reader loops on one project at once keep
the catalog and the store consistent; runs take turns, and readers never see a raw
DuckDB or lock error.

Real parts only: real DuckDB catalogs, real Parquet files, the real CLI as concurrent
subprocesses.
"""

from __future__ import annotations

import itertools
import random
import re
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXECUTOR_ARGS, run_cli, start_cli, write_project
from tests.helpers.output import ok_json
from tests.helpers.state import current_versions, stored_problem
from vibepiper.catalog.catalog import Catalog

EVENTS_ASSETS = '''
"""15 assets over one source: a fan-out by kind, then marts."""

import time

import pandas as pd

from vibepiper import asset, expect, source_file

KINDS = ("view", "click", "buy", "share")

raw_events = source_file("raw_events", "data/events.csv")


@asset(checks=[expect.not_null("user"), expect.row_count(min=1)])
def events(raw_events: pd.DataFrame) -> pd.DataFrame:
    return raw_events.sort_values(["user", "t"]).reset_index(drop=True)


def per_kind(kind: str):
    @asset(name=f"kind_{kind}", inputs={"events": "events"}, group="kinds")
    def only(events: pd.DataFrame) -> pd.DataFrame:
        time.sleep(0.03)
        return events[events["kind"] == kind].reset_index(drop=True)

    @asset(name=f"users_{kind}", inputs={"rows": f"kind_{kind}"}, group="kinds")
    def users(rows: pd.DataFrame) -> pd.DataFrame:
        out = rows.groupby("user", as_index=False).agg(n=("t", "size"), last=("t", "max"))
        return out.assign(kind=kind)

    return only, users


BY_KIND = [a for k in KINDS for a in per_kind(k)]


@asset(inputs={f"u_{k}": f"users_{k}" for k in KINDS}, checks=[expect.unique("user", "kind")])
def funnel(u_view, u_click, u_buy, u_share) -> pd.DataFrame:
    return pd.concat([u_view, u_click, u_buy, u_share], ignore_index=True)


@asset
def daily(events: pd.DataFrame) -> pd.DataFrame:
    day = events["t"] // 86_400
    return events.assign(day=day).groupby("day", as_index=False).size()


@asset(checks=[expect.row_count(max=10)])
def top_users(funnel: pd.DataFrame) -> pd.DataFrame:
    return funnel.groupby("user", as_index=False)["n"].sum().nlargest(10, ["n", "user"])


@asset
def summary(funnel: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    time.sleep(0.05)
    return pd.DataFrame({"rows": [len(funnel)], "days": [len(daily)]})


@asset
def lonely() -> pd.DataFrame:
    return pd.DataFrame({"x": range(100)})
'''


def events_csv() -> str:
    rng = random.Random(5)
    kinds = ("view", "click", "buy", "share")
    rows = [
        f"{rng.randint(1, 200)},{rng.choice(kinds)},{rng.randint(0, 30 * 86_400)}"
        for _ in range(4000)
    ]
    return "user,kind,t\n" + "\n".join(rows) + "\n"


MATERIALIZERS = [
    ("materialize", "--force"),
    ("materialize", "--force", *EXECUTOR_ARGS["processes"]),
    ("materialize", "+users_buy", "+users_view"),
    ("materialize", "--force", "+daily", "lonely"),
]
READERS = [
    ("status", "--json"),
    ("history", "funnel", "--json"),
    ("lineage", "summary", "--format", "json"),
    ("query", "select asset, count(*) as n from materializations group by asset", "--json"),
]
READER_LOOPS = 3
RAW_ERRORS = ("Traceback", "IO Error", "IOException", "Conflicting lock", "Could not set lock")
WAITING = re.compile(r"waiting for the run of process (\d+) \(.*\) to finish")


@dataclass
class Round:
    materializers: list[tuple[int, subprocess.CompletedProcess[str]]]  # (pid, result)
    readers: list[subprocess.CompletedProcess[str]]


def one_round(root: Path) -> Round:
    """The 4 materializers and the 4 reader loops, all started at once."""
    procs = [start_cli(root, *args) for args in MATERIALIZERS]

    def loop(args: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
        return [run_cli(root, *args) for _ in range(READER_LOOPS)]

    def finish(proc: subprocess.Popen[str]) -> tuple[int, subprocess.CompletedProcess[str]]:
        out, err = proc.communicate(timeout=300)
        return proc.pid, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    with ThreadPoolExecutor(len(READERS) + len(procs)) as pool:
        reading = [pool.submit(loop, args) for args in READERS]
        running = [pool.submit(finish, proc) for proc in procs]
        readers = [result for future in reading for result in future.result()]
        materializers = [future.result() for future in running]
    return Round(materializers, readers)


def check_round(seen: Round) -> int:
    """Every process exited 0 with no traceback or raw DuckDB/lock error; readers printed
    JSON; a run that waited named another materializer. Returns how many runs waited."""
    pids = {pid for pid, _ in seen.materializers}
    waited = 0
    for pid, result in seen.materializers:
        assert result.returncode == 0, f"{result.args}: {result.stdout}\n{result.stderr}"
        for raw in RAW_ERRORS:
            assert raw not in result.stderr + result.stdout, result.stderr
        for holder in WAITING.findall(result.stderr):
            assert int(holder) in pids - {pid}, result.stderr
            waited += 1
    for result in seen.readers:
        for raw in RAW_ERRORS:
            assert raw not in result.stderr, result.stderr
        assert isinstance(ok_json(result), list | dict)
    return waited


@pytest.mark.slow
def test_concurrent_runs_and_readers_keep_the_catalog_and_store_consistent(
    tmp_path: Path,
) -> None:
    root = write_project(tmp_path / "proj", {"events_assets": EVENTS_ASSETS})
    (root / "data").mkdir()
    (root / "data" / "events.csv").write_text(events_csv())
    home = root / ".vibepiper"
    waited = []
    for _ in range(3):
        seen = one_round(root)
        waited.append(check_round(seen))
    print(f"runs that waited for another run, by round: {waited}")
    assert all(waited), f"runs that waited for another, by round: {waited}"

    runs = Catalog(home).fetch("SELECT run_id, status, started_at, finished_at FROM runs")
    assert len(runs) == 3 * len(MATERIALIZERS)
    assert {r["status"] for r in runs} == {"succeeded"}  # none left running
    spans = sorted((r["started_at"], r["finished_at"]) for r in runs)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, f"two runs of the project overlapped: {spans}"

    mats = Catalog(home).fetch(
        "SELECT materialization_id, asset, status, started_at, finished_at FROM materializations"
    )
    ids = Counter(m["materialization_id"] for m in mats)
    assert [i for i, n in ids.items() if n > 1] == []
    published: dict[str, list[tuple[Any, Any]]] = {}
    for m in mats:
        if m["status"] == "succeeded":
            published.setdefault(m["asset"], []).append((m["started_at"], m["finished_at"]))
    assert len(published) == 15
    for asset, intervals in published.items():
        intervals.sort()
        for (_, end), (start, _) in itertools.pairwise(intervals):
            assert start >= end, f"two publishes of {asset} overlapped: {intervals}"

    for asset, version in current_versions(home).items():
        path = home / "store" / asset / f"{version}.parquet"
        assert stored_problem(path, version, asset == "raw_events") == ""
    report = ok_json(run_cli(root, "doctor", "--json"))
    assert report["healthy"] and report["findings"] == [], report
