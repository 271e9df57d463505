"""Executors end to end: inprocess, threads, processes and dask compute the same data;
retries, timeouts, pools, cancellation by signals, the `logs` and `runs` commands, and the
executor settings. Real CLI subprocesses, real catalog and Parquet store, real signals."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from .conftest import VIBEPIPER, catalog_rows, copy_example, run_cli, write_project

HELPERS = Path(__file__).parent / "helpers"

# -- helpers --------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie nobody reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Assert exit code 2 with a single `error: ...` line on stderr naming `words`."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def last_run(root: Path) -> tuple[str, str, int]:
    """(run_id, status, pid) of the latest run."""
    rows = catalog_rows(
        root, "SELECT run_id, status, pid FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1"
    )
    return rows[0]


def states(root: Path, run_id: str | None = None) -> dict[str, tuple[str, str | None]]:
    """asset -> (status, error) in a run (default: the latest)."""
    run_id = run_id or last_run(root)[0]
    rows = catalog_rows(
        root, "SELECT asset, status, error FROM materializations WHERE run_id = ?", [run_id]
    )
    return {asset: (status, error) for asset, status, error in rows}


def current_versions(root: Path) -> set[tuple[str, str]]:
    return set(catalog_rows(root, "SELECT asset, data_version FROM current_materializations"))


def assert_store_matches_catalog(root: Path) -> None:
    """Each current materialization's file exists and reads; every published (non-temp)
    file in the store is one the catalog recorded as succeeded."""
    store = root / ".vibepiper" / "store"
    for asset, version in current_versions(root):
        path = store / asset / f"{version}.parquet"
        assert path.is_file(), path
        pq.read_table(path)
    known = set(
        catalog_rows(
            root, "SELECT asset, data_version FROM materializations WHERE status = 'succeeded'"
        )
    )
    published = {
        (p.parent.name, p.stem) for p in store.glob("*/*.parquet") if not p.name.startswith(".")
    }
    assert published <= known, published - known


def read_asset(root: Path, asset: str) -> Any:
    """An asset's current data, straight from its Parquet file."""
    [(version,)] = catalog_rows(
        root, "SELECT data_version FROM current_materializations WHERE asset = ?", [asset]
    )
    return pq.read_table(root / ".vibepiper" / "store" / asset / f"{version}.parquet").to_pandas()


def max_overlap(intervals: list[tuple[Any, Any]]) -> int:
    """The most intervals open at one moment (an end before a start at the same time)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"gave up waiting for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(proc: subprocess.Popen[Any]) -> None:
    """Kill a process started with start_new_session=True and whatever is left of its
    group (its children: a forkserver, Dask nannies and their workers)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def project(root: Path, source: str, tool: str = "", module: str = "exec_assets") -> Path:
    return write_project(root, {module: source}, tool=tool)


# -- 1. the same data versions with every executor ---------------------------------------

EXECUTOR_ARGS = {
    "inprocess": ["--executor", "inprocess"],
    "threads": ["--workers", "2"],  # --workers alone (N > 1) means threads
    "processes": ["--executor", "processes", "--workers", "2"],
    "dask": ["--executor", "dask", "--workers", "2"],
}


