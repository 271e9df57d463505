"""Checks run as SQL over a Parquet file (`validation.sql_checks`), never loading it.

Each built-in expectation and each schema feature passes and fails with exact counts and
samples; the key property is that for random small files and random checks the SQL path
agrees with the pandas path (`expectations.evaluate`, `schema_check.validate_schema` on
the frame the file reads back as). The cases where they cannot agree are those the
module's docstring lists, and are left out of the properties by name below.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import tempfile
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vibepiper import engine, expect, register_expectation
from vibepiper.definitions.expect import Expectation, Kind, Severity
from vibepiper.validation.expectations import evaluate
from vibepiper.validation.outcome import SAMPLE_ROWS, CheckOutcome
from vibepiper.validation.schema_check import validate_schema
from vibepiper.validation.sql_checks import run_sql_checks, sql_problem

ASSET = "orders"
OWNER = f"asset '{ASSET}'"
UTC = dt.UTC
NAN, INF = float("nan"), float("inf")

Tables = dict[str, pyarrow.Table]


# --------------------------------------------------------------------------------------
# helpers: files, views, and both paths
# --------------------------------------------------------------------------------------


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def open_views(folder: Path, tables: Tables) -> Any:
    """A connection in which each table is a view (of its name) over its Parquet file."""
    con = engine.connect()
    for i, (name, table) in enumerate(tables.items()):
        path = folder / f"{i}.parquet"
        pq.write_table(table, path)
        literal = "'" + str(path).replace("'", "''") + "'"
        con.execute(f"CREATE VIEW {quoted(name)} AS SELECT * FROM read_parquet({literal})")
    return con


def sql_outcomes(
    folder: Path,
    table: pyarrow.Table,
    checks: Sequence[Expectation] = (),
    schema: Any = None,
    others: Tables | None = None,
    sql_checks: Sequence[tuple[str, Severity, str]] = (),
    name: str = ASSET,
) -> tuple[CheckOutcome, ...]:
    con = open_views(folder, {name: table, **(others or {})})
    try:
        return run_sql_checks(con, name, table.schema, schema, checks, sql_checks)
    finally:
        con.close()


def reader(others: Tables) -> Callable[[str], pd.DataFrame]:
    def read(name: str) -> pd.DataFrame:
        return others[name].to_pandas()  # KeyError for any other name

    return read


def pandas_outcomes(
    table: pyarrow.Table, checks: Sequence[Expectation], others: Tables | None = None
) -> list[CheckOutcome]:
    """The pandas path's outcomes for the same data: the frame the file reads back as."""
    frame = table.to_pandas()
    return [evaluate(ASSET, e, frame, reader(others or {})).outcome for e in checks]


def by_name(outcomes: Sequence[CheckOutcome]) -> dict[str, CheckOutcome]:
    return {o.name: o for o in outcomes}


def one(outcomes: Sequence[CheckOutcome]) -> CheckOutcome:
    (outcome,) = outcomes
    return outcome


def rows(outcome: CheckOutcome) -> list[dict[str, Any]]:
    assert outcome.sample is not None
    found = json.loads(outcome.sample)
    assert isinstance(found, list) and 1 <= len(found) <= SAMPLE_ROWS
    return found


def table_of(**columns: Any) -> pyarrow.Table:
    """A table from lists (NaN stays NaN, None is null) or Arrow arrays."""
    return pyarrow.table(
        {k: v if isinstance(v, pyarrow.Array) else pyarrow.array(v) for k, v in columns.items()}
    )


ORDERS = table_of(
    id=[1, 2, 3, 4, 5, 6],
    qty=pyarrow.array([5, None, 2, 2, -1, 7], pyarrow.int64()),
    price=[1.5, float("nan"), None, 0.0, -0.0, float("inf")],
    status=["new", "paid", None, "lost", "paid", ""],
    cid=pyarrow.array([10, 11, None, 99, 10, 12], pyarrow.int64()),
)
CUSTOMERS = table_of(id=[10, 11, 12, None])


# --------------------------------------------------------------------------------------
# built-in expectations: pass and fail
# --------------------------------------------------------------------------------------


def test_not_null_counts_null_and_nan(tmp_path: Path) -> None:
    found = by_name(
        sql_outcomes(tmp_path, ORDERS, [expect.not_null("id"), expect.not_null("price")])
    )
    assert found["not_null_id"].passed
    price = found["not_null_price"]
    assert (price.passed, price.failing_rows) == (False, 2)  # NaN is null, as in pandas
    assert price.message == "not_null('price') failed for 2 of 6 rows"
    assert [r["id"] for r in rows(price)] == [2, 3]
    assert list(rows(price)[0]) == ["price", "id", "qty", "status", "cid"]  # named first


def test_not_null_of_strings(tmp_path: Path) -> None:
    outcome = one(sql_outcomes(tmp_path, ORDERS, [expect.not_null("status", severity="warn")]))
    assert (outcome.passed, outcome.failing_rows, outcome.severity) == (False, 1, Severity.WARN)
    assert rows(outcome) == [{"status": None, "id": 3, "qty": 2, "price": None, "cid": None}]


def test_unique_counts_every_repeated_row_nulls_equal(tmp_path: Path) -> None:
    data = table_of(k=pyarrow.array([1, 1, None, None, 2], pyarrow.int64()), n=list("abcde"))
    outcome = one(sql_outcomes(tmp_path, data, [expect.unique("k")]))
    assert (outcome.passed, outcome.failing_rows) == (False, 4)
    assert [r["n"] for r in rows(outcome)] == ["a", "b", "c", "d"]
    assert one(sql_outcomes(tmp_path, data, [expect.unique("n")])).passed


def test_unique_of_floats_nan_and_null_and_signed_zero_are_equal(tmp_path: Path) -> None:
    data = table_of(f=[0.0, -0.0, float("nan"), None, 1.0])
    outcome = one(sql_outcomes(tmp_path, data, [expect.unique("f")]))
    assert (
        outcome.failing_rows == 4 == one(pandas_outcomes(data, [expect.unique("f")])).failing_rows
    )


def test_unique_of_several_columns(tmp_path: Path) -> None:
    data = table_of(a=[1, 1, 1, None, None], b=["x", "x", "y", None, None], n=[1, 2, 3, 4, 5])
    outcome = one(sql_outcomes(tmp_path, data, [expect.unique("a", "b")]))
    assert (outcome.name, outcome.failing_rows) == ("unique_a_b", 4)
    assert [list(r)[:2] for r in rows(outcome)] == [["a", "b"]] * 4
    assert [r["n"] for r in rows(outcome)] == [1, 2, 4, 5]
    assert one(sql_outcomes(tmp_path, data, [expect.unique("b", "n")])).passed


def test_accepted_values(tmp_path: Path) -> None:
    checks = [
        expect.accepted_values("status", ["new", "paid", "lost", ""]),
        expect.accepted_values("status", ["new", "paid"], name="narrow"),
        expect.accepted_values("qty", [2, 5.0, True], name="numbers"),
    ]
    found = by_name(sql_outcomes(tmp_path, ORDERS, checks))
    assert found["accepted_values_status"].passed  # the null is not judged
    assert (found["narrow"].failing_rows, [r["status"] for r in rows(found["narrow"])]) == (
        2,
        ["lost", ""],
    )
    assert found["numbers"].failing_rows == 2  # 5.0 is 5, True is 1: -1 and 7 fail
    assert [r["qty"] for r in rows(found["numbers"])] == [-1, 7]


def test_accepted_values_with_quotes_and_no_values(tmp_path: Path) -> None:
    data = table_of(s=["o'brien", 'say "hi"', "x"])
    found = by_name(
        sql_outcomes(
            tmp_path,
            data,
            [
                expect.accepted_values("s", ["o'brien", 'say "hi"'], name="quotes"),
                expect.accepted_values("s", [], name="none"),
            ],
        )
    )
    assert [r["s"] for r in rows(found["quotes"])] == ["x"]
    assert found["none"].failing_rows == 3


