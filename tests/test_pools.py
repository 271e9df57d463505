"""Pools: `[tool.vibepiper.pools]` caps how many of a pool's assets run at once, whichever
executor runs them; an asset in an undefined pool is a one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import catalog_rows, run_cli, write_project
from tests.helpers.output import one_line_error
from tests.helpers.state import last_run, max_overlap, read_asset


def project(root: Path, source: str, tool: str = "", module: str = "exec_assets") -> Path:
    return write_project(root, {module: source}, tool=tool)


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
