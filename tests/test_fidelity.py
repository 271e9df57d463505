"""What is read back is what was published: the type matrix (tests/helpers/type_cases.py,
the table in docs/types.md) through real runs, and a property over generated frames.

For every case, either the asset publishes and `read()`, `show`, `query`, a downstream
asset in the same run and one in a later run all get the same values and dtypes, with
the content hash of the frame equal to the hash of what is read back; or publishing
fails with one line naming the asset and the column.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import invoke, run_cli, write_project
from tests.helpers.type_cases import CASES
from vibepiper import Project
from vibepiper.storage.fidelity import UnstorableOutput, for_storage, frame_version, to_frame
from vibepiper.versioning.data_version import table_version

HERE = Path(__file__).resolve().parent
PUBLISHED = [c for c, (_, want) in CASES.items() if not want.startswith("refused")]
REFUSED = [c for c in CASES if c not in PUBLISHED]


def _project(root: Path) -> Path:
    write_project(root, {})
    shutil.copy(HERE / "helpers" / "type_cases.py", root / "type_assets.py")
    (root / "pyproject.toml").write_text('[tool.vibepiper]\nmodules = ["type_assets"]\n')
    return root


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every case materialized in one uninterrupted run (downstream assets get their
    inputs from memory)."""
    root = _project(tmp_path_factory.mktemp("types"))
    done = run_cli(root, "materialize", timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr  # the refused cases fail
    return root


def _versions(root: Path, home: str = ".vibepiper") -> dict[str, str]:
    import duckdb

    con = duckdb.connect(str(root / home / "catalog.duckdb"), read_only=True)
    try:
        return dict(
            con.execute("SELECT asset, data_version FROM current_materializations").fetchall()
        )
    finally:
        con.close()


def _expected(case: str) -> pd.DataFrame:
    build = CASES[case][0]
    made = build()
    frame = to_frame(made) if not isinstance(made, pd.DataFrame) else made
    return for_storage(f"t_{case}", frame).frame


@pytest.mark.parametrize("case", PUBLISHED)
def test_a_published_case_reads_back_exactly(matrix: Path, case: str) -> None:
    project = Project(matrix)
    back = project.read(f"t_{case}")
    handed = _expected(case)  # what the same run handed the downstream asset
    pd.testing.assert_frame_equal(back, handed, check_exact=True)
    assert str(back.dtypes["v"]) == CASES[case][1]
    assert frame_version(handed) == _versions(matrix)[f"t_{case}"]
    stored = pq.read_table(project.store.path_for(f"t_{case}", _versions(matrix)[f"t_{case}"]))
    assert table_version(stored) == _versions(matrix)[f"t_{case}"]


@pytest.mark.parametrize("case", REFUSED)
def test_a_refused_case_fails_with_one_line(matrix: Path, case: str) -> None:
    import duckdb

    con = duckdb.connect(str(matrix / ".vibepiper" / "catalog.duckdb"), read_only=True)
    try:
        found = dict(
            con.execute(
                "SELECT asset, status || '|' || coalesce(error, '') FROM materializations "
                "WHERE asset IN (?, ?)",
                [f"t_{case}", f"d_{case}"],
            ).fetchall()
        )
    finally:
        con.close()
    status, error = found[f"t_{case}"].split("|", 1)
    assert status == "failed"
    assert len(error.strip().splitlines()) == 1, error
    assert f"asset 't_{case}'" in error and ("column 'v'" in error or "index" in error), error
    assert CASES[case][1].removeprefix("refused: ") in error, error
    assert found[f"d_{case}"].startswith("blocked|")
    assert not (matrix / ".vibepiper" / "store" / f"t_{case}").exists() or not list(
        (matrix / ".vibepiper" / "store" / f"t_{case}").glob("*.parquet")
    )


def test_a_resumed_run_reproduces_an_uninterrupted_one(matrix: Path, tmp_path: Path) -> None:
    """Upstream assets in one run, their downstream assets in later ones (inputs read
    from Parquet, in this process and in worker processes): the same data versions."""
    root = _project(tmp_path / "resumed")
    first = run_cli(root, "materialize", "t_*", timeout=300)
    assert first.returncode == 1, first.stderr
    second = run_cli(root, "materialize", "d_*", "--exclude", "d_int64 d_bool", timeout=300)
    assert second.returncode == 1, second.stderr  # only the refused cases' are blocked
    third = run_cli(root, "materialize", "d_int64", "d_bool", "--executor", "processes")
    assert third.returncode == 0, third.stdout + third.stderr
    uninterrupted, resumed = _versions(matrix), _versions(root)
    assert uninterrupted == resumed
    assert {f"d_{c}" for c in PUBLISHED} <= set(resumed)


def test_show_and_query_read_every_published_case(matrix: Path) -> None:
    for case in PUBLISHED:
        shown = invoke(matrix, "show", f"t_{case}")
        assert shown.exit_code == 0, (case, shown.output)
        queried = invoke(matrix, "query", f"select * from t_{case}", "--json")
        assert queried.exit_code == 0, (case, queried.output)
        rows = json.loads(queried.output)
        assert len(rows) == len(_expected(case)), case


def test_query_gives_the_published_values(matrix: Path) -> None:
    """DuckDB reads the same files: the same values for the types it has."""
    simple = ["int_object_nulls", "bigint_object", "strings_object", "bool_object_nulls"]
    for case in [*simple, "lists", "structs"]:
        rows = json.loads(invoke(matrix, "query", f"select v from t_{case}", "--json").output)
        got = [r["v"] for r in rows]
        want = [None if _missing(v) else v for v in _expected(case)["v"].tolist()]
        assert got == want, case


def test_sql_sees_the_columns_every_reader_gets(matrix: Path) -> None:
    """The index as stored (docs/types.md, "The index"): row numbers are not stored; any
    other index reads back as the index and is stored as columns named by its levels (an
    unnamed one `index`), so the file (what `query` reads) never has `__index_level_0__`."""
    project = Project(matrix)
    versions = _versions(matrix)
    for case in PUBLISHED:
        back = project.read(f"t_{case}")
        path = project.store.path_for(f"t_{case}", versions[f"t_{case}"])
        assert pq.read_schema(path).names == [*back.columns, *_index_fields(back)], case
    assert list(_expected("named_index").index.names) == ["key"]
    assert _index_fields(_expected("multi_index")) == ["key", "day"]
    assert _index_fields(_expected("unnamed_string_index")) == ["index"]
    assert _expected("unnamed_string_index").index.name is None
    assert _index_fields(_expected("filtered_index")) == []
    assert _index_fields(_expected("named_range_index")) == ["n"]


def _index_fields(frame: pd.DataFrame) -> list[str]:
    """The columns a frame's index is stored as: none for rows numbered 0, 1, 2...; else
    the levels' names (an unnamed level as `reset_index()` names it)."""
    if isinstance(frame.index, pd.RangeIndex) and frame.index.name is None:
        return []
    return [str(c) for c in pd.DataFrame(index=frame.index).reset_index().columns]


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def test_every_published_version_passes_its_checks_again(matrix: Path) -> None:
    checked = run_cli(matrix, "check", "t_bigint_object", "t_int_object_nulls")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 failed" in checked.stdout


def test_a_fresh_process_reads_every_file_to_its_version(matrix: Path) -> None:
    """No registration of pandas' types, no import of VibePiper's reader: the hash of
    what pyarrow reads in a new process is the recorded data version."""
    versions = {a: v for a, v in _versions(matrix).items() if a.startswith("t_")}
    code = (
        "import json, sys, pyarrow.parquet as pq\n"
        "from vibepiper.versioning.data_version import table_version\n"
        "paths = json.loads(sys.argv[1])\n"
        "print(json.dumps({a: table_version(pq.read_table(p)) for a, p in paths.items()}))\n"
    )
    paths = {
        a: str(matrix / ".vibepiper" / "store" / a / f"{v}.parquet") for a, v in versions.items()
    }
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(out.stdout) == versions


# -- a property over generated frames --------------------------------------------------

_ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_cells = st.one_of(
    st.none(),
    _ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.booleans(),
    st.lists(st.one_of(st.none(), _ints), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b"]), _ints, max_size=2),
    st.datetimes(),
)


@st.composite
def _columns(draw: st.DrawFn) -> pd.Series:
    kind = draw(st.sampled_from(["object", "int", "Int64", "float", "str", "datetime", "mixed"]))
    size = draw(st.integers(min_value=0, max_value=6))
    if kind == "mixed":
        return pd.Series(draw(st.lists(_cells, min_size=size, max_size=size)), dtype=object)
    if kind == "object":
        cell = draw(st.sampled_from([_ints, st.text(max_size=4), st.lists(_ints, max_size=2)]))
        values = draw(st.lists(st.one_of(st.none(), cell), min_size=size, max_size=size))
        return pd.Series(values, dtype=object)
    if kind == "int":
        return pd.Series(draw(st.lists(_ints, min_size=size, max_size=size)), dtype="int64")
    if kind == "Int64":
        values = draw(st.lists(st.one_of(st.none(), _ints), min_size=size, max_size=size))
        return pd.Series(values, dtype="Int64")
    if kind == "float":
        return pd.Series(draw(st.lists(st.floats(), min_size=size, max_size=size)), dtype=float)
    if kind == "str":
        values = draw(st.lists(st.one_of(st.none(), st.text()), min_size=size, max_size=size))
        return pd.Series(values, dtype="str")
    unit = draw(st.sampled_from(["s", "ms", "us", "ns"]))
    tz = draw(st.sampled_from([None, "UTC", "America/New_York"]))
    stamps = draw(
        st.lists(
            st.datetimes(
                min_value=pd.Timestamp("1700-01-01"), max_value=pd.Timestamp("2200-01-01")
            ),
            min_size=size,
            max_size=size,
        )
    )
    series = pd.Series(pd.to_datetime(stamps)).astype(f"datetime64[{unit}]")
    return series.dt.tz_localize(tz, nonexistent="NaT", ambiguous="NaT") if tz else series


@st.composite
def _frames(draw: st.DrawFn) -> pd.DataFrame:
    columns = draw(st.lists(_columns(), min_size=1, max_size=3))
    size = min(len(c) for c in columns)
    frame = pd.DataFrame(
        {f"c{i}": c.iloc[:size].reset_index(drop=True) for i, c in enumerate(columns)}
    )
    index = draw(st.sampled_from(["default", "reversed", "named", "strings", "column"]))
    if index == "reversed":  # row numbers: dropped
        return frame.iloc[::-1]
    if index == "named":
        return frame.set_axis(pd.Index([i * 3 for i in range(size)], name="k"))
    if index == "strings":  # unnamed, kept: stored as the column "index"
        return frame.set_axis(pd.Index([f"r{i}" for i in range(size)]))
    return frame.set_index("c0") if index == "column" and len(columns) > 1 else frame


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_frames())
def test_what_is_stored_reads_back_as_what_was_handed_on(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    """Any frame (with any index): refused with one line, or its Parquet file reads back
    as exactly the frame handed downstream, with the same content hash."""
    try:
        stored = for_storage("generated", frame)
    except UnstorableOutput as exc:
        assert len(str(exc).splitlines()) == 1 and "asset 'generated'" in str(exc)
        return
    path = tmp_path / "f.parquet"
    pq.write_table(stored.table, path)
    table = pq.read_table(path)
    pd.testing.assert_frame_equal(to_frame(table), stored.frame, check_exact=True)
    assert table_version(table) == table_version(stored.table)
    again = for_storage("generated", stored.frame)  # what is read back is stored as it is
    assert table_version(again.table) == table_version(stored.table)
