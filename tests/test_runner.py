"""The run of SPEC §3 through the Python API: states, blocking, skipping, lineage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from vibepiper import Project
from vibepiper.errors import AssetNotMaterializedError, SelectionError

from .conftest import catalog_rows

BRANCHES = """
import pandas as pd
from vibepiper import asset

@asset
def base() -> pd.DataFrame:
    return pd.DataFrame({"n": [1, 2, 3]})

@asset
def broken(base: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("bad data in base")

@asset
def after_broken(broken: pd.DataFrame) -> pd.DataFrame:
    return broken

@asset
def further(after_broken: pd.DataFrame) -> pd.DataFrame:
    return after_broken

@asset
def healthy(base: pd.DataFrame) -> pd.DataFrame:
    return base.assign(m=base.n * 10)
"""


def test_failure_blocks_downstream_and_independent_branch_goes_on(
    project_dir: Callable[..., Path],
) -> None:
    root = project_dir({"branches": BRANCHES})
    run = Project(root).materialize()
    assert run.states == {
        "base": "succeeded",
        "broken": "failed",
        "after_broken": "blocked",
        "further": "blocked",
        "healthy": "succeeded",
    }
    assert not run.ok
    rows = dict(catalog_rows(root, "SELECT asset, status FROM materializations"))
    assert rows == run.states
    (error,) = catalog_rows(root, "SELECT error FROM materializations WHERE asset = 'broken'")[0:1]
    assert "Traceback" in error[0] and "ValueError: bad data in base" in error[0]
    assert run.results["after_broken"].message == "blocked: upstream broken failed"
    assert catalog_rows(root, "SELECT status FROM runs") == [("failed",)]


def test_fail_fast_stops_scheduling(project_dir: Callable[..., Path]) -> None:
    root = project_dir({"branches": BRANCHES})
    run = Project(root).materialize(fail_fast=True)
    assert run.states["broken"] == "failed"
    # healthy comes after broken in the order, so it is not run
    order = list(run.states)
    assert order.index("healthy") > order.index("broken")
    assert run.states["healthy"] == "blocked"
    assert "--fail-fast" in run.results["healthy"].message


def test_outputs_are_parquet_files_recorded_with_lineage(shop: Path) -> None:
    project = Project(shop)
    run = project.materialize()
    assert run.ok and set(run.states.values()) == {"succeeded"}
    rows = catalog_rows(
        shop, "SELECT asset, data_version, row_count, code_version FROM materializations"
    )
    for asset, version, count, code in rows:
        path = shop / ".vibepiper" / "store" / asset / f"{version}.parquet"
        table = pq.read_table(path)
        assert table.num_rows == count
        assert code
    lineage = catalog_rows(
        shop,
        "SELECT m.asset, l.upstream_asset, l.upstream_data_version = u.data_version "
        "FROM lineage l JOIN materializations m USING (materialization_id) "
        "JOIN materializations u ON u.asset = l.upstream_asset ORDER BY m.asset",
    )
    assert lineage == [("clean", "raw", True), ("totals", "clean", True)]
    totals = project.read("totals")
    assert list(totals.total) == [2, 4, 6]


def test_second_run_skips_fresh_assets_and_edits_make_them_stale(shop: Path) -> None:
    Project(shop).materialize()
    assert set(Project(shop).materialize().states.values()) == {"skipped"}
    (shop / "data" / "raw.csv").write_text("n\n1\n2\n3\n4\n")
    run = Project(shop).materialize()
    assert run.states == {
        "raw": "succeeded",
        "clean": "succeeded",
        "totals": "succeeded",
        "lonely": "skipped",
    }
    assert run.results["raw"].reasons == ("source data/raw.csv changed",)
    (reason,) = run.results["clean"].reasons
    assert reason.startswith("upstream raw changed since 20") and reason.endswith(" UTC")


def test_force_recomputes_and_early_cutoff_keeps_downstream_fresh(shop: Path) -> None:
    Project(shop).materialize()
    run = Project(shop).materialize("raw", force=True)
    assert run.states == {"raw": "succeeded"}
    # The same bytes give the same data version: nothing downstream is stale.
    assert all(v.fresh for v in Project(shop).plan().values())
    # A code change that yields the same data stops at that asset (early cutoff).
    module = shop / "shop.py"
    module.write_text(
        module.read_text().replace(
            "return raw.dropna().reset_index(drop=True)",
            "out = raw.dropna()\n    return out.reset_index(drop=True)",
        )
    )
    run = Project(shop).materialize()
    assert run.states["clean"] == "succeeded"
    assert run.states["totals"] == "skipped"


def test_config_change_makes_asset_stale(shop: Path) -> None:
    Project(shop).materialize()
    module = shop / "shop.py"
    module.write_text(module.read_text().replace("factor: int = 2", "factor: int = 3"))
    run = Project(shop).materialize()
    assert run.states["totals"] == "succeeded"
    assert run.results["totals"].reasons == ("configuration changed",)
    (config,) = catalog_rows(
        shop,
        "SELECT config FROM materializations WHERE asset = 'totals' "
        "AND status = 'succeeded' ORDER BY finished_at DESC LIMIT 1",
    )
    assert config == ('{"factor": 3}',)


def test_missing_store_file_makes_asset_stale(shop: Path) -> None:
    project = Project(shop)
    project.materialize()
    for path in (shop / ".vibepiper" / "store" / "lonely").glob("*.parquet"):
        path.unlink()
    verdicts = Project(shop).plan()
    assert verdicts["lonely"].reasons == ("its stored file is missing",)
    assert Project(shop).materialize().states["lonely"] == "succeeded"


def test_read_older_version_and_unknown_asset(shop: Path) -> None:
    project = Project(shop)
    project.materialize()
    first = catalog_rows(shop, "SELECT data_version FROM materializations WHERE asset='clean'")
    (shop / "data" / "raw.csv").write_text("n\n7\n")
    Project(shop).materialize()
    assert list(Project(shop).read("clean").n) == [7]
    old = Project(shop).read("clean", version=first[0][0][:10])
    assert list(old.n) == [1, 2, 3]
    with pytest.raises(AssetNotMaterializedError, match="no data version"):
        project.read("clean", version="ffffffff")
    with pytest.raises(SelectionError, match="did you mean 'clean'"):
        project.read("claen")


def test_input_never_materialized_fails_with_a_hint(shop: Path) -> None:
    run = Project(shop).materialize("totals")
    assert run.states == {"totals": "failed"}
    assert "clean has never been materialized" in run.results["totals"].message
    assert "vibepiper materialize +totals" in run.results["totals"].message


WEIRD = """
import asyncio
import pandas as pd
import pyarrow as pa
from vibepiper import asset, Context

calls = {"n": 0}

@asset
def as_arrow() -> pa.Table:
    return pa.table({"a": [1, 2]})

@asset
async def awaited(as_arrow: pd.DataFrame) -> pd.DataFrame:
    await asyncio.sleep(0)
    return as_arrow.assign(b=3)

@asset
def not_a_frame() -> pd.DataFrame:
    return 42

@asset
def numeric_columns() -> pd.DataFrame:
    return pd.DataFrame([[1, 2]])

@asset(retries=2, retry_delay=0)
def flaky(context: Context) -> pd.DataFrame:
    if context.attempt < 3:
        raise ConnectionError(f"attempt {context.attempt}")
    return pd.DataFrame({"attempt": [context.attempt]})

@asset(deps=["flaky"])
def ordered() -> pd.DataFrame:
    return pd.DataFrame({"x": [1]})

@asset
def empty() -> pd.DataFrame:
    return pd.DataFrame({"x": pd.Series([], dtype="int64")})
"""


def test_return_types_async_retries_and_deps(project_dir: Callable[..., Path]) -> None:
    root = project_dir({"weird": WEIRD})
    project = Project(root)
    run = project.materialize()
    assert run.states["as_arrow"] == "succeeded"
    assert run.states["awaited"] == "succeeded"
    assert list(project.read("awaited").b) == [3, 3]
    assert run.states["not_a_frame"] == "failed"
    assert run.results["not_a_frame"].message == (
        "asset 'not_a_frame' returned builtins.int, not a pandas.DataFrame, a pyarrow.Table or "
        "RecordBatchReader, or a DuckDB relation"
    )
    assert run.states["numeric_columns"] == "failed"
    assert "non-string column names" in run.results["numeric_columns"].message
    assert run.states["flaky"] == "succeeded" and run.results["flaky"].attempts == 3
    assert list(project.read("flaky").attempt) == [3]
    order = list(run.states)
    assert order.index("ordered") > order.index("flaky")
    assert run.states["empty"] == "succeeded" and len(project.read("empty")) == 0
    (attempts,) = catalog_rows(root, "SELECT attempts FROM materializations WHERE asset='flaky'")
    assert attempts == (3,)


def test_input_mutation_does_not_leak_between_consumers(project_dir: Callable[..., Path]) -> None:
    root = project_dir(
        {
            "mut": """
import pandas as pd
from vibepiper import asset

@asset
def src() -> pd.DataFrame:
    return pd.DataFrame({"n": [1, 2]})

@asset
def a_mutator(src: pd.DataFrame) -> pd.DataFrame:
    src["n"] = 0
    src["extra"] = 1
    return src

@asset
def b_reader(src: pd.DataFrame, a_mutator: pd.DataFrame) -> pd.DataFrame:
    return src
"""
        }
    )
    project = Project(root)
    assert project.materialize().ok
    assert list(project.read("b_reader").columns) == ["n"]
    assert list(project.read("b_reader").n) == [1, 2]
    assert list(project.read("src").n) == [1, 2]


def test_context_gives_run_id_asset_and_logger(project_dir: Callable[..., Path]) -> None:
    root = project_dir(
        {
            "ctx": """
import pandas as pd
from vibepiper import asset, Context

@asset
def who(context: Context, level: str = "x") -> pd.DataFrame:
    context.log.info("hello from %s", context.asset)
    return pd.DataFrame({"run": [context.run_id], "asset": [context.asset],
                         "level": [context.config["level"]]})
"""
        }
    )
    project = Project(root)
    run = project.materialize()
    frame = project.read("who")
    assert frame.iloc[0].tolist() == [run.run_id, "who", "x"]
    assert isinstance(frame, pd.DataFrame)
