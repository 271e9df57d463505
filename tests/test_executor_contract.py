"""The executor contract: the same cases run over every executor (inprocess, threads,
processes, dask). Each executor computes the example's data versions in dependency order;
a failure fails its asset and blocks downstream only; a failed check rejects the output;
what assets log is kept once; retries back off; a timeout fails its asset, blocks
downstream and stops it; Ctrl-C cancels the run cleanly.

Real CLI subprocesses, real catalog and Parquet store, real signals. What is particular to
one executor is elsewhere: test_cancel.py, test_pools.py, test_dask.py,
test_executor_settings.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import EXECUTOR_ARGS, catalog_rows, copy_example, run_cli, write_project
from tests.helpers.cancel import (
    assert_cancelled_cleanly,
    assert_rerun_completes,
)
from tests.helpers.output import one_line_error
from tests.helpers.processes import alive
from tests.helpers.state import (
    assert_store_matches_catalog,
    current_versions,
    home_of,
    last_run,
    read_asset,
    states,
)

# Dask starts a local cluster for each run: seconds more per case.
EXECUTORS = ["inprocess", "threads", "processes", pytest.param("dask", marks=pytest.mark.slow)]


def project(root: Path, source: str, tool: str = "", module: str = "exec_assets") -> Path:
    return write_project(root, {module: source}, tool=tool)


def materialize(root: Path, executor: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(root, "materialize", *args, *EXECUTOR_ARGS[executor], timeout=120)


# -- the same data versions, in dependency order -------------------------------------------


@pytest.fixture(scope="module")
def example_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The example project computed in-process, and asset -> data version."""
    root = copy_example(tmp_path_factory.mktemp("example_inprocess"))
    done = materialize(root, "inprocess")
    assert done.returncode == 0, done.stdout + done.stderr
    versions = current_versions(home_of(root))
    assert len(versions) == 10
    return root, versions


@pytest.mark.parametrize("executor", EXECUTORS)
def test_the_example_gets_the_same_data_versions_in_dependency_order(
    executor: str, tmp_path: Path, example_reference: tuple[Path, dict[str, str]]
) -> None:
    reference_root, reference = example_reference
    if executor == "inprocess":
        root = reference_root  # the reference run is the in-process case
    else:
        root = copy_example(tmp_path)
        done = materialize(root, executor)
        assert done.returncode == 0, done.stdout + done.stderr
        assert current_versions(home_of(root)) == reference
    assert set(states(root).values()) == {("succeeded", None)}
    assert_store_matches_catalog(root)
    # every asset started after each of its inputs had finished
    edges = catalog_rows(
        root,
        "SELECT d.asset, u.asset, u.finished_at <= d.started_at FROM lineage l "
        "JOIN materializations d USING (materialization_id) "
        "JOIN materializations u ON u.asset = l.upstream_asset AND u.run_id = d.run_id",
    )
    assert edges, "the example has dependencies"
    assert [(down, up) for down, up, in_order in edges if not in_order] == []


# -- a failure, and a failed check ----------------------------------------------------------

FAILING = """
import pandas as pd
from vibepiper import asset, expect


@asset
def broken() -> pd.DataFrame:
    raise ValueError("broken on purpose")


@asset
def after_broken(broken: pd.DataFrame) -> pd.DataFrame:
    return broken


@asset(checks=[expect.row_count(min=5)])
def short() -> pd.DataFrame:
    return pd.DataFrame({"x": [1, 2, 3]})


@asset
def after_short(short: pd.DataFrame) -> pd.DataFrame:
    return short


@asset
def fine() -> pd.DataFrame:
    return pd.DataFrame({"y": [1]})


@asset
def also_fine(fine: pd.DataFrame) -> pd.DataFrame:
    return fine.assign(z=2)
"""


@pytest.fixture(scope="module")
def failing_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A project with a failing asset and a failing check, run once by the param's executor."""
    executor = request.param
    root = project(tmp_path_factory.mktemp(f"failing_{executor}") / "proj", FAILING)
    return root, materialize(root, executor)