def test_in_range_inclusive_bounds_nan_not_judged_inf_judged(tmp_path: Path) -> None:
    checks = [
        expect.in_range("qty", 2, 5, name="qty"),
        expect.in_range("price", min=0, name="price_min"),
        expect.in_range("price", max=1.5, name="price_max"),
    ]
    found = by_name(sql_outcomes(tmp_path, ORDERS, checks))
    assert [r["qty"] for r in rows(found["qty"])] == [-1, 7]  # 2 and 5 are in
    assert found["price_min"].passed  # -0.0 is not below 0, NaN is not judged
    assert (found["price_max"].failing_rows, rows(found["price_max"])[0]["price"]) == (1, "inf")
    assert found["qty"].message == "in_range('qty', min=2, max=5) failed for 2 of 6 rows"


def test_in_range_of_times_and_strings(tmp_path: Path) -> None:
    data = table_of(
        t=pyarrow.array([dt.datetime(2024, 1, 1), dt.datetime(2025, 1, 1), None]),
        z=pyarrow.array(
            [dt.datetime(2024, 1, 1, tzinfo=UTC), None, dt.datetime(2023, 1, 1, tzinfo=UTC)],
            pyarrow.timestamp("us", tz="Europe/Paris"),
        ),
        s=["apple", "Zebra", "é"],
    )
    checks = [
        expect.in_range("t", pd.Timestamp("2024-01-01"), pd.Timestamp("2024-12-31"), name="t"),
        expect.in_range(
            "z", min=dt.datetime(2024, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))), name="z"
        ),
        expect.in_range("s", min="a", max="z", name="s"),
        expect.in_range("t", min=pd.Timestamp("2024-01-01", tz="UTC"), name="zoned_bound"),
    ]
    found = by_name(sql_outcomes(tmp_path, data, checks))
    assert rows(found["t"])[0]["t"] == "2025-01-01T00:00:00"
    assert rows(found["z"]) == [
        {"z": "2023-01-01T01:00:00+01:00", "t": None, "s": "é"}  # in the column's zone
    ]
    assert [r["s"] for r in rows(found["s"])] == ["Zebra", "é"]  # byte order, as pandas
    bad = found["zoned_bound"]
    assert (bad.passed, bad.failing_rows) == (False, 0)
    assert "could not be evaluated: TypeError" in bad.message
    assert [(o.passed, o.failing_rows) for o in pandas_outcomes(data, checks)] == [
        (o.passed, o.failing_rows) for o in found.values()
    ]


def test_in_range_of_an_uncomparable_bound_fails_as_in_pandas(tmp_path: Path) -> None:
    exp = expect.in_range("status", min=0)
    outcome = one(sql_outcomes(tmp_path, ORDERS, [exp]))
    expected = one(pandas_outcomes(ORDERS, [exp]))
    assert (outcome.passed, outcome.failing_rows) == (expected.passed, 0) == (False, 0)
    assert outcome.message.startswith("in_range('status', min=0, max=None) could not be evaluated")


def test_row_count(tmp_path: Path) -> None:
    checks = [
        expect.row_count(min=6, max=6, name="exact"),
        expect.row_count(min=7, name="low"),
        expect.row_count(min=1, max=5, name="high"),
    ]
    found = by_name(sql_outcomes(tmp_path, ORDERS, checks))
    assert found["exact"].passed
    assert (found["low"].message, found["low"].failing_rows) == ("6 rows, expected at least 7", 0)
    assert found["high"].message == "6 rows, expected at least 1 and at most 5"
    assert [o.message for o in pandas_outcomes(ORDERS, checks)] == [
        o.message for o in found.values()
    ]


def test_relationship(tmp_path: Path) -> None:
    exp = expect.relationship("cid", to="customers", field="id")
    outcome = one(sql_outcomes(tmp_path, ORDERS, [exp], others={"customers": CUSTOMERS}))
    assert (outcome.passed, outcome.failing_rows) == (False, 1)  # 99; the null is not judged
    assert rows(outcome) == [{"cid": 99, "id": 4, "qty": 2, "price": 0.0, "status": "lost"}]
    assert outcome.message == (
        "relationship('cid', to='customers', field='id') failed for 1 of 6 rows"
    )
    passing = table_of(cid=[10, 12, None])
    assert one(sql_outcomes(tmp_path, passing, [exp], others={"customers": CUSTOMERS})).passed


def test_relationship_across_types_as_pandas_isin(tmp_path: Path) -> None:
    others = {"codes": table_of(code=["10", "11"], flag=[True, False], f=[10.0, 12.0])}
    checks = [
        expect.relationship("cid", to="codes", field="code", name="text"),  # never equal
        expect.relationship("cid", to="codes", field="f", name="float"),
        expect.relationship("id", to="codes", field="flag", name="bool"),  # True is 1
    ]
    found = sql_outcomes(tmp_path, ORDERS, checks, others=others)
    expected = pandas_outcomes(ORDERS, checks, others)
    assert [(o.passed, o.failing_rows) for o in found] == [(False, 5), (False, 2), (False, 5)]
    assert [(o.passed, o.failing_rows) for o in expected] == [
        (o.passed, o.failing_rows) for o in found
    ]


def test_relationship_missing_field_and_missing_asset(tmp_path: Path) -> None:
    checks = [
        expect.relationship("cid", to="customers", field="key", name="field"),
        expect.relationship("cid", to="suppliers", field="id", name="asset"),
    ]
    found = by_name(sql_outcomes(tmp_path, ORDERS, checks, others={"customers": CUSTOMERS}))
    assert found["field"].message == "column 'key' not found in asset 'customers' (its columns: id)"
    assert not found["asset"].passed
    assert found["asset"].message.startswith("relationship('cid', to='suppliers', field='id')")
    assert (
        "could not be evaluated" in found["asset"].message and "suppliers" in found["asset"].message
    )


def test_missing_columns_are_failures_naming_them(tmp_path: Path) -> None:
    checks = [
        expect.not_null("nope"),
        expect.unique("id", "nope"),
        expect.accepted_values("nope", [1]),
        expect.in_range("nope", min=1),
        expect.relationship("nope", to="customers", field="id"),
    ]
    found = sql_outcomes(tmp_path, ORDERS, checks, others={"customers": CUSTOMERS})
    message = "column 'nope' not found in asset 'orders' (its columns: id, qty, price, status, cid)"
    assert [(o.passed, o.failing_rows, o.message) for o in found] == [(False, 0, message)] * 5
    assert [o.message for o in pandas_outcomes(ORDERS, checks, {"customers": CUSTOMERS})] == [
        message
    ] * 5


def test_sql_expectation(tmp_path: Path) -> None:
    checks = [
        expect.sql(f"select id, qty from {ASSET} where qty < 0", name="negative"),
        expect.sql(f"select * from {ASSET} where qty > 100;  \n", name="none"),
        expect.sql(f"select * from {ASSET} where qty > 1 -- big ones", name="comment"),
        expect.sql(
            f"select * from {ASSET} o where cid not in (select id from customers "
            "where id is not null)",
            name="others",
        ),
    ]
    found = by_name(sql_outcomes(tmp_path, ORDERS, checks, others={"customers": CUSTOMERS}))
    assert (found["negative"].failing_rows, found["negative"].message) == (
        1,
        "query returned 1 failing rows",
    )
    assert rows(found["negative"]) == [{"id": 5, "qty": -1}]  # the query's columns only
    assert found["none"].passed
    assert found["comment"].failing_rows == 4
    assert len(rows(found["comment"])) == 4
    assert found["others"].failing_rows == 1