@pytest.fixture(scope="module")
def example_reference(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    """(asset, data version) of the example project computed in-process."""
    root = copy_example(tmp_path_factory.mktemp("example_inprocess"))
    done = run_cli(root, "materialize", *EXECUTOR_ARGS["inprocess"])
    assert done.returncode == 0, done.stdout + done.stderr
    versions = current_versions(root)
    assert len(versions) == 10
    return versions


@pytest.mark.parametrize(
    "executor",
    ["threads", "processes", pytest.param("dask", marks=pytest.mark.slow)],
)
def test_every_executor_makes_the_same_data_versions_of_the_example(
    executor: str, tmp_path: Path, example_reference: set[tuple[str, str]]
) -> None:
    root = copy_example(tmp_path)
    done = run_cli(root, "materialize", *EXECUTOR_ARGS[executor])
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(states(root).values()) == {("succeeded", None)}
    assert current_versions(root) == example_reference
    assert_store_matches_catalog(root)


@pytest.mark.slow
def test_an_external_dask_cluster_makes_the_same_data_versions(
    tmp_path: Path, example_reference: set[tuple[str, str]]
) -> None:
    root = copy_example(tmp_path / "proj")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    started: list[subprocess.Popen[bytes]] = []

    def launch(name: str, *args: str) -> None:
        with (logs / f"{name}.log").open("wb") as out:
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", *args],
                    cwd=tmp_path,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    try:
        launch(
            "scheduler",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        )
        for n in range(2):
            launch(
                f"worker{n}",
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--no-dashboard",
                "--local-directory",
                str(tmp_path / f"worker{n}"),
            )
        ready = subprocess.run(
            [sys.executable, str(HELPERS / "exec_dask_client.py"), address, "wait", "2"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ready.returncode == 0, ready.stderr + "".join(p.read_text() for p in logs.iterdir())
        done = run_cli(root, "materialize", "--address", address)
        assert done.returncode == 0, done.stdout + done.stderr
        assert current_versions(root) == example_reference
        assert_store_matches_catalog(root)
        # The assets were computed on that cluster: its workers imported the project.
        asked = subprocess.run(
            [
                sys.executable,
                str(HELPERS / "exec_dask_client.py"),
                address,
                "imported",
                "assets_example.marts",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert asked.returncode == 0, asked.stderr
        assert True in json.loads(asked.stdout)
    finally:
        for proc in reversed(started):
            stop(proc)


@pytest.mark.slow  # the Dask client tries to connect for 10 s before it gives up
def test_address_of_a_closed_port_is_a_one_line_error(shop: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_cli(shop, "materialize", "--address", address)
    one_line_error(result, "cannot reach the Dask scheduler", address)
    assert time.monotonic() - started < 60
    assert not (shop / ".vibepiper" / "catalog.duckdb").exists() or not catalog_rows(
        shop, "SELECT * FROM runs"
    )


def test_address_with_another_executor_is_a_usage_error(shop: Path) -> None:
    result = run_cli(shop, "materialize", "--executor", "processes", "--address", "tcp://1.2.3.4:1")
    one_line_error(result, "--address", "processes")


def test_a_malformed_address_is_a_one_line_error(shop: Path) -> None:
    result = run_cli(shop, "materialize", "--address", "tcp://127.0.0.1", timeout=60)
    one_line_error(result, "tcp://127.0.0.1")


# -- 2. retries --------------------------------------------------------------------------

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


@pytest.mark.parametrize("executor", ["inprocess", "processes"])
def test_retries_with_backoff_are_counted_and_logged(executor: str, tmp_path: Path) -> None:
    root = project(tmp_path / "proj", FLAKY)
    extra = ["--workers", "2"] if executor == "processes" else []
    done = run_cli(root, "materialize", "--executor", executor, *extra)
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


# -- 3. timeouts -------------------------------------------------------------------------

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
    time.sleep(30)
    return pd.DataFrame({"x": [1]})


@asset
def after_sleepy(sleepy: pd.DataFrame) -> pd.DataFrame:
    return sleepy


@asset
def independent() -> pd.DataFrame:
    return pd.DataFrame({"y": [1, 2]})
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--executor", "inprocess"],
        # One worker, warmed up by `warm_up`: a fresh worker's start counts against the
        # timeout (see test_a_timeout_counts_the_asset_not_the_worker_start), and on a busy
        # machine it alone can take a second.
        ["--executor", "processes", "--workers", "1"],
        # Two threads: a timed-out asset's thread keeps its slot until its function returns.
        ["--executor", "threads", "--workers", "2"],
    ],
    ids=["inprocess", "processes", "threads"],
)
def test_a_timed_out_asset_fails_blocks_downstream_and_is_stopped(
    args: list[str], tmp_path: Path
) -> None:
    root = project(tmp_path / "proj", SLEEPY)
    started = time.monotonic()
    done = run_cli(root, "materialize", *args, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert elapsed < 15, elapsed

    found = states(root)
    assert found["sleepy"][0] == "failed"
    assert found["sleepy"][1].startswith("timed out after 1 s")
    assert found["after_sleepy"] == ("blocked", "blocked: upstream sleepy failed")
    assert found["independent"] == ("succeeded", None)
    assert found["warm_up"] == ("succeeded", None)
    assert "sleepy" not in {asset for asset, _ in current_versions(root)}
    assert not list((root / ".vibepiper" / "store").glob("sleepy/*.parquet"))
    assert_store_matches_catalog(root)
    (attempts,) = catalog_rows(root, "SELECT attempts FROM materializations WHERE asset = 'sleepy'")
    assert attempts == (1,)  # the function was called (and stopped)

    pid = int((root / "sleepy.pid").read_text())
    cli_pid = last_run(root)[2]
    if args[1] == "processes":
        assert pid != cli_pid  # it slept in a worker process...
    else:
        assert pid == cli_pid
    assert not alive(pid)  # ...which is gone now, as is the command


RETRIED_THEN_SLEEPY = """
import time

import pandas as pd
from vibepiper import asset


@asset(timeout=1, retries=2, retry_delay=0.01)
def second_try_sleeps(context) -> pd.DataFrame:
    if context.attempt == 1:
        raise RuntimeError("the first try fails at once")
    time.sleep(30)
    return pd.DataFrame({"x": [1]})
"""


def test_an_asset_timed_out_in_its_second_attempt_records_two_attempts(tmp_path: Path) -> None:
    root = project(tmp_path / "proj", RETRIED_THEN_SLEEPY)
    done = run_cli(root, "materialize", "--executor", "inprocess", timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = catalog_rows(root, "SELECT status, error, attempts FROM materializations")
    assert [(status, attempts) for status, _, attempts in rows] == [("failed", 2)]
    assert rows[0][1].startswith("timed out after 1 s")


@pytest.mark.parametrize(
    "executor",
    [
        "inprocess",
        "threads",
        "processes",
    ],
)
def test_a_timed_out_asset_keeps_what_it_logged(executor: str, tmp_path: Path) -> None:
    root = project(tmp_path / "proj", SLEEPY)
    done = run_cli(root, "materialize", "+sleepy", *RUN_ARGS[executor], timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert states(root)["sleepy"][1].startswith("timed out after 1 s")
    rows = catalog_rows(root, "SELECT level, message FROM logs WHERE asset = 'sleepy'")
    assert ("INFO", "sleepy starts its long nap") in rows


# -- 4. pools ----------------------------------------------------------------------------

POOLED = """
import os
import time

import pandas as pd
from vibepiper import asset


def pooled(i):
    @asset(name=f"load_{i}", pool="warehouse")
    def load() -> pd.DataFrame:
        start = time.time()
        time.sleep(0.3)
        return pd.DataFrame({"start": [start], "end": [time.time()], "pid": [os.getpid()]})

    return load


LOADS = [pooled(i) for i in range(6)]
"""


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_a_pool_caps_how_many_of_its_assets_run_at_once(executor: str, tmp_path: Path) -> None:
    root = project(tmp_path / "proj", POOLED, tool="\n[tool.vibepiper.pools]\nwarehouse = 2\n")
    done = run_cli(root, "materialize", "--executor", executor, "--workers", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    recorded = catalog_rows(
        root, "SELECT started_at, finished_at FROM materializations WHERE status = 'succeeded'"
    )
    assert len(recorded) == 6
    assert max_overlap(recorded) == 2
    # What the assets themselves saw agrees: never more than two computing at once.
    frames = [read_asset(root, f"load_{i}") for i in range(6)]
    own = [(float(f["start"][0]), float(f["end"][0])) for f in frames]
    assert max_overlap(own) == 2
    pids = {int(f["pid"][0]) for f in frames}
    assert (last_run(root)[2] in pids) == (executor == "threads")


def test_an_asset_in_an_undefined_pool_is_a_one_line_error(tmp_path: Path) -> None:
    root = project(tmp_path / "proj", POOLED, tool="\n[tool.vibepiper.pools]\nother = 2\n")
    result = run_cli(root, "materialize", "--workers", "2")
    one_line_error(result, "load_0", "'warehouse'")
    assert not list((root / ".vibepiper" / "store").glob("*/*.parquet"))


POOL_HOG = """
import time
from pathlib import Path

import pandas as pd
from vibepiper import asset

HERE = Path(__file__).parent


@asset(pool="warehouse", timeout=1)
def hog() -> pd.DataFrame:
    (HERE / "hog.start").write_text(str(time.time()))
    time.sleep(3)  # a thread cannot be stopped: it holds its connection for 3 s
    return pd.DataFrame({"x": [1]})


@asset
def gate() -> pd.DataFrame:
    return pd.DataFrame({"g": [1]})


@asset(pool="warehouse")
def light(gate: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"start": [time.time()]})
"""


def test_a_timed_out_thread_keeps_its_pool_slot(tmp_path: Path) -> None:
    root = project(tmp_path / "proj", POOL_HOG, tool="\n[tool.vibepiper.pools]\nwarehouse = 1\n")
    done = run_cli(root, "materialize", "--executor", "threads", "--workers", "3")
    assert done.returncode == 1, done.stdout + done.stderr
    assert states(root)["hog"][1].startswith("timed out after 1 s")
    hog_start = float((root / "hog.start").read_text())
    light_start = float(read_asset(root, "light")["start"][0])
    assert light_start >= hog_start + 3  # not while hog's thread still sleeps


# -- 5. cancellation ---------------------------------------------------------------------

CANCELLABLE = """
import os
import time
from pathlib import Path

import pandas as pd
from vibepiper import asset

HERE = Path(__file__).parent


def wait_for_release():
    end = time.monotonic() + 30
    while not (HERE / "release").exists() and time.monotonic() < end:
        time.sleep(0.05)


@asset
def first() -> pd.DataFrame:
    return pd.DataFrame({"x": [1, 2, 3]})


@asset
def slow(first: pd.DataFrame) -> pd.DataFrame:
    try:
        (HERE / "slow.pid").write_text(str(os.getpid()))
        wait_for_release()
    except BaseException:
        if (HERE / "stubborn").exists():  # ignores being interrupted once
            wait_for_release()
        raise
    return first.assign(y=1)


@asset
def last(slow: pd.DataFrame) -> pd.DataFrame:
    return slow
"""

RUN_ARGS = {
    "inprocess": ["--executor", "inprocess"],
    "threads": ["--executor", "threads", "--workers", "2"],
    "processes": ["--executor", "processes", "--workers", "2"],
    "dask": ["--executor", "dask", "--workers", "1"],
}


@pytest.fixture
def cancellable(tmp_path: Path) -> Path:
    return project(tmp_path / "proj", CANCELLABLE)


@pytest.fixture
def materializing(cancellable: Path) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    """Start `vibepiper materialize` (its own session) and return once `first` is recorded
    as succeeded in the catalog and `slow` is computing; killed at the end if still alive."""
    started: list[subprocess.Popen[str]] = []

    def start(executor: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [*VIBEPIPER, "materialize", *RUN_ARGS[executor]],
            cwd=cancellable,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append(proc)

        def first_done() -> bool:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"materialize ended early ({proc.returncode}): {out}{err}")
            if not (cancellable / ".vibepiper" / "catalog.duckdb").exists():
                return False
            runs = run_cli(cancellable, "runs", "--json")
            assert runs.returncode == 0, runs.stderr
            rows = json.loads(runs.stdout)
            # (the counts are null until the run's first assets are recorded)
            return bool(rows) and rows[0]["status"] == "running" and bool(rows[0]["succeeded"])

        wait_for(first_done, 60, "`first` to be recorded as succeeded")
        wait_for((cancellable / "slow.pid").exists, 30, "`slow` to start")
        return proc

    yield start
    for proc in started:
        stop(proc)


def assert_cancelled_cleanly(root: Path) -> None:
    run_id, status, _ = last_run(root)
    assert status == "cancelled"
    assert states(root, run_id) == {
        "first": ("succeeded", None),
        "slow": ("failed", "cancelled"),
        "last": ("blocked", "not run: the run was cancelled"),
    }
    store = root / ".vibepiper" / "store"
    assert not [p for p in store.glob("slow/**/*") if p.is_file()]
    assert not (store / "last").exists()
    assert_store_matches_catalog(root)
    doctor = run_cli(root, "doctor", "--json")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert json.loads(doctor.stdout)["healthy"] is True


def assert_rerun_completes(root: Path) -> None:
    (root / "release").touch()
    again = run_cli(root, "materialize")
    assert again.returncode == 0, again.stdout + again.stderr
    assert {a: s for a, (s, _) in states(root).items()} == {
        "first": "skipped",
        "slow": "succeeded",
        "last": "succeeded",
    }
    assert_store_matches_catalog(root)


TARGET = {True: "group", False: "pid"}  # the signal goes to the process group, or its pid


@pytest.mark.parametrize(
    ("executor", "signum", "to_group"),
    [
        ("inprocess", signal.SIGINT, False),
        ("inprocess", signal.SIGTERM, False),
        ("processes", signal.SIGINT, True),  # a terminal's Ctrl-C: the whole process group
        ("processes", signal.SIGTERM, False),
        ("threads", signal.SIGINT, True),
        pytest.param(
            "processes",
            signal.SIGTERM,
            True,
            id="processes-SIGTERM-group",
        ),
    ],
    ids=lambda v: v.name if isinstance(v, signal.Signals) else TARGET.get(v, v),
)
def test_a_signal_cancels_the_run(
    executor: str,
    signum: signal.Signals,
    to_group: bool,
    cancellable: Path,
    materializing: Callable[[str], subprocess.Popen[str]],
) -> None:
    proc = materializing(executor)
    slow_pid = int((cancellable / "slow.pid").read_text())
    sent = time.monotonic()
    (os.killpg if to_group else os.kill)(proc.pid, signum)
    if executor == "threads":
        # A thread cannot be stopped: the run waits for it, then throws its output away.
        time.sleep(1.0)
        assert proc.poll() is None, proc.communicate()
        (cancellable / "release").touch()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert time.monotonic() - sent < 10
    assert "cancelling" in err
    assert "cancelled" in out
    assert_cancelled_cleanly(cancellable)
    if executor == "processes":
        assert slow_pid != proc.pid
        assert not alive(slow_pid)
    assert_rerun_completes(cancellable)


@pytest.mark.parametrize("executor", ["threads", "inprocess"])
def test_a_second_sigint_exits_at_once(
    executor: str, cancellable: Path, materializing: Callable[[str], subprocess.Popen[str]]
) -> None:
    if executor == "inprocess":
        (cancellable / "stubborn").touch()  # `slow` survives the first interruption
    proc = materializing(executor)
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(1.0)
    assert proc.poll() is None, proc.communicate()  # still waiting for `slow` to end
    sent = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert time.monotonic() - sent < 5
    assert "cancelling" in err

    # The catalog still opens: the run is left 'running', then the next run marks it
    # abandoned and completes.
    runs = run_cli(cancellable, "runs", "--json")
    assert runs.returncode == 0, runs.stderr
    [row] = json.loads(runs.stdout)
    assert row["status"] == "running"
    assert_store_matches_catalog(cancellable)
    (cancellable / "stubborn").unlink(missing_ok=True)
    assert_rerun_completes(cancellable)
    assert catalog_rows(cancellable, "SELECT status FROM runs ORDER BY started_at") == [
        ("abandoned",),
        ("succeeded",),
    ]


SLOW_ONLY = """
import time
from pathlib import Path

import pandas as pd
from vibepiper import asset


@asset
def slow() -> pd.DataFrame:
    (Path(__file__).parent / "slow.started").touch()
    time.sleep(2)
    return pd.DataFrame({"x": [1]})


@asset
def after(slow: pd.DataFrame) -> pd.DataFrame:
    return slow
"""


def cancel_once(started: Path) -> threading.Event:
    """An event set 0.3 s after the file `started` appears (the asset is computing)."""
    cancel = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not started.exists() and not cancel.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        cancel.set()

    threading.Thread(target=watch, daemon=True).start()
    return cancel


def test_the_cancel_event_stops_an_inprocess_asset(tmp_path: Path) -> None:
    from vibepiper import Project

    root = project(tmp_path / "proj", SLOW_ONLY, module="exec_cancel_api")
    cancel = cancel_once(root / "slow.started")
    try:
        result = Project(root).materialize(executor="inprocess", cancel=cancel)
    finally:
        cancel.set()  # ends the watcher
    assert result.cancelled
    assert result.results["after"].message == "not run: the run was cancelled"
    assert (result.results["slow"].state, result.results["slow"].message) == (
        "failed",
        "cancelled",
    )


def test_the_cancel_event_stops_a_threads_run(tmp_path: Path) -> None:
    from vibepiper import Project

    root = project(tmp_path / "proj", SLOW_ONLY, module="exec_cancel_threads")
    cancel = cancel_once(root / "slow.started")
    try:
        result = Project(root).materialize(executor="threads", workers=2, cancel=cancel)
    finally:
        cancel.set()  # ends the watcher
    assert result.cancelled
    assert (result.results["slow"].state, result.results["slow"].message) == (
        "failed",
        "cancelled",
    )
    assert result.results["after"].state == "blocked"
    runs = Project(root).runs()
    assert runs["status"].tolist() == ["cancelled"]
    assert not list((root / ".vibepiper" / "store").glob("slow/*"))


# -- 6. logs and runs --------------------------------------------------------------------

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
    done = run_cli(root, "materialize", *RUN_ARGS[executor])
    assert done.returncode == 0, done.stdout + done.stderr
    return root, done


EXECUTORS3 = ["inprocess", "threads", "processes"]


@pytest.mark.parametrize("logged_run", EXECUTORS3, indirect=True)
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
    [
        "inprocess",
        "threads",
        "processes",
    ],
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


def test_runs_lists_newest_first_with_counts_and_ambiguous_prefixes_fail(
    cancellable: Path,
) -> None:
    root = cancellable
    (root / "release").touch()
    (root / "exec_assets.py").write_text(
        (root / "exec_assets.py")
        .read_text()
        .replace("return first.assign(y=1)", "raise RuntimeError('slow broke')")
    )
    failing = run_cli(root, "materialize")
    assert failing.returncode == 1, failing.stdout + failing.stderr
    fixed = CANCELLABLE.replace("return first.assign(y=1)", "return first.assign(y=2)")
    (root / "exec_assets.py").write_text(fixed)
    passing = run_cli(root, "materialize", "slow+")
    assert passing.returncode == 0, passing.stdout + passing.stderr

    listed = run_cli(root, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["status"] for r in rows] == ["succeeded", "failed"]
    assert [r["started_at"] for r in rows] == sorted((r["started_at"] for r in rows), reverse=True)
    newest, oldest = rows
    assert (newest["assets"], newest["succeeded"], newest["failed"], newest["blocked"]) == (
        2,
        2,
        0,
        0,
    )
    assert (oldest["assets"], oldest["succeeded"], oldest["failed"], oldest["blocked"]) == (
        3,
        1,
        1,
        1,
    )
    assert newest["selection"] == "slow+"
    limited = json.loads(run_cli(root, "runs", "--json", "--limit", "1").stdout)
    assert [r["run_id"] for r in limited] == [newest["run_id"]]

    same = [a == b for a, b in zip(newest["run_id"], oldest["run_id"], strict=False)]
    common = newest["run_id"][: same.index(False)]  # e.g. the date both runs share
    one_line_error(run_cli(root, "logs", common), "more than one run", common)


# -- 7. settings errors ------------------------------------------------------------------

SIMPLE = """
import pandas as pd
from vibepiper import asset


@asset
def simple() -> pd.DataFrame:
    return pd.DataFrame({"x": [1]})
"""


def test_runs_counts_are_zero_for_a_run_without_assets(tmp_path: Path) -> None:
    root = project(tmp_path / "proj", SIMPLE)
    assert run_cli(root, "check").returncode == 0
    listed = run_cli(root, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["kind"] == "check"
    counts = [row[k] for k in ("assets", "succeeded", "skipped", "failed", "blocked")]
    assert counts == [0, 0, 0, 0, 0]


@pytest.mark.parametrize(
    ("tool", "named"),
    [
        ('executor = "bogus"\n', "executor = 'bogus'"),
        ("workers = 0\n", "workers = 0"),
        ('workers = "2"\n', "workers = '2'"),
        ('\n[tool.vibepiper.pools]\nx = "two"\n', "[tool.vibepiper.pools] x = 'two'"),
        ("\n[tool.vibepiper.pools]\nx = 0\n", "[tool.vibepiper.pools] x = 0"),
    ],
    ids=["executor", "workers-0", "workers-str", "pool-str", "pool-0"],
)
def test_bad_settings_are_one_line_errors(tool: str, named: str, tmp_path: Path) -> None:
    root = project(tmp_path / "proj", SIMPLE, tool=tool)
    one_line_error(run_cli(root, "materialize"), named)
    assert not (root / ".vibepiper" / "store").exists()


def test_bad_executor_options_are_usage_errors(tmp_path: Path) -> None:
    root = project(tmp_path / "proj", SIMPLE)
    bogus = run_cli(root, "materialize", "--executor", "bogus")
    assert bogus.returncode == 2
    assert "--executor" in bogus.stderr and "bogus" in bogus.stderr
    one_line_error(
        run_cli(root, "materialize", "--executor", "inprocess", "--workers", "3"),
        "inprocess",
        "--workers 3",
    )
    assert not (root / ".vibepiper" / "store").exists()


def test_workers_alone_in_pyproject_is_not_blamed_on_a_flag(tmp_path: Path) -> None:
    root = project(tmp_path / "proj", SIMPLE, tool="workers = 2\n")
    result = run_cli(root, "materialize")
    assert result.returncode == 0 or (
        "[tool.vibepiper]" in result.stderr and "--workers" not in result.stderr
    ), result.stderr


# -- 8. the project's executor settings ---------------------------------------------------

PIDS = """
import os
import time

import pandas as pd
from vibepiper import asset


@asset
def one() -> pd.DataFrame:
    start = time.time()
    time.sleep(1.5)
    return pd.DataFrame({"pid": [os.getpid()], "start": [start], "end": [time.time()]})


@asset
def two() -> pd.DataFrame:
    start = time.time()
    time.sleep(1.5)
    return pd.DataFrame({"pid": [os.getpid()], "start": [start], "end": [time.time()]})
"""


def _pids_and_spans(root: Path) -> tuple[int, set[int], list[tuple[float, float]]]:
    frames = [read_asset(root, name) for name in ("one", "two")]
    pids = {int(f["pid"][0]) for f in frames}
    spans = [(float(f["start"][0]), float(f["end"][0])) for f in frames]
    return last_run(root)[2], pids, spans


def test_the_project_executor_and_workers_are_used_by_default(tmp_path: Path) -> None:
    root = project(tmp_path / "proj", PIDS, tool='executor = "processes"\nworkers = 2\n')
    done = run_cli(root, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    cli_pid, pids, spans = _pids_and_spans(root)
    assert cli_pid not in pids
    assert len(pids) == 2  # two worker processes...
    assert max_overlap(spans) == 2  # ...computing at the same time


def test_workers_alone_on_the_command_line_mean_threads(tmp_path: Path) -> None:
    root = project(tmp_path / "proj", PIDS)
    done = run_cli(root, "materialize", "--workers", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    cli_pid, pids, spans = _pids_and_spans(root)
    assert pids == {cli_pid}  # in the command's own process...
    assert max_overlap(spans) == 2  # ...two at once


def test_workers_on_the_command_line_keep_the_project_executor(tmp_path: Path) -> None:
    root = project(tmp_path / "proj", PIDS, tool='executor = "processes"\n')
    done = run_cli(root, "materialize", "--workers", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    cli_pid, pids, _ = _pids_and_spans(root)
    assert cli_pid not in pids


# -- more: log levels in workers, and what a timeout counts ------------------------------

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


@pytest.mark.parametrize(
    "executor",
    [
        "inprocess",
        "processes",
    ],
)
def test_context_log_info_survives_a_project_logging_config(executor: str, tmp_path: Path) -> None:
    root = project(tmp_path / "proj", BASIC_CONFIG)
    done = run_cli(root, "materialize", *RUN_ARGS[executor])
    assert done.returncode == 0, done.stdout + done.stderr
    rows = catalog_rows(root, "SELECT asset, message FROM logs WHERE level = 'INFO'")
    assert rows == [("configured", "configured says hello")]


SLOW_IMPORT = """
import time

import pandas as pd
from vibepiper import asset

time.sleep(1.5)  # a heavy import


@asset(timeout=1)
def instant() -> pd.DataFrame:
    return pd.DataFrame({"x": [1]})
"""


@pytest.mark.parametrize(
    "executor",
    [
        "inprocess",
        "processes",
        pytest.param(
            "dask",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_a_timeout_counts_the_asset_not_the_worker_start(executor: str, tmp_path: Path) -> None:
    root = project(tmp_path / "proj", SLOW_IMPORT)
    done = run_cli(root, "materialize", *RUN_ARGS[executor])
    assert done.returncode == 0, done.stdout + done.stderr
    assert states(root)["instant"] == ("succeeded", None)


DIES = """
import os

import pandas as pd
from vibepiper import asset


@asset
def dies() -> pd.DataFrame:
    os._exit(3)


@asset
def after_dies(dies: pd.DataFrame) -> pd.DataFrame:
    return dies


@asset
def fine() -> pd.DataFrame:
    return pd.DataFrame({"x": [1]})


@asset
def also_fine(fine: pd.DataFrame) -> pd.DataFrame:
    return fine.assign(y=2)
"""


def test_a_worker_process_that_dies_fails_only_its_asset(tmp_path: Path) -> None:
    root = project(tmp_path / "proj", DIES)
    done = run_cli(root, "materialize", "--executor", "processes", "--workers", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    found = states(root)
    assert found["dies"] == ("failed", "its worker process died (exit code 3)")
    assert found["after_dies"] == ("blocked", "blocked: upstream dies failed")
    assert found["fine"] == ("succeeded", None)  # on a new worker
    assert found["also_fine"] == ("succeeded", None)
    assert_store_matches_catalog(root)


# -- 9. in-process: an output is written while the next asset computes ---------------------

WRITE_BEHIND = """
from pathlib import Path

import pandas as pd
from vibepiper import asset

STORE = Path(__file__).parent / ".vibepiper" / "store"


def published(name):
    return [p.name for p in (STORE / name).glob("*.parquet")]


@asset
def a0() -> pd.DataFrame:
    return pd.DataFrame({"x": range(200_000)})
"""
WRITE_BEHIND += "".join(
    f"""

@asset
def a{i}(a{i - 1}: pd.DataFrame) -> pd.DataFrame:
    assert published("a{i - 1}"), "a{i - 1} is not published yet"
    return a{i - 1}.assign(x=a{i - 1}["x"] + 1)


@asset
def side{i}() -> pd.DataFrame:
    return pd.DataFrame({{"y": range({i} * 1000)}})
"""
    for i in range(1, 8)
)


def test_inprocess_starts_a_dependent_only_once_its_input_is_published(tmp_path: Path) -> None:
    """The in-process executor writes an output in a thread of its own while the next
    (independent) asset computes; a dependent still starts only after its input's file
    is published, and the catalog records the same as without the overlap."""
    from vibepiper import Project

    root = project(tmp_path / "proj", WRITE_BEHIND)
    result = Project(root).materialize(executor="inprocess")

    assert result.status == "succeeded", {n: r.message for n, r in result.results.items()}
    assert len(result.states) == 15
    found = catalog_rows(
        root, "SELECT asset, started_at, finished_at FROM materializations ORDER BY started_at"
    )
    spans = [(started, finished) for _, started, finished in found]
    assert max_overlap(spans) <= 2  # one computing, one being written
    assert [name for name, _, _ in found] == Project(root).assets  # in dependency order
    assert_store_matches_catalog(root)
    again = Project(root).materialize(executor="inprocess")
    assert set(again.states.values()) == {"skipped"}
