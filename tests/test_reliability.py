"""Reliability: SIGKILLs at random moments, concurrent runs and readers, lost commits under
contention, a full disk, and `vibepiper doctor` against damaged stores.

Real parts only: real DuckDB catalogs, real Parquet files, the real CLI as subprocesses
(`python -m vibepiper`), real concurrent processes, real SIGKILLs, a real tmpfs. Nothing
is mocked; where a fault cannot be produced for real (a full disk in a container that
refuses mounts), an LD_PRELOAD shim makes the kernel-facing call fail in the real process.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from vibepiper.catalog.catalog import Catalog
from vibepiper.versioning.data_version import table_version

from .conftest import VIBEPIPER, write_project

HELPERS = Path(__file__).parent / "helpers"


# -- shared helpers ------------------------------------------------------------------------


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VIBEPIPER_HOME"}
    return {**env, **(extra or {})}


def vp(
    root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """The real CLI in `root`, as a subprocess (`env` is added to a clean environment)."""
    return subprocess.run(
        [*VIBEPIPER, *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(env),
    )


def ok_json(proc: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a reader printed, after checking it exited 0 without a traceback."""
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}: {proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def stored_problem(path: Path, version: str | None = None, source: bool = False) -> str:
    """What is wrong with a store file ("" if nothing): it must read with page checksums
    verified and, unless it is a source's (named by its CSV's hash), hash to `version`."""
    try:
        table = pq.read_table(path, page_checksum_verification=True)
    except FileNotFoundError:
        return "missing"
    except Exception as exc:  # pyarrow raises several types for damaged files
        return f"unreadable: {type(exc).__name__}: {exc}"
    if version is not None and not source:
        actual = table_version(table)
        if actual != version:
            return f"hashes to {actual}, not to {version}"
    return ""


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def current_versions(home: Path) -> set[tuple[str, str]]:
    rows = Catalog(home).fetch("SELECT asset, data_version FROM current_materializations")
    return {(r["asset"], r["data_version"]) for r in rows}


def last_run_states(home: Path) -> dict[str, str]:
    """Each asset's state in the latest run."""
    rows = Catalog(home).fetch(
        "SELECT asset, status FROM materializations WHERE run_id = (SELECT max(run_id) FROM runs)"
    )
    return {r["asset"]: r["status"] for r in rows}


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def wait_for_group(pgid: int, timeout: float = 60) -> float:
    """Seconds until every process of group `pgid` is gone (worker processes may outlive a
    killed scheduler for a while); fails, killing them, if they are still there after
    `timeout` seconds."""
    started = time.monotonic()
    while group_members(pgid):
        if time.monotonic() - started > timeout:
            left = group_members(pgid)
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"processes {left} outlived their killed run by {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - started


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def running_runs(home: Path) -> list[str]:
    if not (home / "catalog.duckdb").exists():
        return []
    rows = Catalog(home).fetch("SELECT run_id FROM runs WHERE status = 'running'")
    return [r["run_id"] for r in rows]


# -- 1. crash safety: SIGKILL at random moments ---------------------------------------------

CRASH_ASSETS = '''
"""A 31-asset shop: 3 sources, staging, a regional factory, marts."""

import time

import numpy as np
import pandas as pd
import pandera.pandas as pa

from vibepiper import CheckResult, asset, check, expect, source_file

REGIONS = ("north", "south", "east", "west", "centre")

raw_customers = source_file("raw_customers", "data/customers.csv")
raw_orders = source_file("raw_orders", "data/orders.csv")
raw_products = source_file("raw_products", "data/products.csv")


class Customers(pa.DataFrameModel):
    customer_id: int = pa.Field(unique=True, ge=1)
    name: str
    region: str = pa.Field(isin=list(REGIONS))


class OrderLines(pa.DataFrameModel):
    order_id: int = pa.Field(ge=1)
    product_id: int = pa.Field(ge=1)
    quantity: int = pa.Field(ge=1)
    revenue: float = pa.Field(ge=0)


@asset(schema=Customers, group="staging")
def stg_customers(raw_customers: pd.DataFrame) -> pd.DataFrame:
    out = raw_customers.rename(columns={"id": "customer_id"})
    out["name"] = out["name"].str.title()
    return out.sort_values("customer_id").reset_index(drop=True)


@asset(group="staging", checks=[expect.unique("order_id"), expect.not_null("customer_id")])
def stg_orders(raw_orders: pd.DataFrame) -> pd.DataFrame:
    out = raw_orders.rename(columns={"id": "order_id"})
    out["day"] = pd.to_datetime(out["day"])
    return out.sort_values("order_id").reset_index(drop=True)


@asset(group="staging", checks=[expect.in_range("price", min=0), expect.unique("product_id")])
def stg_products(raw_products: pd.DataFrame) -> pd.DataFrame:
    return raw_products.rename(columns={"id": "product_id"}).reset_index(drop=True)


@asset(schema=OrderLines, group="core")
def order_lines(stg_orders: pd.DataFrame, stg_products: pd.DataFrame) -> pd.DataFrame:
    lines = stg_orders.merge(stg_products, on="product_id", how="inner")
    lines["revenue"] = (lines["quantity"] * lines["price"]).round(2)
    return lines.sort_values(["order_id", "product_id"]).reset_index(drop=True)


@asset(
    group="core",
    checks=[expect.relationship("customer_id", to="stg_customers", field="customer_id")],
)
def customer_orders(order_lines: pd.DataFrame, stg_customers: pd.DataFrame) -> pd.DataFrame:
    joined = order_lines.merge(stg_customers, on="customer_id", how="left")
    return joined.sort_values(["order_id", "product_id"]).reset_index(drop=True)


@asset(group="core")
def product_sales(order_lines: pd.DataFrame) -> pd.DataFrame:
    grouped = order_lines.groupby("product_id", as_index=False).agg(
        units=("quantity", "sum"), revenue=("revenue", "sum"), orders=("order_id", "nunique")
    )
    return grouped.sort_values("product_id").reset_index(drop=True)


@asset(group="core", checks=[expect.row_count(min=1)])
def daily_sales(order_lines: pd.DataFrame) -> pd.DataFrame:
    time.sleep(0.02)
    daily = order_lines.groupby("day", as_index=False)["revenue"].sum()
    return daily.sort_values("day").reset_index(drop=True)


@asset(group="core")
def simulation(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 60_000
    return pd.DataFrame(
        {"bucket": rng.integers(0, 500, n), "x": rng.normal(size=n), "y": rng.random(n)}
    )


@asset(group="core", checks=[expect.not_null("x_mean")])
def simulation_stats(simulation: pd.DataFrame) -> pd.DataFrame:
    stats = simulation.groupby("bucket").agg(
        x_mean=("x", "mean"), y_max=("y", "max"), n=("x", "size")
    )
    return stats.reset_index().sort_values("bucket").reset_index(drop=True)


def regional(region: str):
    @asset(name=f"orders_{region}", inputs={"orders": "customer_orders"}, group="regions")
    def orders_of(orders: pd.DataFrame) -> pd.DataFrame:
        return orders[orders["region"] == region].reset_index(drop=True)

    @asset(
        name=f"summary_{region}",
        inputs={"orders": f"orders_{region}"},
        group="regions",
        checks=[expect.not_null("revenue")],
    )
    def summary_of(orders: pd.DataFrame) -> pd.DataFrame:
        summary = orders.groupby("customer_id", as_index=False).agg(
            revenue=("revenue", "sum"), lines=("order_id", "size")
        )
        summary["region"] = region
        return summary.sort_values("customer_id").reset_index(drop=True)

    return orders_of, summary_of


REGIONAL = [a for r in REGIONS for a in regional(r)]


@asset(group="marts", inputs={f"s_{r}": f"summary_{r}" for r in REGIONS})
def all_regions(s_north, s_south, s_east, s_west, s_centre) -> pd.DataFrame:
    frames = [s_north, s_south, s_east, s_west, s_centre]
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["region", "customer_id"]).reset_index(drop=True)


@asset(group="marts", checks=[expect.row_count(min=1, max=20)])
def top_customers(all_regions: pd.DataFrame) -> pd.DataFrame:
    return all_regions.nlargest(20, ["revenue", "customer_id"]).reset_index(drop=True)


@asset(group="marts")
def region_totals(all_regions: pd.DataFrame) -> pd.DataFrame:
    out = all_regions.groupby("region", as_index=False).agg(
        revenue=("revenue", "sum"), customers=("customer_id", "nunique")
    )
    return out.sort_values("region").reset_index(drop=True)


@asset(group="marts")
def product_rank(product_sales: pd.DataFrame, stg_products: pd.DataFrame) -> pd.DataFrame:
    ranked = product_sales.merge(stg_products, on="product_id")
    ranked["rank"] = ranked["revenue"].rank(ascending=False, method="first").astype(int)
    return ranked.sort_values("rank").reset_index(drop=True)


@asset(group="marts")
def monthly_revenue(daily_sales: pd.DataFrame) -> pd.DataFrame:
    month = daily_sales["day"].dt.strftime("%Y-%m")
    out = daily_sales.assign(month=month).groupby("month", as_index=False)["revenue"].sum()
    return out.sort_values("month").reset_index(drop=True)


@asset(group="marts", checks=[expect.in_range("revenue", min=0)])
def customer_ltv(customer_orders: pd.DataFrame) -> pd.DataFrame:
    ltv = customer_orders.groupby(["customer_id", "name"], as_index=False).agg(
        revenue=("revenue", "sum"), first_day=("day", "min"), last_day=("day", "max")
    )
    ltv["days"] = (ltv["last_day"] - ltv["first_day"]).dt.days
    return ltv.sort_values("customer_id").reset_index(drop=True)


@asset(group="marts")
def kpis(
    region_totals: pd.DataFrame, monthly_revenue: pd.DataFrame, simulation_stats: pd.DataFrame
) -> pd.DataFrame:
    time.sleep(0.02)
    return pd.DataFrame(
        {
            "metric": ["revenue", "months", "regions", "sim_mean"],
            "value": [
                float(region_totals["revenue"].sum()),
                float(len(monthly_revenue)),
                float(len(region_totals)),
                float(simulation_stats["x_mean"].mean()),
            ],
        }
    )


@asset(group="marts")
def calendar() -> pd.DataFrame:
    days = pd.date_range("2026-01-01", periods=365, freq="D")
    return pd.DataFrame({"day": days, "weekday": days.dayofweek, "month": days.month})


@asset(group="marts")
def report(
    kpis: pd.DataFrame,
    top_customers: pd.DataFrame,
    product_rank: pd.DataFrame,
    customer_ltv: pd.DataFrame,
    calendar: pd.DataFrame,
) -> pd.DataFrame:
    parts = [kpis, top_customers, product_rank, customer_ltv, calendar]
    names = ["kpis", "top_customers", "products", "customers", "calendar"]
    return pd.DataFrame({"part": names, "rows": [len(p) for p in parts]})


@check(asset="report", severity="warn")
def report_has_every_part(report: pd.DataFrame) -> CheckResult:
    return CheckResult(passed=len(report) == 5, message=f"{len(report)} parts")
'''

CRASH_ASSET_COUNT = 31
CRASH_SOURCES = frozenset({"raw_customers", "raw_orders", "raw_products"})
CRASH_REGIONS = ("north", "south", "east", "west", "centre")
VARIANTS = 2  # source data sets the kill loop switches between, so every killed run has work
EXECUTOR_ARGS = {"inprocess": (), "processes": ("--executor", "processes", "--workers", "2")}


def crash_sources(variant: int) -> dict[str, str]:
    """Deterministic source CSVs; each variant changes every source (so every asset but the
    few that read no source is recomputed when the variant changes)."""
    rng = random.Random(1000 + variant)
    customers = ["id,name,region"] + [
        f"{i},customer {i},{rng.choice(CRASH_REGIONS)}" for i in range(1, 301)
    ]
    products = ["id,title,price"] + [
        f"{i},product {i},{rng.randint(100, 9999) / 100}" for i in range(1, 81)
    ]
    orders = ["id,customer_id,product_id,quantity,day"] + [
        f"{i},{rng.randint(1, 300)},{rng.randint(1, 80)},{rng.randint(1, 9)},"
        f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        for i in range(1, 3001)
    ]
    return {
        "data/customers.csv": "\n".join(customers) + "\n",
        "data/products.csv": "\n".join(products) + "\n",
        "data/orders.csv": "\n".join(orders) + "\n",
    }


def set_sources(root: Path, variant: int) -> None:
    for rel, text in crash_sources(variant).items():
        temp = root / f"{rel}.new"
        temp.write_text(text)
        os.replace(temp, root / rel)


@dataclass(frozen=True)
class CrashReference:
    """What uninterrupted runs of the crash project end with, and how long they take."""

    root: Path  # a materialized project (variant 0), to copy
    current: dict[int, frozenset[tuple[str, str]]]  # variant -> (asset, data_version) set
    seconds: dict[str, float]  # executor -> duration of a full run


@pytest.fixture(scope="module")
def crash_reference(tmp_path_factory: pytest.TempPathFactory) -> CrashReference:
    """Each variant run once, uninterrupted: variant 0 in process, variant 1 by worker
    processes (so the durations of both executors are measured)."""
    base = tmp_path_factory.mktemp("crash-reference")
    current: dict[int, frozenset[tuple[str, str]]] = {}
    seconds: dict[str, float] = {}
    for variant in range(VARIANTS):
        executor = "processes" if variant == 1 else "inprocess"
        root = write_project(
            base / f"v{variant}", {"crash_assets": CRASH_ASSETS}, crash_sources(variant)
        )
        started = time.monotonic()
        done = vp(root, "materialize", *EXECUTOR_ARGS[executor])
        seconds[executor] = time.monotonic() - started
        assert done.returncode == 0, done.stdout + done.stderr
        current[variant] = frozenset(current_versions(root / ".vibepiper"))
        assert len(current[variant]) == CRASH_ASSET_COUNT
    shared = current[0] & current[1]
    # only what reads no source (and `report`, which counts rows) is the same in every variant
    assert {a for a, _ in shared} == {"calendar", "simulation", "simulation_stats", "report"}
    return CrashReference(base / "v0", current, seconds)


@dataclass
class CrashTally:
    """What a kill loop did, for the assertions and the record."""

    seconds: dict[str, float]  # executor -> duration of its latest full run
    runs: int = 0
    kills: int = 0  # the run was still going when it was killed
    progress_at_kill: Counter[str] = field(default_factory=Counter)  # how far killed runs got
    longest_linger: float = 0.0  # how long worker processes outlived a killed run
    findings: Counter[str] = field(default_factory=Counter)  # what doctor --repair found
    checkpoints: int = 0
    repeated_repairs: int = 0  # a doctor --repair that had to be repeated (zombie, pid reuse)
    left_after_repair: Counter[str] = field(default_factory=Counter)  # what it had left
    files_verified: int = 0

    def summary(self) -> str:
        return (
            f"{self.kills} SIGKILLs in {self.runs} runs (assets finished when killed: "
            f"{dict(sorted(self.progress_at_kill.items()))}); {self.checkpoints} checkpoints "
            f"(doctor --repair found {dict(self.findings)}, repeated {self.repeated_repairs} "
            f"times, for {dict(self.left_after_repair)}); {self.files_verified} store files "
            f"verified; workers outlived a killed run by at most {self.longest_linger:.2f} s"
        )


PROGRESS = re.compile(r"^\[\s*\d+/\d+\] ")  # "[ 3/31] calendar  succeeded ...": one asset done


def progress_bucket(done: int) -> str:
    """How far a killed run had got, by the assets it had finished."""
    if done in (0, CRASH_ASSET_COUNT):
        return "0" if done == 0 else f"{done} (ending)"
    low = (done - 1) // 10 * 10 + 1
    return f"{low}-{low + 9}"


def materialize_and_kill(root: Path, executor: str, delay: float, tally: CrashTally) -> None:
    """Start `materialize` and SIGKILL it (only the scheduler, as the OOM killer would)
    after `delay` seconds, unless it has finished by then: then it must have succeeded, and
    its duration is the new measure of a full run by that executor (the machine's load
    changes as other tests come and go)."""
    log = root.parent / "killed-run.log"
    with log.open("w") as out:  # a file, not a pipe: orphaned workers may still write
        proc = subprocess.Popen(
            [*VIBEPIPER, "materialize", *EXECUTOR_ARGS[executor]],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            start_new_session=True,
        )
    tally.runs += 1
    started = time.monotonic()
    try:
        code = proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        tally.kills += 1
        tally.longest_linger = max(tally.longest_linger, wait_for_group(proc.pid))
        done = sum(1 for line in log.read_text().splitlines() if PROGRESS.match(line))
        tally.progress_at_kill[progress_bucket(done)] += 1
        return
    output = log.read_text()
    assert code == 0, output
    computed = sum(
        1 for line in output.splitlines() if PROGRESS.match(line) and "succeeded" in line
    )
    if computed >= CRASH_ASSET_COUNT - 4:  # a full run (but what reads no source)
        tally.seconds[executor] = time.monotonic() - started
    wait_for_group(proc.pid)


def check_after_kill(root: Path, tally: CrashTally, *, cli: bool = True) -> None:
    """The catalog opens (`vibepiper query` with `cli`, else through the same Catalog class
    the CLI uses, under its lock); every version ever recorded as succeeded (so every current
    one) has its file, which reads with page checksums verified and hashes to its version;
    and every other published file (one a run published but had not recorded) is whole."""
    home = root / ".vibepiper"
    if cli:
        opened = vp(root, "query", "select count(*) as n from runs", "--json")
        assert ok_json(opened)[0]["n"] >= 0
    catalog = Catalog(home)
    rows = catalog.fetch(
        "SELECT DISTINCT asset, data_version FROM materializations WHERE status = 'succeeded'"
    )
    recorded = {(r["asset"], r["data_version"]) for r in rows}
    assert current_versions(home) <= recorded
    store = home / "store"
    problems = []
    for asset, version in sorted(recorded):
        path = store / asset / f"{version}.parquet"
        if problem := stored_problem(path, version, asset in CRASH_SOURCES):
            problems.append(f"{asset} {version}: {problem}")
    for path in sorted(store.glob("*/*.parquet")):
        asset, version = path.parent.name, path.stem
        unrecorded = (asset, version) not in recorded
        if unrecorded and (problem := stored_problem(path, version, asset in CRASH_SOURCES)):
            problems.append(f"unrecorded {path}: {problem}")
        tally.files_verified += 1
    assert problems == [], "\n".join(problems)


def checkpoint(root: Path, expected: frozenset[tuple[str, str]], tally: CrashTally) -> None:
    """doctor --repair leaves a healthy store (never having found anything missing or
    corrupt), then a normal run completes and ends where an uninterrupted run of the same
    data ends.

    Doctor judges a writer dead when no process has its pid, and a pid may be given to
    another process or thread (pid_max is 32768 here; see the pid-reuse test below; a killed
    run's workers were also taken for alive while zombies, until the zombie test's fix). A
    temporary file or a `running` row may then survive one repair and show up in the next
    look. So repair again (a few seconds later, up to 5 times) until a look finds nothing;
    count how often that was needed.
    """
    tally.checkpoints += 1
    for attempt in range(5):
        if attempt:
            tally.repeated_repairs += 1
            time.sleep(2)
        repair = vp(root, "doctor", "--repair", "--json")
        assert "Traceback" not in repair.stderr, repair.stderr
        report = json.loads(repair.stdout)
        assert (repair.returncode == 0) == report["healthy"], repair.stdout
        # no run of ours is going on: only a pid now given to another process makes doctor
        # think one is, and leave orphans alone
        assert report["healthy"] or "in progress" in report["note"], report
        kinds = Counter(f["kind"] for f in report["findings"])
        tally.findings.update(kinds)
        assert set(kinds) <= {"unfinished", "temporary", "orphan"}, report  # nothing lost
        look = vp(root, "doctor", "--json")
        after = json.loads(look.stdout)
        assert {f["kind"] for f in after["findings"]} <= {"unfinished", "temporary", "orphan"}
        if look.returncode == 0 and after["healthy"] and after["findings"] == []:
            break
        tally.left_after_repair.update(f["kind"] for f in after["findings"])
    else:
        raise AssertionError(f"doctor --repair did not converge in 5 repairs: {after}")

    done = vp(root, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    home = root / ".vibepiper"
    assert current_versions(home) == expected


def crash_loop(
    root: Path, reference: CrashReference, seeds: Sequence[int], every: int, cli_every: int = 1
) -> CrashTally:
    """For each seed: switch the sources to a variant other than the current one (so the run
    has work), start `materialize` (inprocess or processes by the seed's parity), SIGKILL it
    at a moment drawn from the seed, and check the store; every `every` seeds (and after the
    last) repair, run and compare with the reference. The project is never reset: damage
    would accumulate."""
    tally = CrashTally(dict(reference.seconds))
    variant_of = {v: n for n, c in reference.current.items() for a, v in c if a == "raw_orders"}
    for i, seed in enumerate(seeds):
        rng = random.Random(seed)
        now = dict(current_versions(root / ".vibepiper")).get("raw_orders")
        variant = rng.choice([v for v in range(VARIANTS) if v != variant_of.get(now)])
        set_sources(root, variant)
        executor = "processes" if seed % 2 else "inprocess"
        delay = rng.uniform(0, tally.seconds[executor])
        materialize_and_kill(root, executor, delay, tally)
        check_after_kill(root, tally, cli=i % cli_every == 0)
        if (i + 1) % every == 0 or i == len(seeds) - 1:
            checkpoint(root, reference.current[variant], tally)
    return tally


def copy_reference(reference: CrashReference, dest: Path) -> Path:
    shutil.copytree(reference.root, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_sigkill_at_random_moments_loses_nothing(
    tmp_path: Path, crash_reference: CrashReference
) -> None:
    root = copy_reference(crash_reference, tmp_path / "proj")
    seeds = range(20)
    tally = crash_loop(root, crash_reference, seeds, every=10, cli_every=4)
    print(tally.summary())
    assert tally.kills >= len(seeds) // 2, tally.summary()  # most kills landed mid-run
    assert tally.checkpoints == 2


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("block", [0, 1])
def test_two_hundred_sigkills_lose_nothing(
    tmp_path: Path, crash_reference: CrashReference, block: int
) -> None:
    """200 kills in two blocks of 100 (two projects, so that `pytest -n 2` runs them side by
    side); the full doctor + run + reference check every 10 kills."""
    root = copy_reference(crash_reference, tmp_path / "proj")
    seeds = range(1000 + 100 * block, 1100 + 100 * block)
    tally = crash_loop(root, crash_reference, seeds, every=10, cli_every=5)
    print(tally.summary())
    assert tally.kills >= len(seeds) // 2, tally.summary()
    assert tally.checkpoints == 10


# -- 2. concurrency: runs and readers at once -----------------------------------------------

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
    procs = [
        subprocess.Popen(
            [*VIBEPIPER, *args],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        for args in MATERIALIZERS
    ]

    def loop(args: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
        return [vp(root, *args) for _ in range(READER_LOOPS)]

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

    for asset, version in current_versions(home):
        path = home / "store" / asset / f"{version}.parquet"
        assert stored_problem(path, version, asset == "raw_events") == ""
    report = ok_json(vp(root, "doctor", "--json"))
    assert report["healthy"] and report["findings"] == [], report


# -- 3. no acknowledged commit lost, 4 writers + 4 readers ----------------------------------

SHIM_NAME = "duckdb_prelock_delay.c"


def shared_tool(name: str) -> Path | None:
    for folder in (
        Path(__file__).resolve().parents[2] / "shared" / "tools",
        Path("/work/shared/tools"),
    ):
        if (folder / name).is_file():
            return folder / name
    return None


@pytest.fixture(scope="module")
def prelock_delay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The LD_PRELOAD shim that sleeps before DuckDB takes its file lock, compiled here."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip(f"no C compiler: cannot build the LD_PRELOAD shim {SHIM_NAME}")
    source = shared_tool(SHIM_NAME)
    if source is None:
        pytest.skip(f"{SHIM_NAME} is in neither ../shared/tools nor /work/shared/tools")
    library = tmp_path_factory.mktemp("prelock") / "delaylock.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"],
        check=True,
        capture_output=True,
    )
    return library


@dataclass
class Commits:
    acknowledged: set[str] = field(default_factory=set)
    lost: set[str] = field(default_factory=set)  # acknowledged, then missing after a round
    failures: list[str] = field(default_factory=list)


def contend_in_rounds(
    home: Path,
    shim: Path,
    *,
    writers: int,
    readers: int,
    cycles: int,
    rounds: int,
    raw: bool = False,
) -> Commits:
    """Rounds of fresh tests/helpers/catalog_worker.py processes on one catalog, DuckDB's
    lock delayed 20 ms; after each round, every row acknowledged so far is looked for.
    With `raw`, the workers go straight to duckdb, without our lock (the control)."""
    Catalog(home).ensure()
    preload = " ".join(filter(None, [str(shim), os.environ.get("LD_PRELOAD", "")]))
    env = {**os.environ, "LD_PRELOAD": preload, "LOCK_DELAY_US": "20000"}
    seen = Commits()
    for r in range(rounds):
        names = [("writer", f"r{r}w{i}") for i in range(writers)]
        names += [("reader", f"r{r}r{i}") for i in range(readers)]
        procs = []
        for role, name in names:
            command = [sys.executable, str(HELPERS / "catalog_worker.py"), str(home), role]
            command += [name, str(cycles), *(["--raw"] if raw else [])]
            with (home / f"{name}.out").open("w") as out, (home / f"{name}.err").open("w") as err:
                procs.append((name, subprocess.Popen(command, stdout=out, stderr=err, env=env)))
        for name, proc in procs:
            if proc.wait(timeout=600) != 0:
                seen.failures.append(f"{name}: {(home / f'{name}.err').read_text()}")
        for name, _ in procs:
            seen.acknowledged |= set((home / f"{name}.out").read_text().split())
        present = {r["run_id"] for r in Catalog(home).fetch("SELECT run_id FROM runs")}
        seen.lost |= seen.acknowledged - present
    return seen


@pytest.mark.parametrize(
    ("cycles", "rounds"),
    [pytest.param(12, 1, id="12x1"), pytest.param(40, 4, marks=pytest.mark.slow, id="40x4-slow")],
)
def test_no_acknowledged_commit_is_lost_with_four_writers_and_four_readers(
    tmp_path: Path, prelock_delay: Path, cycles: int, rounds: int
) -> None:
    seen = contend_in_rounds(
        tmp_path / "home", prelock_delay, writers=4, readers=4, cycles=cycles, rounds=rounds
    )
    print(f"{len(seen.acknowledged)} acknowledged rows, {len(seen.lost)} lost")
    assert seen.failures == []
    expected = {f"r{r}w{w}-{i}" for r in range(rounds) for w in range(4) for i in range(cycles)}
    assert seen.acknowledged == expected  # every write was acknowledged...
    assert seen.lost == set(), f"{len(seen.lost)} acknowledged rows lost: {sorted(seen.lost)}"


@pytest.mark.slow
def test_four_writers_and_four_readers_lose_commits_without_our_lock(
    tmp_path: Path, prelock_delay: Path
) -> None:
    """The control: the same shape straight through duckdb. If it loses nothing (a fixed
    duckdb, a shim that no longer hooks the lock), the test above proves nothing: say so."""
    seen = contend_in_rounds(
        tmp_path / "home", prelock_delay, writers=4, readers=4, cycles=15, rounds=1, raw=True
    )
    print(f"without our lock: {len(seen.acknowledged)} acknowledged rows, {len(seen.lost)} lost")
    assert seen.failures == []  # the race breaks cycles, never a worker as a whole
    if not seen.lost:
        pytest.skip("duckdb lost no commit without our lock under the shim: not sensitive here")
    assert seen.acknowledged


# -- 4. a full disk ---------------------------------------------------------------------------

DISK_ASSETS = """
import numpy as np
import pandas as pd
from vibepiper import asset

@asset
def a_small() -> pd.DataFrame:
    return pd.DataFrame({"x": range(1000)})

@asset
def b_small(a_small: pd.DataFrame) -> pd.DataFrame:
    return a_small.assign(y=a_small.x * 2)

@asset
def c_big(a_small: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(0)  # 16 MB of incompressible doubles
    return pd.DataFrame({"v": rng.random(2_000_000)})

@asset
def d_after(c_big: pd.DataFrame) -> pd.DataFrame:
    return c_big.head(10)

@asset
def e_small(b_small: pd.DataFrame) -> pd.DataFrame:
    return b_small.head(5)
"""

ENOSPC_SHIM = r"""
/* A full disk for some files: write(), pwrite() and pwrite64() to a file whose path starts
 * with $ENOSPC_UNDER and ends with one of the ':'-separated $ENOSPC_SUFFIXES fail with
 * ENOSPC once they would reach past $ENOSPC_AFTER_BYTES bytes into the file. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int matches(const char *path, size_t n, const char *suffixes) {
    char list[1024];
    snprintf(list, sizeof list, "%s", suffixes);
    for (char *s = strtok(list, ":"); s != NULL; s = strtok(NULL, ":")) {
        size_t len = strlen(s);
        if (len <= n && strcmp(path + n - len, s) == 0) return 1;
    }
    return 0;
}

static int full(int fd, size_t count, long long offset) {
    const char *under = getenv("ENOSPC_UNDER");
    const char *suffixes = getenv("ENOSPC_SUFFIXES");
    const char *after = getenv("ENOSPC_AFTER_BYTES");
    char link[64], path[4096];
    if (under == NULL || suffixes == NULL || after == NULL || count == 0) return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = '\0';
    if (strncmp(path, under, strlen(under)) != 0 || !matches(path, (size_t)n, suffixes)) return 0;
    if (offset < 0) offset = lseek(fd, 0, SEEK_CUR);
    return (offset < 0 ? 0 : offset) + (long long)count > atoll(after);
}

#define SHIM(name, params, args, offset)                                        \
    ssize_t name params {                                                       \
        static ssize_t (*real) params;                                          \
        if (!real) real = (ssize_t (*) params)dlsym(RTLD_NEXT, #name);          \
        if (full(fd, count, offset)) { errno = ENOSPC; return -1; }             \
        return real args;                                                       \
    }

SHIM(write, (int fd, const void *buf, size_t count), (fd, buf, count), -1)
SHIM(pwrite, (int fd, const void *buf, size_t count, off_t off), (fd, buf, count, off), off)
SHIM(pwrite64, (int fd, const void *buf, size_t count, off_t off), (fd, buf, count, off), off)
"""


@dataclass
class FullDisk:
    """A project home on which the disk can be made full, and given back."""

    home: Path
    kind: str  # "tmpfs" or "preload"
    shim: Path | None = None
    filler: Path | None = None

    def env(self, full: str = "") -> dict[str, str]:
        """The environment of a command; with the preload shim, `full` says what fails:
        "big" (writes past 1 MB into a store temp file) or "all" (every store and WAL write)."""
        env = {"VIBEPIPER_HOME": str(self.home)}
        if self.kind == "preload" and full:
            assert self.shim is not None
            preload = " ".join(filter(None, [str(self.shim), os.environ.get("LD_PRELOAD")]))
            suffixes, after = {"big": (".tmp", "1000000"), "all": (".tmp:.wal", "0")}[full]
            env |= {
                "LD_PRELOAD": preload,
                "ENOSPC_UNDER": f"{self.home}/",
                "ENOSPC_SUFFIXES": suffixes,
                "ENOSPC_AFTER_BYTES": after,
            }
        return env

    def fill(self) -> None:
        """tmpfs: take every free byte (the preload shim fails writes itself, see env())."""
        if self.kind != "tmpfs":
            return
        self.filler = self.home / "filler"
        chunk = b"\0" * 65536
        with self.filler.open("wb", buffering=0) as out:
            try:
                while True:
                    out.write(chunk)
            except OSError as exc:
                assert exc.errno == 28, exc
        with self.filler.open("ab", buffering=0) as out:  # and the last partial chunk
            try:
                while True:
                    out.write(b"\0" * 512)
            except OSError:
                pass

    def give_back(self) -> None:
        if self.filler is not None:
            self.filler.unlink()
            self.filler = None
        if self.kind == "tmpfs":
            subprocess.run(["mount", "-o", "remount,size=64m", str(self.home)], check=True)


@pytest.fixture(params=["tmpfs", "preload"])
def full_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FullDisk]:
    """A real 8 MiB tmpfs as the project's home (root and a container that allows mounts),
    or an ENOSPC LD_PRELOAD shim built with cc (where a C compiler is installed)."""
    home = tmp_path / "home"
    home.mkdir()
    if request.param == "preload":
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            pytest.skip("no C compiler (cc) to build the ENOSPC LD_PRELOAD shim")
        source = tmp_path / "enospc.c"
        source.write_text(ENOSPC_SHIM)
        shim = tmp_path / "enospc.so"
        subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", "-o", str(shim), str(source), "-ldl"],
            check=True,
            capture_output=True,
        )
        yield FullDisk(home, "preload", shim=shim)
        return
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(home)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"this machine refuses to mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield FullDisk(home, "tmpfs")
    finally:
        if subprocess.run(["umount", str(home)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(home)], capture_output=True)


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def small_assets_published(
    tmp_path: Path, full_disk: FullDisk
) -> tuple[Path, Path, dict[str, str]]:
    """The disk project with its three small assets published while there was room:
    (project, store, the store's file digests)."""
    root = write_project(tmp_path / "proj", {"disk_assets": DISK_ASSETS})
    first = vp(root, "materialize", "a_small", "b_small", "e_small", env=full_disk.env())
    assert first.returncode == 0, first.stdout + first.stderr
    store = full_disk.home / "store"
    return root, store, digests(store)


def test_a_full_disk_mid_run_fails_that_asset_cleanly_and_loses_nothing(
    tmp_path: Path, full_disk: FullDisk
) -> None:
    root, store, before = small_assets_published(tmp_path, full_disk)
    assert len(before) == 3

    full = vp(root, "materialize", env=full_disk.env("big"))

    assert full.returncode == 1, full.stdout + full.stderr
    no_traceback(full)
    assert digests(store) == before  # nothing published was lost or changed
    assert not list(store.glob("**/.*.tmp"))  # the failed writer removed its temp file
    errors = [line for line in full.stderr.splitlines() if line.strip()]
    if errors:  # on the tmpfs, a catalog write that came while c_big filled it: a run error
        assert full_disk.kind == "tmpfs", full.stderr
        assert len(errors) == 1 and errors[0].startswith("error:"), full.stderr
        assert "No space left on device" in errors[0]
        ok_json(vp(root, "query", "select count(*) as n from runs", "--json", env=full_disk.env()))
    else:  # a one-line error for the asset, recorded in the catalog
        failed = [line for line in full.stdout.splitlines() if line.strip().startswith("c_big")]
        assert len(failed) == 1 and "No space left on device" in failed[0], full.stdout
        assert "c_big failed: " in failed[0] and "blocked: d_after" in full.stdout
        check_failure_recorded(root, full_disk)

    full_disk.give_back()
    again = vp(root, "materialize", env=full_disk.env())
    assert again.returncode == 0, again.stdout + again.stderr
    assert {a for a, _ in current_versions(full_disk.home)} == {
        "a_small",
        "b_small",
        "c_big",
        "d_after",
        "e_small",
    }
    for name, version in current_versions(full_disk.home):
        assert stored_problem(store / name / f"{version}.parquet", version) == ""
    assert {k: v for k, v in digests(store).items() if k in before} == before


def check_failure_recorded(root: Path, full_disk: FullDisk) -> None:
    states = ok_json(
        vp(
            root,
            "query",
            "select asset, status, error from materializations "
            "where run_id = (select max(run_id) from runs)",
            "--json",
            env=full_disk.env(),
        )
    )
    by_asset = {r["asset"]: r for r in states}
    assert by_asset["c_big"]["status"] == "failed"
    assert "No space left on device" in by_asset["c_big"]["error"]
    assert by_asset["d_after"]["status"] == "blocked"


def test_a_disk_too_full_for_the_catalog_fails_the_run_cleanly_and_loses_nothing(
    tmp_path: Path, full_disk: FullDisk
) -> None:
    root, store, before = small_assets_published(tmp_path, full_disk)
    versions = current_versions(full_disk.home)

    full_disk.fill()
    full = vp(root, "materialize", "a_small", "b_small", "--force", env=full_disk.env("all"))

    assert full.returncode == 1, full.stdout + full.stderr
    no_traceback(full)
    errors = [line for line in full.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error:"), full.stderr
    assert "No space left on device" in errors[0]
    assert "free some disk space" in errors[0] and "by hand" not in errors[0]
    assert digests(store) == before

    full_disk.give_back()
    opened = vp(root, "query", "select count(*) as n from runs", "--json", env=full_disk.env())
    assert ok_json(opened)[0]["n"] >= 1
    assert current_versions(full_disk.home) == versions  # the catalog kept what it had
    again = vp(root, "materialize", env=full_disk.env())
    assert again.returncode == 0, again.stdout + again.stderr
    runs = Catalog(full_disk.home).fetch("SELECT status FROM runs ORDER BY run_id")
    assert [r["status"] for r in runs][-1] == "succeeded"
    assert "running" not in [r["status"] for r in runs]
    assert {k: v for k, v in digests(store).items() if k in before} == before


# -- 5. doctor ------------------------------------------------------------------------------

DOCTOR_ASSETS = """
import os
import time

import numpy as np
import pandas as pd
from vibepiper import asset, source_file

raw = source_file("raw", "data/raw.csv")


def block(name, seed):
    @asset(name=name)
    def build() -> pd.DataFrame:
        rng = np.random.default_rng(seed)  # 3.2 MB: data pages of about 1 MB
        return pd.DataFrame({"a": rng.random(200_000), "b": rng.random(200_000)})

    return build


BLOCKS = [block(n, i) for i, n in enumerate(["t_trunc", "t_garbage", "t_flip", "t_ok"])]


@asset
def clean(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.dropna().reset_index(drop=True)


@asset
def combined(
    t_trunc: pd.DataFrame, t_garbage: pd.DataFrame, t_flip: pd.DataFrame, t_ok: pd.DataFrame
) -> pd.DataFrame:
    parts = [t_trunc, t_garbage, t_flip, t_ok]
    return pd.DataFrame({"rows": [len(p) for p in parts], "sum": [p.a.sum() for p in parts]})


@asset
def z_sleeper() -> pd.DataFrame:
    if os.environ.get("SLEEPER_MARK"):  # say when it has begun
        open(os.environ["SLEEPER_MARK"], "w").close()
    time.sleep(float(os.environ.get("SLEEPER_SECONDS", "0")))
    return pd.DataFrame({"x": [1]})
"""
DAMAGED = ("t_trunc", "t_garbage", "t_flip")
DEAD_PID = 999_999


@pytest.fixture(scope="module")
def doctor_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A materialized project (all but `z_sleeper`), to copy."""
    root = write_project(
        tmp_path_factory.mktemp("doctor") / "proj",
        {"doctor_assets": DOCTOR_ASSETS},
        {"data/raw.csv": "n\n1\n2\n\n3\n"},
    )
    done = vp(root, "materialize", "--exclude", "z_sleeper")
    assert done.returncode == 0, done.stdout + done.stderr
    return root


@pytest.fixture
def doctor_project(doctor_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(doctor_template, tmp_path / "proj"))


def current_file(root: Path, asset: str) -> Path:
    versions = dict(current_versions(root / ".vibepiper"))
    return root / ".vibepiper" / "store" / asset / f"{versions[asset]}.parquet"


def flip_bytes_mid_page(path: Path) -> None:
    """Invert 64 bytes in the middle of the first column chunk's data pages."""
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(0)
    start = chunk.data_page_offset
    if chunk.has_dictionary_page and chunk.dictionary_page_offset is not None:
        start = min(start, chunk.dictionary_page_offset)
    end = start + chunk.total_compressed_size
    assert end - chunk.data_page_offset > 100_000, "the test wants big data pages"
    offset = (chunk.data_page_offset + end) // 2 - 32
    data = bytearray(path.read_bytes())
    data[offset : offset + 64] = bytes(b ^ 0xFF for b in data[offset : offset + 64])
    path.write_bytes(bytes(data))


def damage(root: Path) -> dict[str, Path]:
    """Truncate one current file, overwrite one with garbage, flip bytes inside one."""
    paths = {name: current_file(root, name) for name in DAMAGED}
    data = paths["t_trunc"].read_bytes()
    paths["t_trunc"].write_bytes(data[: len(data) // 2])
    size = paths["t_garbage"].stat().st_size
    paths["t_garbage"].write_bytes(random.Random(3).randbytes(size))
    flip_bytes_mid_page(paths["t_flip"])
    return paths


def orphan_in(store: Path, asset: str) -> Path:
    """A whole, valid Parquet file that no catalog row refers to."""
    import pyarrow as pa

    table = pa.table({"a": [0.5], "b": [0.25]})
    path = store / asset / f"{table_version(table)}.parquet"
    pq.write_table(table, path)
    return path


def dead_writers_temp(store: Path, asset: str) -> Path:
    from vibepiper.processes import pid_alive

    assert not pid_alive(DEAD_PID), f"process {DEAD_PID} exists here: pick another dead pid"
    path = store / asset / f".x.{DEAD_PID}.tmp"
    path.write_bytes(b"half a parquet file")
    return path


def start_sleeper(root: Path, seconds: float) -> subprocess.Popen[str]:
    """`materialize z_sleeper` computing for `seconds`, once its run row is in the catalog."""
    proc = subprocess.Popen(
        [*VIBEPIPER, "materialize", "z_sleeper"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean_env({"SLEEPER_SECONDS": str(seconds)}),
    )
    wait_until(lambda: running_runs(root / ".vibepiper"), 60, "the z_sleeper's run row")
    return proc


def test_doctor_on_a_healthy_project_exits_0(doctor_project: Path) -> None:
    proc = vp(doctor_project, "doctor", "--json")
    report = ok_json(proc)
    assert report["healthy"] is True and report["findings"] == [], report
    published = len(list((doctor_project / ".vibepiper" / "store").glob("*/*.parquet")))
    assert report["files_checked"] == published == 7


def test_doctor_finds_every_kind_of_damage_and_repairs_it_without_touching_valid_files(
    doctor_project: Path,
) -> None:
    root = doctor_project
    home = root / ".vibepiper"
    store = home / "store"
    versions = dict(current_versions(home))
    damaged = damage(root)
    killed = start_sleeper(root, 120)
    (run_id,) = running_runs(home)
    killed.kill()
    killed.wait(timeout=30)
    orphan = orphan_in(store, "t_ok")
    temp = dead_writers_temp(store, "clean")
    bad_bytes = {name: path.read_bytes() for name, path in damaged.items()}
    untouchable = set(digests(store)) - {
        str(p.relative_to(store)) for p in [*damaged.values(), orphan, temp]
    }
    before = digests(store)

    found = vp(root, "doctor", "--json")
    assert found.returncode == 1, found.stdout + found.stderr
    report = json.loads(found.stdout)
    assert report["healthy"] is False
    kinds = sorted((f["kind"], f["asset"], f["path"]) for f in report["findings"])
    assert kinds == sorted(
        [("corrupt", name, str(path)) for name, path in damaged.items()]
        + [("orphan", "t_ok", str(orphan)), ("temporary", "clean", str(temp))]
        + [("unfinished", None, None)]
    ), report
    (unfinished,) = [f for f in report["findings"] if f["kind"] == "unfinished"]
    assert run_id in unfinished["detail"]
    assert not any(f["repaired"] for f in report["findings"])
    assert digests(store) == before  # looking changes nothing

    quick = vp(root, "doctor", "--quick", "--json")
    assert quick.returncode == 1
    quick_corrupt = {
        f["asset"] for f in json.loads(quick.stdout)["findings"] if f["kind"] == "corrupt"
    }
    assert {"t_trunc", "t_garbage"} <= quick_corrupt  # a footer read catches these two

    repaired = vp(root, "doctor", "--repair", "--json")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr  # nothing left
    report = json.loads(repaired.stdout)
    assert report["healthy"] is True
    assert len(report["findings"]) == 6 and all(f["repaired"] for f in report["findings"])
    for name, path in damaged.items():
        assert not path.exists()
        aside = store / name / "corrupt" / path.name
        assert aside.read_bytes() == bad_bytes[name]  # kept to look at
    assert not orphan.exists() and not temp.exists()
    status = Catalog(home).fetch("SELECT status, finished_at FROM runs WHERE run_id = ?", [run_id])
    assert status[0]["status"] == "abandoned" and status[0]["finished_at"] is not None
    after = digests(store)
    assert {k: after[k] for k in untouchable} == {k: before[k] for k in untouchable}
    assert set(after) == untouchable | {f"{n}/corrupt/{p.name}" for n, p in damaged.items()}

    left = vp(root, "doctor", "--json")  # what is left: the three assets have no data now
    assert left.returncode == 1
    missing = json.loads(left.stdout)["findings"]
    assert sorted((f["kind"], f["asset"]) for f in missing) == [
        ("missing", n) for n in sorted(DAMAGED)
    ]
    stale = {s["name"]: s for s in ok_json(vp(root, "status", "--json"))}
    for name in DAMAGED:
        assert stale[name]["fresh"] is False

    rebuilt = vp(root, "materialize", "--exclude", "z_sleeper")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    states = last_run_states(home)
    assert {n for n, s in states.items() if s == "succeeded"} == set(DAMAGED)
    assert states["combined"] == "skipped"  # same data again: early cutoff
    assert dict(current_versions(home)) == versions
    for name in DAMAGED:
        assert stored_problem(damaged[name], versions[name]) == ""
    final = ok_json(vp(root, "doctor", "--json"))
    assert final["healthy"] and final["findings"] == [], final
    after_run = digests(store)
    assert {k: after_run[k] for k in untouchable} == {k: before[k] for k in untouchable}


def test_doctor_repair_waits_for_a_run_in_progress_and_changes_nothing_meanwhile(
    doctor_project: Path,
) -> None:
    """`doctor --repair` takes the project's run turn: while a run goes on it waits (here
    at most 2 s, then a one-line error naming the run's process) and removes nothing, since
    the run may have published files it has not recorded yet."""
    root = doctor_project
    home = root / ".vibepiper"
    store = home / "store"
    orphan = orphan_in(store, "t_ok")
    run = start_sleeper(root, 60)
    try:
        temp = dead_writers_temp(store, "clean")  # after the run's own clean-up at its start
        (run_id,) = running_runs(home)
        proc = vp(root, "doctor", "--repair", "--json", env={"VIBEPIPER_RUN_TIMEOUT": "2"})
        assert run.poll() is None, "the run ended before doctor looked: the test proves nothing"
        looked = vp(root, "doctor", "--json")  # without --repair it does not wait
    finally:
        run.kill()
        run.wait(timeout=30)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    waiting, line = proc.stderr.strip().splitlines()
    assert waiting.startswith("waiting for the run of process"), waiting
    assert line.startswith("error: the project's runs is locked by process"), line
    assert "materialize" in line
    assert orphan.exists() and temp.exists()  # nothing removed while the run went on
    assert looked.returncode == 1
    assert {f["kind"] for f in json.loads(looked.stdout)["findings"]} >= {"orphan", "temporary"}

    later = vp(root, "doctor", "--repair", "--json")  # the run is gone (killed) now
    assert later.returncode == 0, later.stdout
    assert not orphan.exists() and not temp.exists()
    assert running_runs(home) == []
    assert run_id not in [r for r in running_runs(home)]


# -- 6. a damaged current file is stale, and rebuilt -----------------------------------------


def test_a_truncated_or_garbage_current_file_is_stale_and_rebuilt(doctor_project: Path) -> None:
    root = doctor_project
    home = root / ".vibepiper"
    versions = dict(current_versions(home))
    paths = {name: current_file(root, name) for name in ("t_trunc", "t_garbage")}
    data = paths["t_trunc"].read_bytes()
    paths["t_trunc"].write_bytes(data[: len(data) // 2])
    paths["t_garbage"].write_bytes(random.Random(9).randbytes(paths["t_garbage"].stat().st_size))
    inodes = {name: path.stat().st_ino for name, path in paths.items()}

    status = {s["name"]: s for s in ok_json(vp(root, "status", "--json"))}
    for name in paths:
        assert status[name]["fresh"] is False
        assert "its stored file is damaged" in status[name]["reasons"], status[name]
    assert status["t_ok"]["fresh"] is True

    done = vp(root, "materialize", "--exclude", "z_sleeper")
    assert done.returncode == 0, done.stdout + done.stderr
    states = last_run_states(home)
    assert {n for n, s in states.items() if s == "succeeded"} == set(paths), states
    assert states["combined"] == "skipped"  # the same data again: downstream stays fresh
    assert dict(current_versions(home)) == versions
    for name, path in paths.items():
        assert path.stat().st_ino != inodes[name]  # a new file took the damaged one's place
        assert stored_problem(path, versions[name]) == ""
    status = ok_json(vp(root, "status", "--json"))
    assert [s["name"] for s in status if not s["fresh"] and s["name"] != "z_sleeper"] == []


# -- bugs found by these tests ---------------------------------------------------------------


def test_force_rebuilds_a_current_file_with_flipped_bytes(doctor_project: Path) -> None:
    root = doctor_project
    path = current_file(root, "t_flip")
    version = path.stem
    flip_bytes_mid_page(path)
    broken = vp(root, "materialize", "combined", "--force")
    assert broken.returncode == 1
    assert "re-create it with `vibepiper materialize t_flip --force`" in broken.stdout

    fixed = vp(root, "materialize", "t_flip", "--force")  # as the message says
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert stored_problem(path, version) == ""
    again = vp(root, "materialize", "combined", "--force")
    assert again.returncode == 0, again.stdout


def test_doctor_repair_never_deletes_a_file_a_run_publishes_while_it_scans(
    doctor_project: Path,
) -> None:
    """Deterministic: doctor is stopped (SIGSTOP) inside its scan, as soon as it opens the
    first big file (t_*, scanned before z_sleeper); meanwhile a run that was waiting for the
    project's run lock publishes a new version of z_sleeper and records it; then doctor
    goes on (SIGCONT)."""
    root = doctor_project
    home = root / ".vibepiper"
    assert vp(root, "materialize", "z_sleeper").returncode == 0  # z_sleeper/ holds version 1
    module = root / "doctor_assets.py"
    module.write_text(module.read_text().replace('{"x": [1]}', '{"x": [2]}'))
    big_files = {str(current_file(root, name)) for name in ("t_flip", "t_garbage", "t_ok")}

    holder = subprocess.Popen(
        [sys.executable, str(HELPERS / "hold_lock.py"), str(home / "run.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    procs: list[subprocess.Popen[str]] = [holder]
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        run = subprocess.Popen(
            [*VIBEPIPER, "materialize", "z_sleeper"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        procs.append(run)
        assert run.stderr is not None
        assert "waiting for the run of" in run.stderr.readline()  # loaded, waiting its turn
        doctor = subprocess.Popen(
            [*VIBEPIPER, "doctor", "--repair", "--json"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        procs.append(doctor)
        stopped = stop_when_it_opens(doctor, big_files, timeout=20)
        if not stopped and doctor.poll() is not None:
            pytest.skip("doctor ended before it could be paused inside its scan")
        assert holder.stdin is not None
        holder.stdin.close()  # the run goes: it publishes z_sleeper's new version and ends
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, out + err
        if stopped:
            os.kill(doctor.pid, signal.SIGCONT)
        doctor.communicate(timeout=120)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    sleeper_file = current_file(root, "z_sleeper")
    assert stored_problem(sleeper_file, sleeper_file.stem) == ""


def stop_when_it_opens(proc: subprocess.Popen[str], paths: set[str], timeout: float) -> bool:
    """SIGSTOP `proc` as soon as it has one of `paths` open; False if it never did, or if it
    says it waits for the run in progress (then it cannot be scanning)."""
    deadline = time.monotonic() + timeout
    folder = Path(f"/proc/{proc.pid}/fd")
    while time.monotonic() < deadline and proc.poll() is None:
        assert proc.stderr is not None
        said = select.select([proc.stderr], [], [], 0)[0] and proc.stderr.readline()
        if said and "waiting for the run of" in said:
            return False
        try:
            links = {os.readlink(fd) for fd in folder.iterdir()}
        except OSError:
            links = set()
        if links & paths:
            os.kill(proc.pid, signal.SIGSTOP)
            return True
        time.sleep(0.0005)
    return False


def test_doctor_repair_removes_a_dead_writers_temp_whose_pid_was_reused(
    doctor_project: Path, tmp_path: Path
) -> None:
    store = doctor_project / ".vibepiper" / "store"
    written = store / "clean" / ".x.0.tmp"
    written.write_bytes(b"half a parquet file")  # its writer died a minute ago; then...
    os.utime(written, (time.time() - 60, time.time() - 60))
    other = subprocess.Popen(["sleep", "60"])  # ...another process was given its pid
    try:
        temp = written.rename(store / "clean" / f".x.{other.pid}.tmp")  # (mtime kept)
        report = ok_json(vp(doctor_project, "doctor", "--repair", "--json"))
    finally:
        other.kill()
        other.wait()
    assert report["healthy"]
    assert not temp.exists(), f"left in place, and reported as {report['findings']}"


def test_doctor_repair_abandons_a_dead_run_whose_pid_was_reused(doctor_project: Path) -> None:
    import duckdb

    home = doctor_project / ".vibepiper"
    killed = start_sleeper(doctor_project, 120)
    (run_id,) = running_runs(home)
    killed.kill()
    killed.wait(timeout=30)
    other = subprocess.Popen(["sleep", "60"])  # a process given the dead run's pid, later
    try:
        with duckdb.connect(str(home / "catalog.duckdb")) as con:
            con.execute(
                "UPDATE runs SET pid = ?, started_at = started_at - INTERVAL 60 SECOND "
                "WHERE run_id = ?",
                [other.pid, run_id],
            )
        found = json.loads(vp(doctor_project, "doctor", "--json").stdout)["findings"]
        report = ok_json(vp(doctor_project, "doctor", "--repair", "--json"))
    finally:
        other.kill()
        other.wait()
    assert [(f["kind"], run_id in f["detail"]) for f in found] == [("unfinished", True)]
    assert report["healthy"] and len(report["findings"]) == 1
    status = Catalog(home).fetch("SELECT status FROM runs WHERE run_id = ?", [run_id])
    assert status == [{"status": "abandoned"}]


def test_a_live_writer_is_alive_however_long_ago_it_started() -> None:
    """The other side of pid reuse: a process that started before the moment it is known
    to have existed (its file written, its run started) is the same process."""
    from vibepiper.processes import pid_alive

    other = subprocess.Popen(["sleep", "60"])
    try:
        time.sleep(0.05)
        assert pid_alive(other.pid, since=time.time())
        assert pid_alive(other.pid, since=time.time() - 1)  # within the clocks' margin
        assert not pid_alive(other.pid, since=time.time() - 60)  # started after: reused
        assert pid_alive(other.pid)
    finally:
        other.kill()
        other.wait()
    assert not pid_alive(other.pid, since=time.time())


ZOMBIE_MAKER = """
import os, sys
child = os.fork()
if child == 0:
    os._exit(0)  # the writer dies...
print(child, flush=True)  # ...and its parent does not reap it (like a PID 1 that never does)
sys.stdin.read()
"""


def process_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def test_doctor_repair_removes_the_temp_of_a_writer_that_is_a_zombie(
    doctor_project: Path,
) -> None:
    store = doctor_project / ".vibepiper" / "store"
    parent = subprocess.Popen(
        [sys.executable, "-c", ZOMBIE_MAKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert parent.stdout is not None
        zombie = int(parent.stdout.readline())
        wait_until(lambda: process_state(zombie) == "Z", 30, "the dead writer to be a zombie")
        temp = store / "clean" / f".x.{zombie}.tmp"
        temp.write_bytes(b"half a parquet file")
        report = ok_json(vp(doctor_project, "doctor", "--repair", "--json"))
        assert process_state(zombie) == "Z"  # still dead, still not reaped
    finally:
        assert parent.stdin is not None
        parent.stdin.close()
        parent.wait(timeout=30)
    assert report["healthy"]
    assert not temp.exists(), f"left in place, and reported as {report['findings']}"


def test_workers_of_a_killed_run_end_without_a_traceback(doctor_project: Path) -> None:
    mark = doctor_project / "began"
    log = doctor_project / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*VIBEPIPER, "materialize", "z_sleeper", *EXECUTOR_ARGS["processes"]],
            cwd=doctor_project,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env({"SLEEPER_SECONDS": "1", "SLEEPER_MARK": str(mark)}),
            start_new_session=True,
        )
    try:
        wait_until(mark.exists, 120, "the worker to begin computing z_sleeper")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    wait_for_group(proc.pid)  # the worker goes on with its asset, alone
    assert "Traceback" not in log.read_text(), log.read_text()