def test_a_query_that_fails_is_a_failed_outcome_not_an_exception(tmp_path: Path) -> None:
    checks = [
        expect.sql("select * from orders where", name="syntax"),
        expect.sql("select * from nowhere", name="table"),
        expect.sql("select 1/0 from orders where qty = 'x'", name="runtime"),
        expect.not_null("id"),
    ]
    found = by_name(sql_outcomes(tmp_path, ORDERS, checks))
    for name in ("syntax", "table", "runtime"):
        outcome = found[name]
        assert (outcome.passed, outcome.failing_rows) == (False, 0)
        assert outcome.message.startswith(f"query of check '{name}' on asset 'orders' failed: ")
    assert "nowhere" in found["table"].message
    assert found["not_null_id"].passed


def test_sql_checks_are_outcomes_of_kind_check(tmp_path: Path) -> None:
    queries = [
        ("no_loss", Severity.ERROR, f"select * from {ASSET} where status = 'lost'"),
        ("new", Severity.WARN, f"select * from {ASSET} where status = 'new'"),
        ("broken", Severity.ERROR, "select nonsense"),
    ]
    found = by_name(sql_outcomes(tmp_path, ORDERS, sql_checks=queries))
    assert [(o.kind, o.severity) for o in found.values()] == [
        ("check", Severity.ERROR),
        ("check", Severity.WARN),
        ("check", Severity.ERROR),
    ]
    assert (found["no_loss"].failing_rows, rows(found["no_loss"])[0]["status"]) == (1, "lost")
    assert (found["new"].passed, found["new"].failing_rows) == (False, 1)
    assert found["broken"].message.startswith("query of check 'broken' on asset 'orders' failed")


def test_outcomes_in_the_pandas_paths_order(tmp_path: Path) -> None:
    checks = [
        expect.row_count(min=1),
        expect.sql(f"select * from {ASSET} where false"),
        expect.not_null("id"),
        expect.unique("id"),
    ]
    found = sql_outcomes(
        tmp_path, ORDERS, checks, schema=pa.DataFrameSchema({"id": pa.Column(int)})
    )
    assert [o.name for o in found] == ["schema", "not_null_id", "unique_id", "row_count", "sql"]


def test_names_with_quotes_spaces_and_unicode(tmp_path: Path) -> None:
    name = 'my "asset" ü'
    data = table_of(**{'we"ird col': [1, 1, None], "ünï cødé": ["a", "b'", "b'"]})
    checks = [
        expect.not_null('we"ird col'),
        expect.unique("ünï cødé"),
        expect.accepted_values("ünï cødé", ["a"]),
        expect.sql(f'select * from {quoted(name)} where "we""ird col" = 1'),
    ]
    schema = pa.DataFrameSchema(
        {
            'we"ird col': pa.Column(int, nullable=True),
            "ünï cødé": pa.Column(str, pa.Check.str_matches("b'")),
        }
    )
    found = by_name(sql_outcomes(tmp_path, data, checks, schema=schema, name=name))
    assert found['not_null_we"ird col'].failing_rows == 1
    assert found["unique_ünï cødé"].failing_rows == 2
    assert [r["ünï cødé"] for r in rows(found["accepted_values_ünï cødé"])] == ["b'", "b'"]
    assert found["sql"].failing_rows == 2
    assert found["schema.ünï cødé.str_matches('b'')"].failing_rows == 1


def test_nan_where_the_files_statistics_leave_it_out(tmp_path: Path) -> None:
    """pyarrow's min/max statistics leave NaN out, and DuckDB believes them (unless
    `parquet_can_have_nan` is set): here min = max = 0, so `isnan(f)` would be false."""
    data = table_of(f=[0.0, NAN, NAN])
    checks = [expect.not_null("f"), expect.unique("f"), expect.in_range("f", max=0)]
    schema = pa.DataFrameSchema({"f": pa.Column(float)})
    found = by_name(sql_outcomes(tmp_path, data, checks, schema=schema))
    assert {n: o.failing_rows for n, o in found.items()} == {
        "schema.f.not_nullable": 2,
        "not_null_f": 2,
        "unique_f": 2,
        "in_range_f": 0,
    }
    assert [r["f"] for r in rows(found["not_null_f"])] == [None, None]


def test_a_column_named_twice_in_unique(tmp_path: Path) -> None:
    data = table_of(k=[1, 1, 2, None, None])
    checks = [expect.unique("k", "k", name="twice"), expect.unique("k")]
    found = sql_outcomes(tmp_path, data, checks)
    assert [o.failing_rows for o in found] == [4, 4]
    assert [o.failing_rows for o in pandas_outcomes(data, checks)] == [4, 4]


def test_float32_compares_in_its_own_precision(tmp_path: Path) -> None:
    data = table_of(g=pyarrow.array([0.1, 0.2], pyarrow.float32()))
    checks = [
        expect.in_range("g", max=0.1, name="max"),  # float32(0.1) is not above 0.1
        expect.in_range("g", min=0.2, name="min"),
        expect.accepted_values("g", [0.1], name="isin"),  # isin compares as float64
    ]
    found = sql_outcomes(tmp_path, data, checks)
    assert [o.failing_rows for o in found] == [1, 1, 2]
    assert [o.failing_rows for o in pandas_outcomes(data, checks)] == [1, 1, 2]


def test_missing_bounds_compare_with_nothing(tmp_path: Path) -> None:
    data = table_of(t=pyarrow.array([dt.datetime(2024, 1, 1)]), s=["x"], f=[1.0])
    checks = [
        expect.in_range("t", min="", name="nat_text"),  # pandas reads "" as NaT
        expect.in_range("t", max=pd.NaT, name="nat"),
        expect.in_range("s", max=NAN, name="nan_text"),
        expect.in_range("f", min=NAN, name="nan"),
    ]
    found = sql_outcomes(tmp_path, data, checks)
    assert [o.passed for o in found] == [True] * 4
    assert [o.passed for o in pandas_outcomes(data, checks)] == [True] * 4


def test_dates_and_decimals(tmp_path: Path) -> None:
    data = table_of(
        d=pyarrow.array([dt.date(2024, 1, 1), dt.date(2024, 2, 1), None]),
        m=pyarrow.array(
            [decimal.Decimal("1.50"), decimal.Decimal("2.25"), None], pyarrow.decimal128(5, 2)
        ),
    )
    checks = [
        expect.in_range("d", max=dt.date(2024, 1, 15), name="d_range"),
        expect.accepted_values("d", [dt.date(2024, 1, 1), dt.datetime(2024, 2, 1)], name="d_in"),
        expect.accepted_values("m", [1.5, decimal.Decimal("2.250"), 2.2], name="m_in"),
        expect.in_range("m", 1.5, 2, name="m_range"),
    ]
    found = by_name(sql_outcomes(tmp_path, data, checks))
    assert {n: o.failing_rows for n, o in found.items()} == {
        "d_range": 1,
        "d_in": 1,  # a datetime is never a date
        "m_in": 0,
        "m_range": 1,
    }
    assert rows(found["m_range"]) == [{"m": "2.25", "d": "2024-02-01"}]
    assert [o.failing_rows for o in pandas_outcomes(data, checks)] == [1, 1, 0, 1]


def test_an_unforeseen_error_is_a_failed_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vibepiper.validation import sql_checks

    def boom(run: Any, exp: Expectation) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setitem(sql_checks._PLANNERS, Kind.NOT_NULL, boom)
    found = sql_outcomes(tmp_path, ORDERS, [expect.not_null("id"), expect.unique("id")])
    assert [(o.name, o.passed, o.message) for o in found] == [
        ("not_null_id", False, "not_null('id') could not be evaluated: RuntimeError: boom"),
        ("unique_id", True, ""),
    ]