@pytest.mark.parametrize("failing_run", EXECUTORS, indirect=True)
def test_a_failure_fails_its_asset_and_blocks_only_its_downstream(
    failing_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    root, done = failing_run
    assert done.returncode == 1, done.stdout + done.stderr  # SPEC §4: something failed
    found = states(root)
    assert found["broken"][0] == "failed"
    assert "ValueError: broken on purpose" in str(found["broken"][1])
    assert found["after_broken"] == ("blocked", "blocked: upstream broken failed")
    assert found["fine"] == ("succeeded", None)
    assert found["also_fine"] == ("succeeded", None)
    assert "broken failed: ValueError: broken on purpose" in done.stdout
    assert set(current_versions(home_of(root))) == {"fine", "also_fine"}
    assert_store_matches_catalog(root)


@pytest.mark.parametrize("failing_run", EXECUTORS, indirect=True)
def test_a_failed_check_rejects_the_output_and_blocks_downstream(
    failing_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    root, done = failing_run
    found = states(root)
    assert found["short"] == ("check_failed", "failed checks: row_count")
    assert found["after_short"] == ("blocked", "blocked: upstream short check failed")
    assert "row_count [error]: 3 rows, expected at least 5" in done.stdout
    assert "short" not in current_versions(home_of(root))  # not published...
    rejected = run_cli(root, "show", "short", "--rejected", "--json")
    assert rejected.returncode == 0, rejected.stderr
    assert json.loads(rejected.stdout) == [{"x": 1}, {"x": 2}, {"x": 3}]  # ...but kept aside
    checks = catalog_rows(root, "SELECT check_name, severity, passed FROM check_results")
    assert checks == [("row_count", "error", False)]


# -- logs ------------------------------------------------------------------------------------

TALKERS = """
import logging

import pandas as pd
from vibepiper import asset


@asset
def talker(context) -> pd.DataFrame:
    context.log.info("talker says hello %d", 1)
    logging.getLogger("mylib").info("mylib line from talker")
    context.log.warning("talker warns")
    return pd.DataFrame({"x": [1]})


@asset
def other_asset(context) -> pd.DataFrame:
    context.log.info("other_asset says hi")
    return pd.DataFrame({"y": [1]})
"""


@pytest.fixture(scope="module")
def logged_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A project whose assets log, materialized with the executor named by the param."""
    executor = request.param
    root = project(tmp_path_factory.mktemp(f"logs_{executor}") / "proj", TALKERS)
    done = run_cli(root, "materialize", *EXECUTOR_ARGS[executor])
    assert done.returncode == 0, done.stdout + done.stderr
    return root, done


EXECUTORS3 = ["inprocess", "threads", "processes"]


@pytest.mark.parametrize("logged_run", EXECUTORS, indirect=True)
def test_context_log_lines_are_kept_and_shown_once(
    logged_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    root, done = logged_run
    shown = run_cli(root, "logs", "latest", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    mine = [
        (r["asset"], r["level"], r["logger"], r["message"])
        for r in rows
        if r["logger"].startswith("vibepiper.asset.")
    ]
    assert sorted(mine) == sorted(
        [
            ("talker", "INFO", "vibepiper.asset.talker", "talker says hello 1"),
            ("talker", "WARNING", "vibepiper.asset.talker", "talker warns"),
            ("other_asset", "INFO", "vibepiper.asset.other_asset", "other_asset says hi"),
        ]
    )
    assert all(set(r) >= {"logged_at", "asset", "level", "logger", "message"} for r in rows)
    # The console of `materialize` shows each line once, whichever process logged it.
    for line in ["talker | talker says hello 1", "talker | talker warns", "other_asset says hi"]:
        assert done.stderr.count(line) == 1, done.stderr
    # The catalog table holds them with the run and materialization they belong to.
    run_id = last_run(root)[0]
    table = catalog_rows(
        root,
        "SELECT l.asset, m.asset, l.seq FROM logs l JOIN materializations m "
        "USING (materialization_id) WHERE l.run_id = ? AND l.logger LIKE 'vibepiper.asset.%' "
        "ORDER BY l.asset, l.seq",
        [run_id],
    )
    assert [(a, m) for a, m, _ in table] == [
        ("other_asset", "other_asset"),
        ("talker", "talker"),
        ("talker", "talker"),
    ]


@pytest.mark.parametrize(
    "logged_run",
    EXECUTORS,
    indirect=True,
)
def test_lines_of_other_loggers_in_the_asset_are_kept(
    logged_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    root, _ = logged_run
    rows = catalog_rows(root, "SELECT asset, level, message FROM logs WHERE logger = 'mylib'")
    assert rows == [("talker", "INFO", "mylib line from talker")]


@pytest.mark.parametrize("logged_run", ["inprocess"], indirect=True)
def test_logs_filter_by_asset_and_reject_unknown_runs(
    logged_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    root, _ = logged_run
    run_id = last_run(root)[0]
    only = run_cli(root, "logs", "latest", "other_asset")
    assert only.returncode == 0, only.stderr
    assert only.stdout.strip().splitlines() and all(
        " other_asset | " in line for line in only.stdout.strip().splitlines()
    )
    assert "other_asset says hi" in only.stdout
    assert "talker" not in only.stdout
    by_prefix = run_cli(root, "logs", run_id[:10], "talker", "--json")
    assert by_prefix.returncode == 0, by_prefix.stderr
    assert {r["asset"] for r in json.loads(by_prefix.stdout)} == {"talker"}

    one_line_error(run_cli(root, "logs", "nosuchrun"), "nosuchrun")
    one_line_error(run_cli(root, "logs", "latest", "nosuch_asset"), "nosuch_asset")


BASIC_CONFIG = """
import logging

import pandas as pd
from vibepiper import asset

logging.basicConfig(level=logging.WARNING)


@asset
def configured(context) -> pd.DataFrame:
    context.log.info("configured says hello")
    return pd.DataFrame({"x": [1]})
"""


@pytest.mark.parametrize("executor", EXECUTORS)
def test_context_log_info_survives_a_project_logging_config(executor: str, tmp_path: Path) -> None:
    root = project(tmp_path / "proj", BASIC_CONFIG)
    done = materialize(root, executor)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = catalog_rows(root, "SELECT asset, message FROM logs WHERE level = 'INFO'")
    assert rows == [("configured", "configured says hello")]


# -- retries -------------------------------------------------------------------------------

FLAKY = """
import time
from pathlib import Path

import pandas as pd
from vibepiper import asset

HERE = Path(__file__).parent


def attempt(name):
    # one line per attempt, with its time: the test counts them and checks the backoff
    with open(HERE / f"{name}.attempts", "a") as out:
        out.write(f"{time.time()}\\n")
    return len((HERE / f"{name}.attempts").read_text().split())


@asset(retries=2, retry_delay=0.2)
def flaky() -> pd.DataFrame:
    n = attempt("flaky")
    if n < 3:
        raise RuntimeError(f"flaky attempt {n} broke")
    return pd.DataFrame({"attempt": [n]})


@asset(retries=1, retry_delay=0.05)
def hopeless() -> pd.DataFrame:
    raise ValueError(f"hopeless attempt {attempt('hopeless')} broke")
"""


@pytest.mark.parametrize("executor", EXECUTORS)
def test_retries_with_backoff_are_counted_and_logged(executor: str, tmp_path: Path) -> None:
    root = project(tmp_path / "proj", FLAKY)
    done = materialize(root, executor)
    assert done.returncode == 1, done.stdout + done.stderr  # hopeless fails

    rows = catalog_rows(
        root,
        "SELECT asset, status, attempts, error, "
        "date_diff('millisecond', started_at, finished_at) / 1000.0 FROM materializations",
    )
    found = {row[0]: row[1:] for row in rows}
    flaky, hopeless = found["flaky"], found["hopeless"]
    assert flaky[:2] == ("succeeded", 3)
    assert hopeless[:2] == ("failed", 2)
    assert "ValueError: hopeless attempt 2 broke" in hopeless[2]
    assert read_asset(root, "flaky")["attempt"].tolist() == [3]

    # Exponential backoff: 0.2 s after the first failure, 0.4 s after the second.
    times = [float(t) for t in (root / "flaky.attempts").read_text().split()]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.2
    assert times[2] - times[1] >= 0.4
    assert flaky[3] >= 0.6
    assert len((root / "hopeless.attempts").read_text().split()) == 2

    warnings = catalog_rows(
        root,
        "SELECT asset, message FROM logs WHERE level = 'WARNING' ORDER BY asset, logged_at",
    )
    assert warnings == [
        ("flaky", "attempt 1 of 3 failed: RuntimeError: flaky attempt 1 broke; retrying in 0.2 s"),
        ("flaky", "attempt 2 of 3 failed: RuntimeError: flaky attempt 2 broke; retrying in 0.4 s"),
        (
            "hopeless",
            "attempt 1 of 2 failed: ValueError: hopeless attempt 1 broke; retrying in 0.05 s",
        ),
    ]
    shown = run_cli(root, "logs", "latest", "flaky")
    assert shown.returncode == 0, shown.stderr
    failed = [line for line in shown.stdout.splitlines() if "failed" in line]
    assert len(failed) == 2
    for n, line in enumerate(failed, start=1):
        assert f"WARNING flaky | attempt {n} of 3 failed: RuntimeError" in line
    assert "hopeless" not in shown.stdout


# -- timeouts ------------------------------------------------------------------------------

SLEEPY = """
import os
import time
from pathlib import Path

import pandas as pd
from vibepiper import asset

HERE = Path(__file__).parent


@asset
def warm_up() -> pd.DataFrame:
    return pd.DataFrame({"w": [1]})


@asset(timeout=1)
def sleepy(warm_up: pd.DataFrame, context) -> pd.DataFrame:
    (HERE / "sleepy.pid").write_text(str(os.getpid()))
    context.log.info("sleepy starts its long nap")
    time.sleep(600)
    (HERE / "sleepy.woke").touch()
    return pd.DataFrame({"x": [1]})


@asset
def after_sleepy(sleepy: pd.DataFrame) -> pd.DataFrame:
    return sleepy


@asset
def independent() -> pd.DataFrame:
    return pd.DataFrame({"y": [1, 2]})
"""


# One process worker, warmed up by `warm_up`: a fresh worker's start counts against the
# timeout (see test_a_timeout_counts_the_asset_not_the_worker_start), and on a busy machine
# it alone can take a second. Two threads: a timed-out asset's thread keeps its slot until
# its function returns.
TIMEOUT_ARGS = {**EXECUTOR_ARGS, "processes": ["--executor", "processes", "--workers", "1"]}


@dataclass(frozen=True)
class TimedOutRun:
    executor: str
    root: Path
    done: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def timed_out_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> TimedOutRun:
    """The SLEEPY project, whose `sleepy` times out, run once by the param's executor."""
    executor = request.param
    root = project(tmp_path_factory.mktemp(f"timeout_{executor}") / "proj", SLEEPY)
    done = run_cli(root, "materialize", *TIMEOUT_ARGS[executor], timeout=300)
    return TimedOutRun(executor, root, done)


@pytest.mark.parametrize("timed_out_run", EXECUTORS, indirect=True)
def test_a_timed_out_asset_fails_blocks_downstream_and_is_stopped(
    timed_out_run: TimedOutRun,
) -> None:
    executor, root, done = timed_out_run.executor, timed_out_run.root, timed_out_run.done
    assert done.returncode == 1, done.stdout + done.stderr
    assert not (root / "sleepy.woke").exists()  # the run did not wait out its 600 s nap

    found = states(root)
    assert found["sleepy"][0] == "failed"
    assert found["sleepy"][1].startswith("timed out after 1 s")
    assert found["after_sleepy"] == ("blocked", "blocked: upstream sleepy failed")
    assert found["independent"] == ("succeeded", None)
    assert found["warm_up"] == ("succeeded", None)
    assert "sleepy" not in current_versions(home_of(root))
    assert not list((root / ".vibepiper" / "store").glob("sleepy/*.parquet"))
    assert_store_matches_catalog(root)
    (attempts,) = catalog_rows(root, "SELECT attempts FROM materializations WHERE asset = 'sleepy'")
    assert attempts == (1,)  # the function was called (and stopped)

    pid = int((root / "sleepy.pid").read_text())
    cli_pid = last_run(root)[2]
    if executor in ("processes", "dask"):
        assert pid != cli_pid  # it slept in a worker process...
    else:
        assert pid == cli_pid
    assert not alive(pid)  # ...which is gone now, as is the command


@pytest.mark.parametrize(
    "timed_out_run",
    [
        "inprocess",
        "threads",
        "processes",
        pytest.param("dask", marks=pytest.mark.slow),
    ],
    indirect=True,
)
def test_a_timed_out_asset_keeps_what_it_logged(timed_out_run: TimedOutRun) -> None:
    root, done = timed_out_run.root, timed_out_run.done
    assert done.returncode == 1, done.stdout + done.stderr
    assert states(root)["sleepy"][1].startswith("timed out after 1 s")
    rows = catalog_rows(root, "SELECT level, message FROM logs WHERE asset = 'sleepy'")
    assert ("INFO", "sleepy starts its long nap") in rows


SLOW_IMPORT = """
import time

import pandas as pd
from vibepiper import asset

time.sleep(1.5)  # a heavy import


@asset(timeout=1)
def instant() -> pd.DataFrame:
    return pd.DataFrame({"x": [1]})
"""


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_timeout_counts_the_asset_not_the_worker_start(executor: str, tmp_path: Path) -> None:
    root = project(tmp_path / "proj", SLOW_IMPORT)
    done = materialize(root, executor)
    assert done.returncode == 0, done.stdout + done.stderr
    assert states(root)["instant"] == ("succeeded", None)


# -- cancel ---------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_ctrl_c_cancels_the_run(
    executor: str,
    cancellable: Path,
    materializing: Callable[[str], subprocess.Popen[str]],
) -> None:
    """A terminal's Ctrl-C: SIGINT to the whole process group."""
    proc = materializing(executor)
    slow_pid = int((cancellable / "slow.pid").read_text())
    os.killpg(proc.pid, signal.SIGINT)
    if executor == "threads":
        # A thread cannot be stopped: the run waits for it, then throws its output away.
        time.sleep(1.0)
        assert proc.poll() is None, proc.communicate()
        (cancellable / "release").touch()
    out, err = proc.communicate(timeout=300)  # `slow` waits 600 s unless released
    assert proc.returncode == 130, out + err
    assert "cancelling" in err
    assert "cancelled" in out
    assert_cancelled_cleanly(cancellable)
    if executor in ("processes", "dask"):
        assert slow_pid != proc.pid
        assert not alive(slow_pid)
    assert_rerun_completes(cancellable)
