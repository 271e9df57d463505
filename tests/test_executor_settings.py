"""Choosing an executor: bad settings and options are one-line errors; the project's
executor and workers apply by default and `--workers` alone means threads; a worker process
that dies fails only its asset; the in-process executor writes an output while the next
asset computes, yet starts a dependent only once its input is published."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import catalog_rows, run_cli, write_project
from tests.helpers.output import one_line_error
from tests.helpers.state import (
    assert_store_matches_catalog,
    last_run,
    max_overlap,
    read_asset,
    states,
)


def project(root: Path, source: str, tool: str = "", module: str = "exec_assets") -> Path:
    return write_project(root, {module: source}, tool=tool)


SIMPLE = """
import pandas as pd
from vibepiper import asset


@asset
def simple() -> pd.DataFrame:
    return pd.DataFrame({"x": [1]})
"""


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
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--workers" not in result.stdout + result.stderr


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