def test_few_queries_one_aggregate_for_all_row_checks(tmp_path: Path) -> None:
    """Row-level and count checks share one scan; uniqueness one GROUP BY; relationships
    one query; each failure one sample query."""
    con = open_views(tmp_path, {ASSET: ORDERS, "customers": CUSTOMERS})
    seen: list[str] = []

    class Spy:
        def execute(self, query: str, *args: Any) -> Any:
            seen.append(query)
            return con.execute(query, *args)

        def sql(self, query: str, **kwargs: Any) -> Any:
            seen.append(query)
            return con.sql(query, **kwargs)

    checks = [
        expect.not_null("id"),
        expect.accepted_values("status", ["new", "paid", "lost", ""]),
        expect.in_range("id", 1, 6),
        expect.row_count(min=1),
        expect.unique("id"),
        expect.unique("status", "id"),
        expect.relationship("id", to="customers", field="id", name="rel"),
    ]
    schema = pa.DataFrameSchema(
        {"id": pa.Column(int, pa.Check.ge(0), unique=True), "qty": pa.Column(int, nullable=True)}
    )
    found = run_sql_checks(Spy(), ASSET, ORDERS.schema, schema, checks)
    assert [o.name for o in found if not o.passed] == ["rel"]
    (scan,) = [q for q in seen if q.startswith("SELECT count(*), ")]
    assert scan.count("FILTER (WHERE") == 5  # not_null, accepted_values, in_range, ge, nulls
    assert len([q for q in seen if "GROUPING SETS" in q]) == 1
    assert len(seen) == 1 + 1 + 1 + 1 + 1  # scan, DESCRIBE customers, join, group, sample
    con.close()


# --------------------------------------------------------------------------------------
# pandera schemas
# --------------------------------------------------------------------------------------


class Orders(pa.DataFrameModel):
    a: int = pa.Field(ge=0, le=10)
    b: str = pa.Field(isin=["x", "y"], str_length={"max_value": 1})


ORDERS_SCHEMA = pa.DataFrameSchema(
    {
        "a": pa.Column(int, [pa.Check.ge(0), pa.Check.le(10)]),
        "b": pa.Column(str, [pa.Check.isin(["x", "y"]), pa.Check.str_length(max_value=1)]),
    }
)


def schema_parity(tmp_path: Path, schema: Any, data: pyarrow.Table) -> list[CheckOutcome]:
    """The SQL path's schema outcomes, checked against the pandas path's."""
    found = list(sql_outcomes(tmp_path, data, schema=schema))
    expected = validate_schema(ASSET, schema, data.to_pandas()).outcomes
    assert [(o.name, o.passed, o.failing_rows, o.kind) for o in found] == [
        (o.name, o.passed, o.failing_rows, o.kind) for o in expected
    ]
    return found


@pytest.mark.parametrize("schema", [Orders, ORDERS_SCHEMA], ids=["model", "schema"])
def test_schema_passes(tmp_path: Path, schema: Any) -> None:
    found = schema_parity(tmp_path, schema, table_of(a=[0, 10], b=["x", "y"]))
    assert [(o.name, o.passed, o.kind) for o in found] == [("schema", True, "schema")]


@pytest.mark.parametrize("schema", [Orders, ORDERS_SCHEMA], ids=["model", "schema"])
def test_schema_one_outcome_per_column_and_check(tmp_path: Path, schema: Any) -> None:
    data = table_of(a=[1, -1, 20, 3, -5], b=["x", "z", "y", "zz", "x"])
    found = by_name(schema_parity(tmp_path, schema, data))
    assert {n: o.failing_rows for n, o in found.items()} == {
        "schema.a.greater_than_or_equal_to(0)": 2,
        "schema.a.less_than_or_equal_to(10)": 1,
        "schema.b.isin(['x', 'y'])": 2,
        "schema.b.str_length(None, 1)": 1,
    }
    ge = found["schema.a.greater_than_or_equal_to(0)"]
    assert ge.message == "column 'a' failed greater_than_or_equal_to(0) in 2 rows (e.g. -1, -5)"
    assert rows(ge) == [{"a": -1, "b": "z"}, {"a": -5, "b": "x"}]
    assert rows(found["schema.b.isin(['x', 'y'])"])[0] == {"b": "z", "a": -1}
    assert all(not o.passed and o.blocking and o.kind == "schema" for o in found.values())


@pytest.mark.parametrize("schema", [Orders, ORDERS_SCHEMA], ids=["model", "schema"])
def test_schema_missing_column(tmp_path: Path, schema: Any) -> None:
    outcome = one(schema_parity(tmp_path, schema, table_of(a=[1])))
    assert (outcome.name, outcome.message) == (
        "schema.b.column_in_dataframe",
        "column 'b' is missing",
    )


def test_schema_missing_optional_column_passes(tmp_path: Path) -> None:
    schema = pa.DataFrameSchema(
        {"a": pa.Column(int), "b": pa.Column(int, pa.Check.ge(0), required=False)}
    )
    assert one(schema_parity(tmp_path, schema, table_of(a=[1]))).passed


def test_model_fields_are_not_nullable_by_default(tmp_path: Path) -> None:
    data = table_of(a=[1, None, 3], b=["x", "y", None])
    found = by_name(sql_outcomes(tmp_path, data, schema=Orders))
    assert found["schema.a.not_nullable"].failing_rows == 1
    assert (
        found["schema.a.not_nullable"].message
        == "column 'a' failed not_nullable in 1 row (e.g. None)"
    )
    assert rows(found["schema.b.not_nullable"]) == [{"b": None, "a": 3}]
    assert "schema.a.dtype('int64')" not in found  # an int64 column with a null (see docstring)


def test_not_nullable_counts_nan_in_floats(tmp_path: Path) -> None:
    schema = pa.DataFrameSchema({"f": pa.Column(float)})
    outcome = one(schema_parity(tmp_path, schema, table_of(f=[1.0, float("nan"), None])))
    assert (outcome.name, outcome.failing_rows) == ("schema.f.not_nullable", 2)


def test_column_unique_counts_repeated_values_not_nulls(tmp_path: Path) -> None:
    schema = pa.DataFrameSchema({"a": pa.Column(float, nullable=True, unique=True)})
    data = table_of(a=[1.0, float("nan"), None, 1.0, 2.0])
    outcome = one(schema_parity(tmp_path, schema, data))
    assert (outcome.name, outcome.failing_rows) == ("schema.a.field_uniqueness", 2)
    assert outcome.message == "column 'a' failed field_uniqueness in 2 rows (e.g. 1.0, 1.0)"


def test_column_unique_with_only_nulls_repeated(tmp_path: Path) -> None:
    """The pandas path loses this failure and gives no outcome at all (docstring)."""
    schema = pa.DataFrameSchema({"a": pa.Column(float, nullable=True, unique=True)})
    data = table_of(a=[1.0, None, None])
    assert validate_schema(ASSET, schema, data.to_pandas()).outcomes == []
    assert [o.name for o in sql_outcomes(tmp_path, data, schema=schema) if o.passed] == ["schema"]


def test_schema_unique_counts_each_columns_present_values(tmp_path: Path) -> None:
    schema = pa.DataFrameSchema(
        {"a": pa.Column(float, nullable=True), "b": pa.Column(int)}, unique=["a", "b"]
    )
    data = table_of(a=[1.0, None, None, 1.0, 2.0], b=[1, 2, 2, 1, 1])
    found = by_name(schema_parity(tmp_path, schema, data))
    assert {n: o.failing_rows for n, o in found.items()} == {
        "schema.a.multiple_fields_uniqueness": 2,
        "schema.b.multiple_fields_uniqueness": 4,
    }


