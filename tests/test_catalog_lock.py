"""The catalog's own lock: a holder blocks writers (named in the error) but not other
readers, and no acknowledged commit is lost when writers and readers contend for one
catalog (FACTS.md: without our lock, DuckDB loses commits when its file lock is slow).

Real DuckDB files and real processes; the race is widened by an LD_PRELOAD shim
(tests/helpers/race_shim.py) that delays DuckDB's own file lock.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from tests.conftest import invoke, run_cli
from tests.helpers.race_shim import build_prelock_delay, contend, expected_ids

HELPERS = Path(__file__).parent / "helpers"


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    assert "Traceback" not in text
    return lines[0]


def wait_for_line(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    """The next line the process prints, or a failure if it prints none in time."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"process {proc.pid} printed nothing in {timeout} s"
    return proc.stdout.readline().strip()


# -- a holder of the lock ------------------------------------------------------------------

StartHolder = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def lock_holder(shop: Path) -> Iterator[StartHolder]:
    """Start tests/helpers/hold_lock.py on the shop's catalog lock; stopped afterwards."""
    started: list[subprocess.Popen[str]] = []

    def start(*flags: str) -> subprocess.Popen[str]:
        lock_path = shop / ".vibepiper" / "catalog.lock"
        proc = subprocess.Popen(
            [sys.executable, str(HELPERS / "hold_lock.py"), str(lock_path), *flags],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert wait_for_line(proc) == "ready"
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@pytest.mark.parametrize("release", ["exit", "kill -9"])
def test_a_held_lock_fails_history_naming_the_holder_until_released(
    shop: Path, lock_holder: StartHolder, release: str
) -> None:
    assert invoke(shop, "materialize").exit_code == 0
    holder = lock_holder()

    # The holder keeps the lock until released: `history` gives up on its own, after the
    # 1 s asked for (the default, 60 s, would outlast run_cli's 45 s and fail the test).
    busy = run_cli(shop, "history", "lonely", env={"VIBEPIPER_LOCK_TIMEOUT": "1"}, timeout=45)
    assert holder.poll() is None

    assert busy.returncode == 1
    line = one_line(busy.stderr)
    assert f"process {holder.pid}" in line
    assert busy.stdout == ""

    if release == "exit":
        assert holder.stdin is not None
        holder.stdin.close()
    else:
        holder.kill()  # the kernel drops a flock when its holder dies
    holder.wait(timeout=30)

    ok = run_cli(shop, "history", "lonely", "--json", env={"VIBEPIPER_LOCK_TIMEOUT": "1"})
    assert ok.returncode == 0, ok.stderr
    assert [row["status"] for row in json.loads(ok.stdout)] == ["succeeded"]


def test_a_reader_holding_the_shared_lock_does_not_block_another_reader(
    shop: Path,
    lock_holder: StartHolder,
) -> None:
    assert invoke(shop, "materialize").exit_code == 0
    lock_holder("--shared")
    result = run_cli(shop, "history", "lonely", env={"VIBEPIPER_LOCK_TIMEOUT": "1"})
    assert result.returncode == 0, result.stderr


# -- no acknowledged commit lost (FACTS.md, duckdb 2.0) --------------------------------------


@pytest.fixture(scope="module")
def delay_shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The LD_PRELOAD shim that delays DuckDB's file lock, compiled for this machine."""
    return build_prelock_delay(tmp_path_factory.mktemp("shim"))


@pytest.mark.parametrize(
    ("writers", "readers", "cycles", "rounds"),
    [
        pytest.param(4, 2, 20, 1, id="4w2r-20"),
        pytest.param(4, 4, 12, 1, id="4w4r-12"),
        pytest.param(4, 2, 60, 1, marks=pytest.mark.slow, id="4w2r-60-slow"),
        pytest.param(4, 4, 40, 4, marks=pytest.mark.slow, id="4w4r-40x4-slow"),
    ],
)
def test_no_acknowledged_commit_is_lost_under_contention(
    tmp_path: Path, delay_shim: Path, writers: int, readers: int, cycles: int, rounds: int
) -> None:
    seen = contend(
        tmp_path / "home",
        delay_shim,
        writers=writers,
        readers=readers,
        cycles=cycles,
        rounds=rounds,
    )
    print(f"{len(seen.acknowledged)} acknowledged rows, {len(seen.lost)} lost")
    assert seen.failures == []
    assert seen.acknowledged == expected_ids(writers, cycles, rounds)  # every write acknowledged
    assert seen.present is not None
    assert seen.lost == set(), f"{len(seen.lost)} acknowledged rows lost: {sorted(seen.lost)}"
    assert seen.present == seen.acknowledged


@pytest.mark.parametrize(
    "readers", [2, pytest.param(4, marks=pytest.mark.slow, id="4-slow")], ids=str
)
def test_the_shim_reproduces_lost_commits_without_our_lock(
    tmp_path: Path, delay_shim: Path, readers: int
) -> None:
    """The control: the same cycles straight through duckdb, without the catalog lock.

    If this no longer loses anything (a fixed duckdb, a shim that no longer hooks the
    lock), the test above proves nothing, so say so with a skip.
    """
    seen = contend(tmp_path / "home", delay_shim, writers=4, readers=readers, cycles=15, raw=True)
    print(f"without our lock: {len(seen.acknowledged)} acknowledged rows, {len(seen.lost)} lost")
    assert seen.failures == []  # the race breaks cycles, never a worker as a whole
    if not seen.lost:
        pytest.skip(
            f"duckdb {duckdb.__version__} lost no commit without our lock under the shim: "
            "the lost-commit regression test is not sensitive here"
        )
    assert seen.acknowledged  # some writes were acknowledged, and some of them vanished
