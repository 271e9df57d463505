"""Crash safety: a killed run leaves nothing half-published and is marked abandoned by the
next run, which completes; `materialize` SIGKILLed at random moments (as the OOM killer
would), by either executor, never loses or damages what was published, and
`doctor --repair` plus a normal run always end where an uninterrupted run ends.

Real parts only: real DuckDB catalogs, real Parquet files, the real CLI as subprocesses,
real SIGKILLs.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import catalog_rows, run_cli, start_cli, write_project
from tests.helpers.output import ok_json
from tests.helpers.processes import wait_for_group
from tests.helpers.state import current_versions, stored_problem
from vibepiper.catalog.catalog import Catalog

# -- a killed run ----------------------------------------------------------------------------

SLOW = """
import time
import pandas as pd
from vibepiper import asset

@asset
def first() -> pd.DataFrame:
    return pd.DataFrame({"x": [1]})

@asset
def slow(first: pd.DataFrame) -> pd.DataFrame:
    time.sleep(30)
    return first
"""


def test_a_killed_run_is_marked_abandoned_and_the_next_run_completes(
    project_dir: Callable[..., Path],
) -> None:
    root = project_dir({"slow_assets": SLOW})
    proc = start_cli(root, "materialize")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until `first` is recorded (flushed within ~1 s)
        time.sleep(0.2)
        if (root / ".vibepiper" / "catalog.duckdb").exists() and run_cli(
            root, "query", "--csv", "SELECT status FROM materializations WHERE asset = 'first'"
        ).stdout.strip().endswith("succeeded"):
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert catalog_rows(root, "SELECT status FROM runs") == [("running",)]
    assert not list((root / ".vibepiper" / "store").glob("slow/*.parquet"))

    module = root / "slow_assets.py"
    module.write_text(module.read_text().replace("time.sleep(30)", "time.sleep(0)"))
    done = run_cli(root, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    runs = catalog_rows(root, "SELECT status, finished_at IS NOT NULL FROM runs ORDER BY run_id")
    assert runs == [("abandoned", True), ("succeeded", True)]
    states = dict(
        catalog_rows(
            root,
            "SELECT asset, status FROM materializations "
            "WHERE run_id = (SELECT max(run_id) FROM runs)",
        )
    )
    assert states == {"first": "skipped", "slow": "succeeded"}


# -- crash safety: SIGKILL at random moments ---------------------------------------------

# The project: 3 sources, staging, a regional factory, marts (written into each project).
CRASH_ASSETS = (Path(__file__).parent / "helpers" / "crash_assets.py").read_text()

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
        done = run_cli(root, "materialize", *EXECUTOR_ARGS[executor])
        seconds[executor] = time.monotonic() - started
        assert done.returncode == 0, done.stdout + done.stderr
        current[variant] = frozenset(current_versions(root / ".vibepiper").items())
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
        proc = start_cli(
            root,
            "materialize",
            *EXECUTOR_ARGS[executor],
            stdout=out,
            stderr=subprocess.STDOUT,
            new_session=True,
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
        opened = run_cli(root, "query", "select count(*) as n from runs", "--json")
        # the reference run and each checkpoint's run, at least
        assert ok_json(opened)[0]["n"] >= 1 + tally.checkpoints
    catalog = Catalog(home)
    rows = catalog.fetch(
        "SELECT DISTINCT asset, data_version FROM materializations WHERE status = 'succeeded'"
    )
    recorded = {(r["asset"], r["data_version"]) for r in rows}
    assert current_versions(home).items() <= recorded
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
        repair = run_cli(root, "doctor", "--repair", "--json")
        assert "Traceback" not in repair.stderr, repair.stderr
        report = json.loads(repair.stdout)
        assert (repair.returncode == 0) == report["healthy"], repair.stdout
        # no run of ours is going on: only a pid now given to another process makes doctor
        # think one is, and leave orphans alone
        assert report["healthy"] or "in progress" in report["note"], report
        kinds = Counter(f["kind"] for f in report["findings"])
        tally.findings.update(kinds)
        assert set(kinds) <= {"unfinished", "temporary", "orphan"}, report  # nothing lost
        look = run_cli(root, "doctor", "--json")
        after = json.loads(look.stdout)
        assert {f["kind"] for f in after["findings"]} <= {"unfinished", "temporary", "orphan"}
        if look.returncode == 0 and after["healthy"] and after["findings"] == []:
            break
        tally.left_after_repair.update(f["kind"] for f in after["findings"])
    else:
        raise AssertionError(f"doctor --repair did not converge in 5 repairs: {after}")

    done = run_cli(root, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    home = root / ".vibepiper"
    assert current_versions(home).items() == expected


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


@pytest.mark.slow
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
