"""Hostile output of assets: frames that cannot be stored (duplicate, non-string or
MultiIndex columns, mixed objects, not a DataFrame at all) fail their asset and block
downstream, keeping the last good version; zero rows is valid data.

The contract (docs/cli.md): every bad input gets one line on stderr starting `error:` that
names the culprit and the fix, exit 2 for usage/definition/selection errors (and SQL errors
in `query`), exit 1 for a failed asset or a catalog/store problem; never a traceback; and
nothing already published is lost or changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import catalog_rows, invoke, run_cli, write_project
from tests.helpers.output import summary_line
from tests.helpers.state import current_file, current_versions, home_of, store_hashes

pytestmark = pytest.mark.usefixtures("forget_project_modules")

FRAMES_MODULE = """
import numpy as np
import pandas as pd
from vibepiper import Context, asset

HOSTILE = {
    "dup_columns": lambda base: pd.DataFrame([[1, 2]], columns=["x", "x"]),
    "int_columns": lambda base: pd.DataFrame({0: [1], 1: [2]}),
    "tuple_columns": lambda base: pd.DataFrame({("a", "b"): [1]}),
    "none_column": lambda base: pd.DataFrame({None: [1], "b": [2]}),
    "mixed_object": lambda base: pd.DataFrame({"mixed_col": [1, "two", 3]}),
    "multiindex_columns": lambda base: pd.DataFrame(
        [[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")])
    ),
    "zero_rows": lambda base: base.iloc[0:0],
    "zero_columns": lambda base: pd.DataFrame(index=range(3)),
    "a_series": lambda base: base["n"],
    "none": lambda base: None,
    "a_dict": lambda base: {"n": [1, 2, 3]},
    "an_array": lambda base: np.array([[1, 2], [3, 4]]),
}


def bad(context):
    return (context.project_dir / "mode.txt").read_text().strip() == "bad"


def make(kind):
    @asset(name=kind, inputs={"base_frame": "base"})
    def produce(base_frame: pd.DataFrame, context: Context) -> pd.DataFrame:
        if bad(context):
            return HOSTILE[kind](base_frame)
        return base_frame.assign(good=1)

    @asset(name=kind + "_down", inputs={"up": kind})
    def consume(up: pd.DataFrame) -> pd.DataFrame:
        return up.copy()

    return [produce, consume]


@asset
def base() -> pd.DataFrame:
    return pd.DataFrame({"n": [1, 2, 3]})


@asset
def other_branch(base: pd.DataFrame) -> pd.DataFrame:
    return base.assign(other=True)


PRODUCED = [made for kind in HOSTILE for made in make(kind)]
"""

# what the failure message must say besides the asset's name
FRAME_FAILURES = {
    "dup_columns": "duplicate column names ['x']",
    "int_columns": "non-string column names [0, 1]",
    "tuple_columns": "non-string column names [('a', 'b')]",
    "none_column": "non-string column names",
    "mixed_object": "mixed_col",
    "multiindex_columns": "non-string column names",
    "a_series": "returned pandas.Series, not a pandas.DataFrame",
    "none": "returned builtins.NoneType, not a pandas.DataFrame",
    "a_dict": "returned builtins.dict, not a pandas.DataFrame",
    "an_array": "returned numpy.ndarray, not a pandas.DataFrame",
}
GOOD = [{"n": 1, "good": 1}, {"n": 2, "good": 1}, {"n": 3, "good": 1}]


@dataclass
class FramesRun:
    root: Path
    good_files: dict[str, str]
    good_versions: dict[str, str]
    exit_code: int
    stdout: str
    states: dict[str, str]
    row_counts: dict[str, int | None]


@pytest.fixture(scope="module")
def frames_run(tmp_path_factory: pytest.TempPathFactory) -> FramesRun:
    """Every asset first published good data; then each returned its hostile value."""
    root = write_project(
        tmp_path_factory.mktemp("frames") / "proj", {"hostile_frames": FRAMES_MODULE}
    )
    (root / "mode.txt").write_text("good")
    first = invoke(root, "materialize")
    assert first.exit_code == 0, first.output
    good_files, good_versions = store_hashes(root), current_versions(home_of(root))
    (root / "mode.txt").write_text("bad")
    second = run_cli(root, "materialize", "--force")
    assert "Traceback" not in second.stdout + second.stderr
    last = catalog_rows(
        root,
        "SELECT asset, status, row_count FROM materializations WHERE run_id = (SELECT run_id "
        "FROM runs ORDER BY started_at DESC LIMIT 1)",
    )
    return FramesRun(
        root,
        good_files,
        good_versions,
        second.returncode,
        second.stdout,
        {a: s for a, s, _ in last},
        {a: n for a, _, n in last},
    )


def _files_of(hashes: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in hashes.items() if k.split("/")[0] == name}


@pytest.mark.parametrize("kind", list(FRAME_FAILURES))
def test_a_frame_that_cannot_be_stored_fails_its_asset_and_blocks_downstream(
    frames_run: FramesRun, kind: str
) -> None:
    run = frames_run
    assert run.exit_code == 1
    assert run.states[kind] == "failed"
    assert run.states[f"{kind}_down"] == "blocked"
    line = summary_line(run.stdout, kind)  # one line, naming the asset ...
    assert FRAME_FAILURES[kind] in line  # ... and the type or column problem
    # the independent branch still ran, and nothing published before changed
    assert run.states["other_branch"] == "succeeded"
    now = store_hashes(run.root)
    for name in (kind, f"{kind}_down", "base", "other_branch"):
        assert _files_of(now, name) == _files_of(run.good_files, name), name
        assert current_versions(home_of(run.root))[name] == run.good_versions[name]
    shown = invoke(run.root, "show", kind, "--json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout) == GOOD


def test_a_frame_with_zero_rows_is_valid_data(frames_run: FramesRun) -> None:
    """Decided: zero rows (with columns) is data like any other; it is published and its
    downstream computes from it."""
    run = frames_run
    assert run.states["zero_rows"] == "succeeded"
    assert run.states["zero_rows_down"] == "succeeded"
    assert run.row_counts["zero_rows"] == run.row_counts["zero_rows_down"] == 0
    for name in ("zero_rows", "zero_rows_down"):
        path = current_file(run.root, name)
        assert pq.read_schema(path).names[:1] == ["n"]
        assert pq.read_table(path).num_rows == 0
    assert json.loads(invoke(run.root, "show", "zero_rows_down", "--json").stdout) == []
    # the good version stays readable by its data version
    old = run.good_versions["zero_rows"]
    shown = invoke(run.root, "show", "zero_rows", "--version", old[:12], "--json")
    assert json.loads(shown.stdout) == GOOD


def test_a_frame_with_zero_columns_fails_its_asset_and_query_works(
    frames_run: FramesRun,
) -> None:
    run = frames_run
    assert run.states["zero_columns"] == "failed"
    line = summary_line(run.stdout, "zero_columns")
    assert "returned a frame with no columns; return at least one column" in line
    assert run.states["zero_columns_down"] == "blocked"
    shown = invoke(run.root, "show", "zero_columns")
    assert "(3 of 3 rows" in shown.stderr  # the last good version
    result = run_cli(run.root, "query", "--json", "select count(*) as n from runs")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 2}]
