"""The index as stored (issue 16, defect 10; docs/types.md, "The index").

An index that is only row numbers (unnamed integers: a RangeIndex, or what filtering or
sorting leaves of one) is dropped: readers get rows numbered 0, 1, 2..., and neither the
file nor SQL has a `__index_level_0__` column. Any other index (named, a MultiIndex, not
integers) is kept as an index: `read()`, downstream assets and checks get it back as it
was (names, dtypes, values), and the file stores its levels as named columns, which SQL
sees.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import catalog_rows, run_cli, write_project
from vibepiper import Project, asset, expect
from vibepiper.storage.fidelity import UnstorableOutput, for_storage, frame_version, to_frame
from vibepiper.validation.validate import validate

ORDERS = pd.DataFrame({"id": [1, 2, 3, 4, 5, 6], "amount": [5.0, -1.0, 7.0, 0.0, 2.0, 3.0]})
LEAK = "__index_level_"


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


def test_a_default_index_is_handed_on_without_a_copy() -> None:
    assert for_storage("orders", ORDERS).frame is ORDERS


@pytest.mark.parametrize(
    ("shaped", "fields"),
    [
        (lambda f: f.set_index("id"), ["amount", "id"]),
        (lambda f: f.set_index(["id", "amount"]).assign(x=1), ["x", "id", "amount"]),
        (lambda f: f.set_axis(list("abcdef")), ["id", "amount", "index"]),
        (lambda f: f.set_axis(pd.RangeIndex(6, name="n")), ["id", "amount", "n"]),
        (
            lambda f: f.set_axis(
                pd.MultiIndex.from_arrays([list("abcdef"), f.id], names=[None, "k"])
            ),
            ["id", "amount", "level_0", "k"],
        ),
        (lambda f: f.set_axis(pd.date_range("2026-01-01", periods=6)), ["id", "amount", "index"]),
    ],
    ids=["named", "multi", "strings", "named_range", "multi_partly_named", "dates"],
)
def test_a_meaningful_index_is_kept_as_an_index(shaped, fields: list[str]) -> None:
    frame = shaped(ORDERS)
    stored = for_storage("orders", frame)
    assert stored.table.column_names == fields  # real, named columns in the file
    assert list(stored.frame.columns) == list(frame.columns)
    # the same names, dtypes and values (a named RangeIndex, stored as a column, reads
    # back as an Index of int64; a DatetimeIndex's freq is not stored)
    pd.testing.assert_frame_equal(stored.frame, frame, check_exact=True, check_freq=False)
    assert list(stored.frame.index.names) == list(frame.index.names)
    pd.testing.assert_frame_equal(to_frame(stored.table), stored.frame, check_exact=True)
    assert frame_version(stored.frame) == frame_version(frame)


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (ORDERS.set_index("id", drop=False), ["'id'", "has the name of a column"]),
        (ORDERS.assign(index=1).set_axis(list("abcdef")), ["'index'", "rename_axis"]),
        (ORDERS.set_axis(pd.Index(list("abcdef"), name=0)), ["0", "not a string", "rename_axis"]),
        (ORDERS.set_index(["id", "id"]), ["'id'", "rename_axis"]),
    ],
    ids=["named_as_a_column", "unnamed_where_index_is_a_column", "not_a_string", "twice"],
)
def test_an_index_that_cannot_be_columns_is_refused_in_one_line(
    frame: pd.DataFrame, words: list[str]
) -> None:
    with pytest.raises(UnstorableOutput) as caught:
        for_storage("orders", frame)
    message = str(caught.value)
    assert "asset 'orders'" in message and all(w in message for w in words), message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(
    "index",
    [pd.RangeIndex(6, name="n"), pd.Index(list("abcdef")), pd.Index([9, 9, 8, 8, 7, 7], name="k")],
    ids=["named_range", "strings", "repeated"],
)
def test_quarantine_keeps_the_labels_of_a_meaningful_index(index: pd.Index) -> None:
    @asset(quarantine=True, max_quarantined=0.5, checks=[expect.in_range("amount", min=0.5)])
    def orders() -> pd.DataFrame:
        return ORDERS

    result = validate(orders, (), ORDERS.set_axis(index), _no_reads)
    assert result.quarantined is not None
    kept, removed = [0, 2, 4, 5], [1, 3]
    pd.testing.assert_index_equal(result.frame.index, index[kept], exact=True)
    pd.testing.assert_index_equal(result.quarantined.index, index[removed], exact=True)


def _no_reads(name: str) -> pd.DataFrame:
    raise LookupError(name)


ASSETS = """
import pandas as pd
import pandera.pandas as pa
from vibepiper import asset, expect

ORDERS = pd.DataFrame({"id": [1, 2, 3, 4, 5, 6], "amount": [5.0, -1.0, 7.0, 0.0, 2.0, 3.0]})
DAYS = pd.date_range("2026-01-01", periods=6, unit="ms")

@asset
def positive() -> pd.DataFrame:
    return ORDERS[ORDERS.amount > 0]

@asset
def renumbered() -> pd.DataFrame:
    return ORDERS[ORDERS.amount > 0].reset_index(drop=True)

@asset
def by_id() -> pd.DataFrame:
    return ORDERS.set_index("id")

@asset
def by_id_and_day() -> pd.DataFrame:
    return ORDERS.assign(day=DAYS).set_index(["id", "day"])

@asset
def lettered() -> pd.DataFrame:
    return ORDERS.set_axis(list("abcdef"))

@asset(schema=pa.DataFrameSchema({"amount": pa.Column(float)}, index=pa.Index(int, name="id")))
def schema_on_index() -> pd.DataFrame:
    return ORDERS.set_index("id")