def test_strict_reports_extra_columns(tmp_path: Path) -> None:
    class Strict(pa.DataFrameModel):
        a: int

        class Config:
            strict = True

    data = table_of(b=[1, 2], a=[2, 3], c=[3, 4])
    outcome = one(schema_parity(tmp_path, Strict, data))
    assert (outcome.name, outcome.failing_rows) == ("schema.Strict.column_in_schema", 2)
    assert outcome.message == "column 'Strict' failed column_in_schema: b, c"
    unnamed = one(
        sql_outcomes(tmp_path, data, schema=pa.DataFrameSchema({"a": pa.Column(int)}, strict=True))
    )
    assert (unnamed.name, unnamed.message) == (
        "schema.column_in_schema",  # the pandas path says schema.nan.column_in_schema
        "schema failed column_in_schema: b, c",
    )


def test_coerce_checks_the_declared_dtype_as_it_is(tmp_path: Path) -> None:
    schema = pa.DataFrameSchema({"a": pa.Column(int)}, coerce=True)
    outcome = one(sql_outcomes(tmp_path, table_of(a=["1", "2"]), schema=schema))
    assert (outcome.name, outcome.failing_rows) == ("schema.a.dtype('int64')", 2)
    assert outcome.message == "column 'a' failed dtype('int64'): string"


def test_a_wrong_dtype_is_a_whole_column_failure(tmp_path: Path) -> None:
    outcome = one(schema_parity(tmp_path, Orders, table_of(a=[1.5, 2.0], b=["x", "y"])))
    assert (outcome.name, outcome.failing_rows, outcome.sample) == (
        "schema.a.dtype('int64')",
        2,
        None,
    )
    assert outcome.message == "column 'a' failed dtype('int64'): double"


DATETIME: Any = pa.engines.pandas_engine.DateTime
ANY_ZONE = DATETIME(tz="UTC", time_zone_agnostic=True)


def ts(unit: str, tz: str | None = None) -> pyarrow.DataType:
    return pyarrow.timestamp(unit, tz=tz)


DTYPES: list[tuple[Any, pyarrow.DataType, bool]] = [
    (int, pyarrow.int64(), True),
    ("int64", pyarrow.int32(), False),
    ("Int32", pyarrow.int32(), True),
    ("int8", pyarrow.int8(), True),
    ("uint8", pyarrow.int8(), False),
    ("UInt64", pyarrow.uint64(), True),
    ("uint16", pyarrow.uint16(), True),
    (float, pyarrow.float64(), True),
    ("float32", pyarrow.float32(), True),
    ("float32", pyarrow.float64(), False),
    ("Float64", pyarrow.float64(), True),
    (float, pyarrow.int64(), False),
    (bool, pyarrow.bool_(), True),
    ("boolean", pyarrow.bool_(), True),
    (bool, pyarrow.int8(), False),
    (str, pyarrow.string(), True),
    ("string", pyarrow.large_string(), True),
    (str, pyarrow.binary(), False),
    (str, pyarrow.dictionary(pyarrow.int32(), pyarrow.string()), False),
    ("datetime64[ns]", ts("us"), True),
    ("datetime64[ns]", ts("ms"), True),
    (pa.DateTime, ts("ns"), True),
    ("datetime64[ns]", ts("us", "UTC"), False),
    ("datetime64[ns, UTC]", ts("us", "UTC"), True),
    ("datetime64[ns, UTC]", ts("ns"), False),
    (pd.DatetimeTZDtype("ns", UTC), ts("s", "UTC"), True),
    (pd.DatetimeTZDtype("ns", "Europe/Paris"), ts("us", "Europe/Paris"), True),
    (pd.DatetimeTZDtype("ns", "Europe/Paris"), ts("us", "Europe/Berlin"), False),
    (pd.DatetimeTZDtype("ns", "Europe/Paris"), ts("us", "UTC"), False),
    (ANY_ZONE, ts("us", "Asia/Tokyo"), True),
    (ANY_ZONE, ts("us"), False),
    (pa.Date, pyarrow.date32(), True),
    (dt.date, pyarrow.date64(), True),
    (pa.Date, ts("us"), False),
    ("category", pyarrow.dictionary(pyarrow.int32(), pyarrow.string()), True),
    ("category", pyarrow.string(), False),
    (pa.dtypes.Decimal(10, 2), pyarrow.decimal128(10, 2), True),
    (pa.dtypes.Decimal(10, 2), pyarrow.decimal128(12, 2), False),
    (pa.dtypes.Decimal(10, 2), pyarrow.decimal128(10, 3), False),
]


@pytest.mark.parametrize(
    ("dtype", "kind", "accepted"), DTYPES, ids=[f"{d}-{k}" for d, k, _ in DTYPES]
)
def test_dtype_mapping(tmp_path: Path, dtype: Any, kind: pyarrow.DataType, accepted: bool) -> None:
    schema = pa.DataFrameSchema({"a": pa.Column(dtype, nullable=True)})
    data = pyarrow.table({"a": pyarrow.array([None, None], kind)})
    outcome = one(sql_outcomes(tmp_path, data, schema=schema))
    assert outcome.passed is accepted, outcome.message
    if not accepted:
        assert outcome.name == f"schema.a.dtype('{schema.columns['a'].dtype}')"
        assert outcome.message.endswith(f": {kind}")


def check_cases() -> list[tuple[str, pa.Check, list[Any], int]]:
    nums = [1, 2, 3, None, 5]
    words = ["apple", "banana", "", None, "cherry"]
    return [
        ("eq", pa.Check.eq(2), nums, 3),
        ("ne", pa.Check.ne(2), nums, 1),
        ("gt", pa.Check.gt(2), nums, 2),
        ("ge", pa.Check.ge(2), nums, 1),
        ("lt", pa.Check.lt(3), nums, 2),
        ("le", pa.Check.le(3), nums, 1),
        ("in_range", pa.Check.in_range(1, 5), nums, 0),
        ("in_range_open", pa.Check.in_range(1, 5, include_min=False, include_max=False), nums, 2),
        ("isin", pa.Check.isin([1, 2.0, 3]), nums, 1),
        ("notin", pa.Check.notin([5]), nums, 1),
        ("isin_chars", pa.Check.isin("ab"), ["a", "b", "ab", None], 1),
        ("str_matches", pa.Check.str_matches("a|b"), words, 2),  # pandas: ^(a|b)
        ("str_matches_anchored", pa.Check.str_matches("^b.n"), words, 3),
        ("str_contains", pa.Check.str_contains("an+"), words, 3),
        ("str_startswith", pa.Check.str_startswith("ch"), words, 3),
        ("str_endswith", pa.Check.str_endswith("a"), words, 3),
        ("str_length", pa.Check.str_length(1, 5), words, 3),
        ("str_length_exact", pa.Check.str_length(exact_value=6), words, 2),
        ("str_length_unicode", pa.Check.str_length(max_value=1), ["é", "e\u0301", "👍"], 1),
        ("unique_values_eq", pa.Check.unique_values_eq([1, 2, 3, 5]), nums, 0),
        ("unique_values_eq_fails", pa.Check.unique_values_eq([1, 2]), nums, 5),  # every row
    ]


