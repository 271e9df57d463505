"""The index as stored (issue 16, defect 10; docs/types.md, "The index").

An index that is only row numbers (unnamed integers: a RangeIndex, or what filtering or
sorting leaves of one) is dropped; any other (named, not integers, a MultiIndex) is kept
as real columns. So `return df[df.amount > 0]` without `reset_index` leaks no
`__index_level_0__` into the file or into SQL, and read-back is the published frame.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import catalog_rows, run_cli, write_project
from vibepiper import Project
from vibepiper.storage.fidelity import UnstorableOutput, for_storage, frame_version

ORDERS = pd.DataFrame({"id": [1, 2, 3, 4, 5, 6], "amount": [5.0, -1.0, 7.0, 0.0, 2.0, 3.0]})
LEAK = "__index_level_0__"


@pytest.mark.parametrize(
    "shaped",
    [
        lambda f: f[f.amount > 0],  # rows 0, 2, 4, 5: an Index of ints
        lambda f: f.iloc[[1, 3, 5]],  # evenly spaced: RangeIndex(1, 7, 2)
        lambda f: f.sort_values("amount"),
        lambda f: f.set_axis(pd.Index(range(10, 16), dtype="Int64")),
    ],
    ids=["filtered", "evenly_spaced", "sorted", "nullable_ints"],
)
def test_row_numbers_are_dropped(shaped) -> None:
    frame = shaped(ORDERS)
    stored = for_storage("orders", frame)
    assert stored.table.column_names == ["id", "amount"]
    assert stored.frame.index.equals(pd.RangeIndex(len(frame)))
    renumbered = frame.reset_index(drop=True)
    pd.testing.assert_frame_equal(stored.frame, renumbered)
    assert frame_version(frame) == frame_version(renumbered)


@pytest.mark.parametrize(
    ("shaped", "columns"),
    [
        (lambda f: f.set_index("id"), ["id", "amount"]),
        (lambda f: f.set_index(["id", "amount"]).assign(x=1), ["id", "amount", "x"]),
        (lambda f: f.set_axis(list("abcdef")), ["index", "id", "amount"]),
        (lambda f: f.set_axis(pd.RangeIndex(6, name="n")), ["n", "id", "amount"]),
    ],
    ids=["named", "multi", "strings", "named_range"],
)
def test_a_meaningful_index_is_kept_as_columns(shaped, columns: list[str]) -> None:
    frame = shaped(ORDERS)
    stored = for_storage("orders", frame)
    assert stored.table.column_names == columns
    assert list(stored.frame.columns) == columns
    assert stored.frame.index.equals(pd.RangeIndex(len(frame)))
    assert frame_version(frame) == frame_version(frame.reset_index())


def test_an_index_named_as_a_column_is_refused_in_one_line() -> None:
    frame = ORDERS.set_index("id", drop=False)
    with pytest.raises(UnstorableOutput) as caught:
        for_storage("orders", frame)
    message = str(caught.value)
    assert "asset 'orders'" in message and "'id'" in message and "reset_index" in message
    assert len(message.splitlines()) == 1


ASSETS = """
import pandas as pd
from vibepiper import asset, expect

ORDERS = pd.DataFrame({"id": [1, 2, 3, 4, 5, 6], "amount": [5.0, -1.0, 7.0, 0.0, 2.0, 3.0]})

@asset
def positive() -> pd.DataFrame:
    return ORDERS[ORDERS.amount > 0]

@asset
def renumbered() -> pd.DataFrame:
    return ORDERS[ORDERS.amount > 0].reset_index(drop=True)

@asset
def by_id() -> pd.DataFrame:
    return ORDERS.set_index("id")

@asset(quarantine=True, max_quarantined=0.5, checks=[expect.in_range("amount", min=0.5)])
def kept() -> pd.DataFrame:
    return ORDERS.sort_values("amount")

@asset
def downstream(positive: pd.DataFrame, by_id: pd.DataFrame) -> pd.DataFrame:
    seen = [repr(positive.index), repr(by_id.index), repr(list(by_id.columns))]
    return pd.DataFrame({"seen": seen})
"""


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_project(tmp_path_factory.mktemp("index") / "p", {"shop": ASSETS})
    done = run_cli(root, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def _versions(root: Path) -> dict[str, str]:
    return dict(catalog_rows(root, "SELECT asset, data_version FROM current_materializations"))


def _query(root: Path, sql: str) -> list[dict]:
    done = run_cli(root, "query", sql, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_filtered_frame_leaks_no_index_into_the_file_or_sql(published: Path) -> None:
    project = Project(published)
    path = project.store.path_for("positive", _versions(published)["positive"])
    assert pq.read_schema(path).names == ["id", "amount"]
    rows = _query(published, "select * from positive")
    assert rows == [
        {"id": 1, "amount": 5.0},
        {"id": 3, "amount": 7.0},
        {"id": 5, "amount": 2.0},
        {"id": 6, "amount": 3.0},
    ]
    back = project.read("positive")
    assert back.index.equals(pd.RangeIndex(4)) and list(back.columns) == ["id", "amount"]


def test_a_named_index_survives_as_a_column(published: Path) -> None:
    rows = _query(published, "select * from by_id order by id limit 2")
    assert rows == [{"id": 1, "amount": 5.0}, {"id": 2, "amount": -1.0}]
    back = Project(published).read("by_id")
    assert list(back.columns) == ["id", "amount"] and back.index.equals(pd.RangeIndex(6))
    seen = Project(published).read("downstream")["seen"].tolist()
    assert seen[0] == repr(pd.RangeIndex(4)) and seen[1] == repr(pd.RangeIndex(6))
    assert seen[2] == repr(["id", "amount"])


def test_quarantined_rows_leak_no_index(published: Path) -> None:
    rows = _query(published, "select * from quarantine.kept")
    assert [sorted(r) for r in rows] == [["_vp_reason", "amount", "id"]] * 2
    recorded = catalog_rows(
        published, "SELECT check_name, passed, failing_rows, quarantined FROM check_results"
    )
    assert recorded == [("in_range_amount", False, 2, True)]  # not lost to a second look
    assert [r["amount"] for r in _query(published, "select * from kept")] == [2.0, 3.0, 5.0, 7.0]


def test_the_data_version_does_not_depend_on_the_index(published: Path, tmp_path: Path) -> None:
    versions = _versions(published)
    assert versions["positive"] == versions["renumbered"]
    again = write_project(tmp_path / "again", {"shop": ASSETS})
    assert run_cli(again, "materialize").returncode == 0
    assert _versions(again) == versions