@asset(quarantine=True, max_quarantined=0.5, checks=[expect.in_range("amount", min=0.5)])
def kept() -> pd.DataFrame:
    return ORDERS.sort_values("amount")

@asset(quarantine=True, max_quarantined=0.5, checks=[expect.in_range("amount", min=0.5)])
def kept_by_id() -> pd.DataFrame:
    return ORDERS.set_index("id")

@asset
def downstream(
    positive: pd.DataFrame, by_id: pd.DataFrame, by_id_and_day: pd.DataFrame,
    lettered: pd.DataFrame, kept_by_id: pd.DataFrame,
) -> pd.DataFrame:
    frames = [positive, by_id, by_id_and_day, lettered, kept_by_id]
    seen = [repr(f.index) for f in frames] + [repr(list(f.columns)) for f in frames]
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


def _fields(root: Path, asset: str) -> list[str]:
    path = Project(root).store.path_for(asset, _versions(root)[asset])
    names = pq.read_schema(path).names
    assert not [n for n in names if n.startswith(LEAK)], names
    return names


def test_a_filtered_frame_leaks_no_index_into_the_file_or_sql(published: Path) -> None:
    assert _fields(published, "positive") == ["id", "amount"]
    rows = _query(published, "select * from positive")
    assert rows == [
        {"id": 1, "amount": 5.0},
        {"id": 3, "amount": 7.0},
        {"id": 5, "amount": 2.0},
        {"id": 6, "amount": 3.0},
    ]
    back = Project(published).read("positive")
    assert back.index.equals(pd.RangeIndex(4)) and list(back.columns) == ["id", "amount"]


def test_a_named_index_reads_back_as_an_index_and_is_a_column_in_sql(published: Path) -> None:
    assert _fields(published, "by_id") == ["amount", "id"]
    rows = _query(published, "select id, amount from by_id order by id limit 2")
    assert rows == [{"id": 1, "amount": 5.0}, {"id": 2, "amount": -1.0}]
    back = Project(published).read("by_id")
    pd.testing.assert_frame_equal(back, ORDERS.set_index("id"), check_exact=True)
    assert back.index.name == "id" and back.index.dtype == "int64"


def test_a_multi_index_reads_back_as_itself_and_is_columns_in_sql(published: Path) -> None:
    assert _fields(published, "by_id_and_day") == ["amount", "id", "day"]
    rows = _query(
        published, "select id, strftime(day, '%Y-%m-%d') as day from by_id_and_day limit 1"
    )
    assert rows == [{"id": 1, "day": "2026-01-01"}]
    days = pd.date_range("2026-01-01", periods=6, unit="ms")
    want = ORDERS.assign(day=days).set_index(["id", "day"])
    pd.testing.assert_frame_equal(Project(published).read("by_id_and_day"), want)


def test_an_unnamed_index_of_strings_is_the_column_index_in_sql(published: Path) -> None:
    assert _fields(published, "lettered") == ["id", "amount", "index"]
    rows = _query(published, 'select "index" from lettered limit 2')
    assert rows == [{"index": "a"}, {"index": "b"}]
    back = Project(published).read("lettered")
    pd.testing.assert_frame_equal(back, ORDERS.set_axis(list("abcdef")))
    assert back.index.name is None


def test_downstream_assets_get_the_index_that_was_published(published: Path) -> None:
    seen = Project(published).read("downstream")["seen"].tolist()
    days = pd.date_range("2026-01-01", periods=6, unit="ms")
    kept = ORDERS.set_index("id")[lambda f: f.amount >= 0.5]
    assert seen == [
        repr(pd.RangeIndex(4)),
        repr(pd.Index([1, 2, 3, 4, 5, 6], name="id")),
        repr(ORDERS.assign(day=days).set_index(["id", "day"]).index),
        repr(pd.Index(list("abcdef"))),
        repr(kept.index),
        repr(["id", "amount"]),
        repr(["amount"]),
        repr(["amount"]),
        repr(["id", "amount"]),
        repr(["amount"]),
    ]


def test_a_pandera_schema_on_the_index_validates(published: Path) -> None:
    results = catalog_rows(
        published,
        "SELECT passed FROM check_results JOIN materializations USING (materialization_id) "
        "WHERE asset = 'schema_on_index'",
    )
    assert results and all(passed for (passed,) in results)
    checked = run_cli(published, "check", "schema_on_index")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    back = Project(published).read("schema_on_index")
    assert back.index.name == "id" and list(back.columns) == ["amount"]


def test_quarantine_keeps_the_index_of_the_kept_rows(published: Path) -> None:
    back = Project(published).read("kept_by_id")
    assert back.index.tolist() == [1, 3, 5, 6] and back.index.name == "id"
    rows = _query(published, "select id, amount from quarantine.kept_by_id order by id")
    assert rows == [{"id": 2, "amount": -1.0}, {"id": 4, "amount": 0.0}]


def test_quarantined_rows_leak_no_index(published: Path) -> None:
    rows = _query(published, "select * from quarantine.kept")
    assert [sorted(r) for r in rows] == [["_vp_reason", "amount", "id"]] * 2
    assert Project(published).read("kept").index.equals(pd.RangeIndex(4))


def test_the_data_version_does_not_depend_on_row_numbers(published: Path, tmp_path: Path) -> None:
    versions = _versions(published)
    assert versions["positive"] == versions["renumbered"]
    again = write_project(tmp_path / "again", {"shop": ASSETS})
    assert run_cli(again, "materialize").returncode == 0
    assert _versions(again) == versions