@pytest.mark.parametrize(
    ("label", "check", "values", "failing"),
    check_cases(),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_pandera_checks(
    tmp_path: Path, label: str, check: pa.Check, values: list[Any], failing: int
) -> None:
    schema = pa.DataFrameSchema({"a": pa.Column(checks=check, nullable=True)})
    found = schema_parity(tmp_path, schema, table_of(a=values))
    assert sum(o.failing_rows for o in found) == failing
    assert [o.passed for o in found] == [failing == 0]
    failed = found[0]
    if failing and failed.sample is not None:  # a row-level failure: its rows, whole
        assert all(list(r) == ["a"] for r in rows(failed))
        assert failed.message.startswith(f"column 'a' failed {failed.name.split('.', 2)[2]} in ")


def test_uncomparable_check_is_a_whole_column_failure(tmp_path: Path) -> None:
    schema = pa.DataFrameSchema(
        {"a": pa.Column(str, pa.Check.ge(1)), "b": pa.Column(int, pa.Check.str_length(1))}
    )
    found = by_name(sql_outcomes(tmp_path, table_of(a=["x", "y"], b=[1, 2]), schema=schema))
    assert {n: (o.failing_rows, o.sample) for n, o in found.items()} == {
        "schema.a.greater_than_or_equal_to(1)": (2, None),
        "schema.b.str_length(1)": (2, None),
    }
    assert "TypeError" in found["schema.a.greater_than_or_equal_to(1)"].message


def test_a_bad_pattern_fails_its_check_only(tmp_path: Path) -> None:
    schema = pa.DataFrameSchema(
        {"a": pa.Column(str, [pa.Check.str_matches("a(?=b)"), pa.Check.str_startswith("z")])}
    )
    found = by_name(
        sql_outcomes(
            tmp_path, table_of(a=["x", "zz"]), schema=schema, checks=[expect.not_null("a")]
        )
    )
    bad = found["schema.a.str_matches('a(?=b)')"]  # Python's re, not RE2
    assert (bad.passed, bad.failing_rows) == (False, 0)
    assert bad.message.startswith("column 'a' failed str_matches('a(?=b)'): ")
    assert found["schema.a.str_startswith('z')"].failing_rows == 1
    assert found["not_null_a"].passed


@pytest.mark.parametrize(
    "schema", [object(), {"a": int}, "Orders", 42], ids=["object", "dict", "str", "int"]
)
def test_non_pandera_schema_is_a_failed_outcome(tmp_path: Path, schema: Any) -> None:
    outcome = one(sql_outcomes(tmp_path, table_of(a=[1]), schema=schema))
    assert (outcome.name, outcome.passed, outcome.kind) == ("schema", False, "schema")
    assert (
        outcome.message
        == validate_schema(ASSET, schema, pd.DataFrame({"a": [1]})).outcomes[0].message
    )
    assert sql_problem(OWNER, schema, []).startswith(f"{OWNER}: schema= is ")


# --------------------------------------------------------------------------------------
# sql_problem: what cannot run as SQL
# --------------------------------------------------------------------------------------


@register_expectation("sql_checks_even")
def even(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column] % 2 != 0


class Everything(pa.DataFrameModel):
    """Every feature that runs as SQL."""

    a: int = pa.Field(
        ge=0,
        gt=-1,
        le=10,
        lt=11,
        eq=1,
        ne=2,
        in_range={"min_value": 0, "max_value": 9},
        unique=True,
    )
    b: str = pa.Field(
        isin=["x"],
        notin=["y"],
        str_matches="x",
        str_contains="x",
        str_startswith="x",
        str_endswith="x",
        str_length={"min_value": 1},
        nullable=True,
    )
    c: pd.DatetimeTZDtype = pa.Field(dtype_kwargs={"unit": "ns", "tz": "UTC"}, coerce=True)
    d: dt.date
    e: pa.typing.Category
    f: float = pa.Field(unique_values_eq=[1.0])

    class Config:
        strict = True
        unique = ["a", "b"]  # noqa: RUF012 (pandera reads it from the class)


def test_sql_problem_is_empty_for_everything_supported() -> None:
    checks = [
        expect.not_null("a"),
        expect.unique("a", "b"),
        expect.accepted_values("b", ["x"]),
        expect.in_range("a", 0, 1),
        expect.row_count(min=1),
        expect.relationship("a", to="other", field="id"),
        expect.sql("select * from orders"),
    ]
    assert sql_problem(OWNER, Everything, checks) == ""
    assert sql_problem(OWNER, Everything.to_schema(), checks) == ""
    assert sql_problem(OWNER, None, []) == ""


def test_sql_problem_refuses_a_custom_pandera_check() -> None:
    schema = pa.DataFrameSchema({"a": pa.Column(int, pa.Check(lambda s: s > 0))})
    problem = sql_problem(OWNER, schema, [])
    assert problem == (
        f"{OWNER}: schema column 'a': check <lambda> has no SQL translation; "
        "write it as expect.sql(QUERY) returning the failing rows"
    )
    impostor = pa.Check(lambda s: s >= 0, name="greater_than_or_equal_to")
    assert "no SQL translation" in sql_problem(
        OWNER, pa.DataFrameSchema({"a": pa.Column(int, impostor)}), []
    )


def test_sql_problem_refuses_a_registered_expectation() -> None:
    problem = sql_problem(OWNER, None, [expect.not_null("a"), even("qty")])
    assert problem.startswith(
        f"{OWNER}: expectation 'sql_checks_even_qty' (sql_checks_even('qty'))"
    )
    assert "takes a DataFrame" in problem and "expect.sql(" in problem
    assert "\n" not in problem


def test_a_registered_expectation_is_never_skipped(tmp_path: Path) -> None:
    outcome = one(sql_outcomes(tmp_path, ORDERS, [even("qty")]))
    assert (outcome.name, outcome.passed) == ("sql_checks_even_qty", False)
    assert "takes a DataFrame" in outcome.message


def test_sql_problem_refuses_quarantine() -> None:
    assert "quarantine" in sql_problem(OWNER, None, [], quarantine=True)


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        (
            pa.DataFrameSchema({"a": pa.Column(int)}, checks=pa.Check(lambda f: True)),
            "dataframe-wide",
        ),
        (pa.DataFrameSchema({"a": pa.Column(int)}, index=pa.Index(int)), "index"),
        (pa.DataFrameSchema({"a.*": pa.Column(int, regex=True)}), "is not one named column"),
        (
            pa.DataFrameSchema({"a": pa.Column(int, pa.Check.ge(0, ignore_na=False))}),
            "ignore_na=False",
        ),
        (
            pa.DataFrameSchema({"a": pa.Column(int, pa.Check.ge(0, raise_warning=True))}),
            "raise_warning",
        ),
        (
            pa.DataFrameSchema({"a": pa.Column(int, pa.Check.ge(0, element_wise=True))}),
            "element_wise",
        ),
        (
            pa.DataFrameSchema(
                {"a": pa.Column(int, pa.Check.ge(0, groupby="b")), "b": pa.Column(int)}
            ),
            "groupby",
        ),
        (pa.DataFrameSchema({"a": pa.Column(object)}), "dtype object"),
        (pa.DataFrameSchema({"a": pa.Column("timedelta64[ns]")}), "dtype timedelta64"),
        (pa.DataFrameSchema({"a": pa.Column(pd.CategoricalDtype(["x"]))}), "dtype category"),
        (pa.DataFrameSchema({"a": pa.Column(int)}, ordered=True), "ordered"),
        (pa.DataFrameSchema({"a": pa.Column(int)}, strict="filter"), "filter"),
        (
            pa.DataFrameSchema(
                {"a": pa.Column(int, unique=True, report_duplicates="exclude_first")}
            ),
            "report_duplicates",
        ),
        (pa.DataFrameSchema({"a": pa.Column(int, default=0)}), "default="),
        (
            pa.DataFrameSchema(
                {"a": pa.Column(str, pa.Check.str_matches(__import__("re").compile("x")))}
            ),
            "compiled",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_sql_problem_refuses_what_sql_cannot_check(tmp_path: Path, schema: Any, words: str) -> None:
    problem = sql_problem(OWNER, schema, [])
    assert problem.startswith(f"{OWNER}: ") and words in problem, problem
    assert "\n" not in problem
    found = sql_outcomes(tmp_path, table_of(a=[1]), schema=schema)  # never skipped
    assert any(not o.passed and words in o.message for o in found)


# --------------------------------------------------------------------------------------
# no frame of the data: a file of 2,000,000 rows
# --------------------------------------------------------------------------------------


@pytest.fixture
def frames_built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of rows of every DataFrame built meanwhile: by its constructor, or from
    blocks (as pyarrow's and DuckDB's conversions build them)."""
    built: list[int] = []
    init, from_mgr = pd.DataFrame.__init__, pd.DataFrame._from_mgr.__func__  # type: ignore[attr-defined]

    def spy_init(self: pd.DataFrame, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        built.append(len(self))

    def spy_from_mgr(cls: type[pd.DataFrame], *args: Any, **kwargs: Any) -> pd.DataFrame:
        frame = from_mgr(cls, *args, **kwargs)
        built.append(len(frame))
        return frame

    monkeypatch.setattr(pd.DataFrame, "__init__", spy_init)
    monkeypatch.setattr(pd.DataFrame, "_from_mgr", classmethod(spy_from_mgr))
    return built


def test_a_large_file_is_never_loaded(tmp_path: Path, frames_built: list[int]) -> None:
    """2,000,000 rows: no frame of more than a sample's rows is built, and neither
    Python (numpy included) nor pyarrow's memory pool holds more than a few MiB."""
    import pyarrow.compute as pc

    n = 2_000_000
    ids = pyarrow.array(range(n), pyarrow.int64())
    data = pyarrow.table(
        {
            "id": ids,
            "grp": pc.cast(pc.divide(ids, 1000), pyarrow.int64()),
            "amount": pc.if_else(pc.equal(ids, 123_456), None, pc.cast(ids, pyarrow.float64())),
            "code": pc.if_else(pc.equal(pc.bit_wise_and(ids, 1023), 7), "bad", "ok"),
        }
    )
    path = tmp_path / "big.parquet"
    pq.write_table(data, path, row_group_size=200_000)
    del data, ids
    con = engine.connect()
    con.execute(f"CREATE VIEW {ASSET} AS SELECT * FROM read_parquet('{path}')")
    checks = [
        expect.not_null("amount"),
        expect.unique("id"),
        expect.unique("grp", name="groups"),
        expect.accepted_values("code", ["ok"]),
        expect.in_range("amount", min=0, max=1_999_998),
        expect.row_count(min=n, max=n),
        expect.sql(f"select * from {ASSET} where id % 500000 = 1"),
    ]
    schema = pa.DataFrameSchema(
        {"id": pa.Column(int, pa.Check.ge(0), unique=True), "code": pa.Column(str)}
    )
    default_pool = pyarrow.default_memory_pool()
    arrow = pyarrow.proxy_memory_pool(default_pool)
    pyarrow.set_memory_pool(arrow)
    tracemalloc.start()
    try:
        found = by_name(run_sql_checks(con, ASSET, pq.read_schema(path), schema, checks))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        pyarrow.set_memory_pool(default_pool)
        con.close()
    assert max(frames_built) <= SAMPLE_ROWS
    assert peak < 8 * 2**20  # one column of it in numpy would be 16 MiB
    assert arrow.max_memory() < 8 * 2**20
    assert {n: (o.passed, o.failing_rows) for n, o in found.items()} == {
        "schema": (True, 0),
        "not_null_amount": (False, 1),
        "unique_id": (True, 0),
        "groups": (False, n),
        "accepted_values_code": (False, n // 1024 + 1),
        "in_range_amount": (False, 1),
        "row_count": (True, 0),
        "sql": (False, 4),
    }
    assert [r["id"] for r in rows(found["accepted_values_code"])] == [7, 1031, 2055, 3079, 4103]
    assert rows(found["not_null_amount"])[0]["id"] == 123_456
    assert rows(found["in_range_amount"])[0]["amount"] == 1_999_999.0


# --------------------------------------------------------------------------------------
# the key property: the SQL path agrees with the pandas path
# --------------------------------------------------------------------------------------

TIMES = [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 12), dt.datetime(2023, 12, 31, 23, 59)]
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "i": st.integers(-3, 3),
    "f": st.sampled_from([0.0, -0.0, 1.5, -2.0, 3.0, NAN, INF, -INF]),
    "s": st.sampled_from(["", "a", "b", "ab", "A", "é", "e\u0301", "👍", "a'b"]),
    "b": st.booleans(),
    "t": st.sampled_from(TIMES),
    "z": st.sampled_from([t.replace(tzinfo=UTC) for t in TIMES]),
    "d": st.sampled_from([t.date() for t in TIMES]),
    "g": st.sampled_from([0.1, -0.0, 2.5, NAN, INF]),
}
KINDS = {
    "i": pyarrow.int64(),
    "f": pyarrow.float64(),
    "s": pyarrow.string(),
    "b": pyarrow.bool_(),
    "t": pyarrow.timestamp("us"),
    "z": pyarrow.timestamp("us", tz="UTC"),
    "d": pyarrow.date32(),
    "g": pyarrow.float32(),  # compared in float32, as numpy does with a Python float
}
COLUMNS = list(KINDS)
# bounds and values of any column's type, so that some do not compare
ANY_VALUE = st.one_of(
    *VALUES.values(), st.sampled_from([0.5, 1, True, "2024-01-01", dt.date(2024, 1, 1)])
)


@st.composite
def tables(draw: st.DrawFn, columns: Sequence[str] = COLUMNS, max_rows: int = 9) -> pyarrow.Table:
    n = draw(st.integers(0, max_rows))
    return pyarrow.table(
        {
            c: pyarrow.array(
                draw(st.lists(st.none() | VALUES[c], min_size=n, max_size=n)), KINDS[c]
            )
            for c in columns
        }
    )


@st.composite
def bounds(draw: st.DrawFn, column: str) -> tuple[Any, Any]:
    """in_range's min and max: of the column's type (min <= max), or one of any type."""
    if draw(st.booleans()):
        value = draw(ANY_VALUE)
        return (value, None) if draw(st.booleans()) else (None, value)
    low, high = draw(st.none() | VALUES[column]), draw(st.none() | VALUES[column])
    if low is None and high is None:
        return draw(VALUES[column]), None
    if low is not None and high is not None and low > high:
        low, high = high, low
    return low, high


QUERIES = [
    f"select * from {ASSET} where i < 0",
    f"select * from {ASSET} where s = ''",
    f"select s, count(*) from {ASSET} group by s having count(*) > 1",
    f"select * from {ASSET} where b",
    f"select * from {ASSET} where t > timestamp '2024-01-01'",
    f"select * from {ASSET} where i not in (select i from other where i is not null);",
    f"select * from {ASSET} where length(s) > 1 -- long",
    "select * from nowhere",
    f"select from {ASSET} where",
    # left out: queries telling NaN from NULL (isnan, IS NULL on f): a frame cannot
]


@st.composite
def expectations(draw: st.DrawFn) -> Expectation:
    column = draw(st.sampled_from([*COLUMNS, "missing"]))
    kind = draw(st.sampled_from(list(Kind)))
    if kind == Kind.NOT_NULL:
        return expect.not_null(column)
    if kind == Kind.UNIQUE:
        return expect.unique(*draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=3)))
    if kind == Kind.ACCEPTED_VALUES:
        pool = VALUES.get(column, ANY_VALUE)
        return expect.accepted_values(column, draw(st.lists(pool | ANY_VALUE, max_size=4)))
    if kind == Kind.IN_RANGE:
        low, high = draw(bounds(column if column in VALUES else "i"))
        return expect.in_range(column, low, high)
    if kind == Kind.ROW_COUNT:
        low, high = draw(st.none() | st.integers(0, 9)), draw(st.none() | st.integers(0, 9))
        return expect.row_count(low if low is not None or high is not None else 1, high)
    if kind == Kind.RELATIONSHIP:
        return expect.relationship(
            column, to="other", field=draw(st.sampled_from([*COLUMNS, "gone"]))
        )
    return expect.sql(draw(st.sampled_from(QUERIES)))


def sql_outcomes_in_scratch(table: pyarrow.Table, **options: Any) -> tuple[CheckOutcome, ...]:
    """`sql_outcomes` in a folder of its own (hypothesis runs a test many times)."""
    with tempfile.TemporaryDirectory() as name:
        return sql_outcomes(Path(name), table, **options)


def nothing_to_compare(data: pyarrow.Table, exp: Expectation, mine: CheckOutcome) -> bool:
    """Left out (module docstring): values that do not compare with the column's type fail
    here even when the column holds no value; pandas only notices with a value (or, for
    some types, not even then)."""
    column = exp.args[0] if exp.args else None
    if "could not be evaluated: TypeError" not in mine.message or column not in data.schema.names:
        return False
    values = data.column(column).to_pylist()
    return all(v is None or (isinstance(v, float) and math.isnan(v)) for v in values)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=tables(), other=tables(max_rows=5), checks=st.lists(expectations(), min_size=1, max_size=6)
)
def test_sql_path_agrees_with_pandas_path(
    data: pyarrow.Table, other: pyarrow.Table, checks: list[Expectation]
) -> None:
    found = sql_outcomes_in_scratch(data, checks=checks, others={"other": other})
    order = [e for e in checks if e.row_level] + [e for e in checks if not e.row_level]
    expected = pandas_outcomes(data, order, {"other": other})
    assert [o.name for o in found] == [o.name for o in expected]
    for mine, theirs, exp in zip(found, expected, order, strict=True):
        if nothing_to_compare(data, exp, mine) and theirs.passed:
            continue
        assert (mine.severity, mine.passed, mine.failing_rows, mine.kind) == (
            theirs.severity,
            theirs.passed,
            theirs.failing_rows,
            theirs.kind,
        ), (exp, mine, theirs)
        same_words = exp.kind != Kind.SQL and "could not be evaluated" not in theirs.message
        assert mine.message == theirs.message or not same_words
        assert (mine.sample is None) == (theirs.sample is None)
        if mine.sample is not None:
            assert len(rows(mine)) == len(rows(theirs))


SCHEMA_CHECKS: dict[str, st.SearchStrategy[pa.Check]] = {
    "i": st.one_of(
        st.builds(pa.Check.ge, VALUES["i"]),
        st.builds(pa.Check.lt, VALUES["i"]),
        st.builds(pa.Check.ne, VALUES["i"]),
        st.builds(pa.Check.isin, st.lists(VALUES["i"] | VALUES["f"], max_size=3)),
        st.builds(pa.Check.unique_values_eq, st.lists(VALUES["i"], max_size=3)),
    ),
    "f": st.one_of(
        st.builds(pa.Check.gt, VALUES["f"]),
        st.builds(pa.Check.le, VALUES["f"]),
        st.builds(pa.Check.eq, VALUES["f"]),
        st.builds(
            pa.Check.in_range,
            st.just(-1.0),
            st.sampled_from([0.0, 1.5, INF]),
            st.booleans(),
            st.booleans(),
        ),
        st.builds(pa.Check.notin, st.lists(VALUES["f"], max_size=3)),
    ),
    "s": st.one_of(
        st.builds(pa.Check.isin, st.lists(VALUES["s"], max_size=3)),
        st.builds(pa.Check.str_length, st.none() | st.integers(0, 1), st.integers(1, 3)),
        st.builds(pa.Check.str_matches, st.sampled_from(["a", "^a|b", "b?$", "é", "[ab]+"])),
        st.builds(pa.Check.str_contains, st.sampled_from(["b", "^A", "\u0301"])),
        st.builds(pa.Check.str_startswith, VALUES["s"]),
        st.builds(pa.Check.str_endswith, VALUES["s"]),
        st.builds(pa.Check.ge, st.just("b")),
    ),
    "b": st.one_of(
        st.builds(pa.Check.eq, st.booleans()), st.builds(pa.Check.isin, st.just([True]))
    ),
    "t": st.one_of(
        st.builds(pa.Check.ge, st.sampled_from([pd.Timestamp(t) for t in TIMES])),
        st.builds(pa.Check.isin, st.lists(st.sampled_from(TIMES), max_size=2)),
    ),
}
DECLARED = {"i": int, "f": float, "s": str, "b": bool, "t": "datetime64[ns]"}
WRONG = {"i": float, "f": int, "s": int, "b": str, "t": "datetime64[ns, UTC]"}


@st.composite
def schemas(draw: st.DrawFn, data: pyarrow.Table) -> pa.DataFrameSchema:
    """A schema of some of the columns, of their dtype or a wrong one. An int or bool
    column with a null gets no dtype: pandas reads it as float64 / object (left out, see
    the module docstring)."""
    columns = {}
    for name in draw(st.lists(st.sampled_from(list(SCHEMA_CHECKS)), unique=True, max_size=4)):
        nulls = data.column(name).null_count > 0
        declared = draw(st.sampled_from([DECLARED[name]] * 3 + [WRONG[name]]))
        dtype = None if name in ("i", "b") and nulls else declared
        checks = draw(st.lists(SCHEMA_CHECKS[name], max_size=2))
        columns[name] = pa.Column(
            dtype, checks, nullable=draw(st.booleans()), unique=draw(st.booleans())
        )
    unique = draw(
        st.none()
        | st.lists(st.sampled_from(list(columns) or ["i"]), min_size=1, max_size=2, unique=True)
    )
    if unique and not set(unique) <= set(columns):
        unique = None
    strict = draw(st.booleans())
    return pa.DataFrameSchema(
        columns, strict=strict, unique=unique, name="Rows" if strict else None
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_sql_schema_agrees_with_pandera(draw: st.DataObject) -> None:
    data = draw.draw(tables(columns=[*SCHEMA_CHECKS, "z"]))
    schema = draw.draw(schemas(data))
    found = sql_outcomes_in_scratch(data, schema=schema)
    expected = validate_schema(ASSET, schema, data.to_pandas()).outcomes
    if not expected:  # only nulls repeat in unique columns: the pandas path loses it
        assert [o.name for o in found] == ["schema"] and found[0].passed
        return
    assert [(o.name, o.passed) for o in found] == [(o.name, o.passed) for o in expected]
    for mine, theirs in zip(found, expected, strict=True):
        if ".dtype(" in mine.name:  # pandera may list the values it cannot coerce instead
            continue
        assert mine.failing_rows == theirs.failing_rows, (mine, theirs)
        assert (mine.sample is None) == (theirs.sample is None), (mine, theirs)


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.none() | st.sampled_from([0.0, -0.0, 1.0, NAN, INF, 2.5]), max_size=8),
    accepted=st.lists(
        st.sampled_from([0, -0.0, 1, 2.5, NAN, True, decimal.Decimal("2.5"), "1"]), max_size=4
    ),
)
def test_floats_membership_agrees(values: list[float | None], accepted: list[Any]) -> None:
    data = table_of(
        f=pyarrow.array(values, pyarrow.float64()),
        d=pyarrow.array(
            [
                None if v is None or not math.isfinite(v) else decimal.Decimal(str(v))
                for v in values
            ],
            pyarrow.decimal128(5, 1),
        ),
    )
    checks = [
        expect.accepted_values("f", accepted),
        expect.accepted_values("d", accepted, name="d"),
    ]
    found = sql_outcomes_in_scratch(data, checks=checks)
    assert [(o.passed, o.failing_rows) for o in found] == [
        (o.passed, o.failing_rows) for o in pandas_outcomes(data, checks)
    ]
