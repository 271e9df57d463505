"""The type matrix: one DataFrame per kind of column users return, and what each reads
back as (the table in docs/types.md), or the words of the one-line refusal.

Written into test projects as an asset module (each case becomes an asset `t_<case>`
and a downstream asset `d_<case>` that records exactly what it received) and imported
by tests/test_fidelity.py.
"""

import datetime as dt
import decimal

import numpy as np
import pandas as pd
import pyarrow as pa

from vibepiper import asset, expect


def _frame(values, dtype=None, **extra):
    return pd.DataFrame({"v": pd.Series(values, dtype=dtype), **extra})


def _times(unit, tz=None):
    stamps = pd.Series(pd.to_datetime(["2026-03-29 01:30:00.123456789", None]).as_unit(unit))
    return _frame(stamps.dt.tz_localize(tz) if tz else stamps)


MAP = pa.map_(pa.string(), pa.int64())

# case -> (builder, the dtype it reads back as | "refused: <words of the error>")
CASES = {
    "int64": (lambda: _frame([1, -(2**63), 2**63 - 1]), "int64"),
    "int_object_nulls": (lambda: _frame([1, None, 3], object), "Int64"),
    "int64_nullable": (lambda: _frame([1, None, 3], "Int64"), "Int64"),
    "bigint_object": (lambda: _frame([2**53, 2**53 + 1, None], object), "Int64"),
    "bigint_beyond_64_bits": (lambda: _frame([2**70, 1], object), "refused: beyond 64 bits"),
    "uint64_max": (lambda: _frame(np.array([2**64 - 1, 0], dtype="uint64")), "uint64"),
    "float_nan_inf": (lambda: _frame([1.5, np.nan, np.inf, -np.inf, -0.0]), "float64"),
    "float32": (lambda: _frame(np.array([1.5, np.nan], dtype="float32")), "float32"),
    "float_object_with_ints": (lambda: _frame([1.5, 2, None], object), "float64"),
    "float_object_bigint": (
        lambda: _frame([0.5, 2**53 + 1], object),
        "refused: exactly representable",
    ),
    "strings": (lambda: _frame(["a", None, "ü€", ""]), "str"),
    "strings_object": (lambda: _frame(["a", None, np.nan], object), "str"),
    "string_python": (lambda: _frame(["a", None], "string[python]"), "string"),
    "string_pyarrow": (lambda: _frame(["a", None], "string[pyarrow]"), "string"),
    "bytes": (lambda: _frame([b"a", None, b"\x00\xff"]), "object"),
    "str_bytes_mix": (lambda: _frame(["a", b"b"], object), "refused: becomes b'a'"),
    "int_str_mix": (lambda: _frame([1, "b"], object), "refused: cannot be stored"),
    "bool": (lambda: _frame([True, False]), "bool"),
    "bool_object_nulls": (lambda: _frame([True, None, False], object), "boolean"),
    "boolean_nullable": (lambda: _frame([True, None], "boolean"), "boolean"),
    "categorical_strings": (
        lambda: _frame(pd.Categorical(["x", "y", "x", None], categories=["y", "x", "unused"])),
        "category",
    ),
    "categorical_ordered": (
        lambda: _frame(pd.Categorical(["lo", "hi"], categories=["lo", "hi"], ordered=True)),
        "category",
    ),
    "categorical_ints": (
        lambda: _frame(pd.Categorical([1, 2, 1])),
        "refused: categorical of int64",
    ),
    "datetime_s": (lambda: _times("s"), "datetime64[ms]"),
    "datetime_ms": (lambda: _times("ms"), "datetime64[ms]"),
    "datetime_us": (lambda: _times("us"), "datetime64[us]"),
    "datetime_ns": (lambda: _times("ns"), "datetime64[ns]"),
    "datetime_s_tz": (lambda: _times("s", "Europe/Berlin"), "datetime64[ms, Europe/Berlin]"),
    "datetime_ms_tz": (lambda: _times("ms", "Europe/Berlin"), "datetime64[ms, Europe/Berlin]"),
    "datetime_us_tz": (lambda: _times("us", "UTC"), "datetime64[us, UTC]"),
    "datetime_ns_tz": (lambda: _times("ns", "Asia/Kolkata"), "datetime64[ns, Asia/Kolkata]"),
    "datetime_object_naive": (
        lambda: _frame([dt.datetime(2026, 1, 1, 12, 30), None], object),
        "datetime64[us]",
    ),
    "datetime_object_aware": (
        lambda: _frame([pd.Timestamp("2026-01-01 00:00:00.000000001", tz="UTC"), None], object),
        "datetime64[ns, UTC]",
    ),
    "datetime_naive_aware_mix": (
        lambda: _frame([pd.Timestamp("2026-01-01"), pd.Timestamp("2026-01-01", tz="UTC")], object),
        "refused: mixes datetimes",
    ),
    "datetime_zones_mix": (
        lambda: _frame(
            [pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-01-01", tz="Asia/Tokyo")],
            object,
        ),
        "refused: mixes datetimes",
    ),
    "dates": (lambda: _frame([dt.date(2026, 2, 28), None]), "object"),
    "times": (lambda: _frame([dt.time(23, 59, 59, 999999), None]), "object"),
    "timedelta_ns": (lambda: _frame(pd.to_timedelta([1, None], unit="ns")), "timedelta64[ns]"),
    "timedelta_s": (
        lambda: _frame(pd.to_timedelta([1, None], unit="s").as_unit("s")),
        "timedelta64[s]",
    ),
    "period": (lambda: _frame(pd.period_range("2026-01", periods=3, freq="M")), "period[M]"),
    "interval": (lambda: _frame(pd.interval_range(0, 3)), "interval[int64, right]"),
    "decimal": (
        lambda: _frame([decimal.Decimal("1.10"), decimal.Decimal("-2.5"), None]),
        "object",
    ),
    "lists": (lambda: _frame([[1, None, 3], None, []], object), "object"),
    "lists_of_floats_and_ints": (lambda: _frame([[1, 2.5], [np.nan]], object), "object"),
    "nested_lists": (lambda: _frame([[[1], [2, 3]], [[]], None], object), "object"),
    "tuples": (lambda: _frame([("a", "b"), None], object), "object"),
    "structs": (lambda: _frame([{"x": 1, "y": "a"}, {"x": None, "y": None}, None]), "object"),
    "structs_with_lists": (lambda: _frame([{"x": [1, 2]}, {"x": []}]), "object"),
    "dicts_different_keys": (
        lambda: _frame([{"x": 1}, {"y": 2}]),
        "refused: would read back changed",
    ),
    "dicts_without_keys": (lambda: _frame([{}, {}]), "refused: dicts without keys"),
    "map_from_arrow": (
        lambda: pa.table({"v": pa.array([[("a", 1)], None], MAP)}),
        "refused: cannot be stored",
    ),
    "arrow_list_dtype": (
        lambda: _frame([[1], None], pd.ArrowDtype(pa.list_(pa.int64()))),
        "refused: would not read back",
    ),
    "complex": (lambda: _frame([1 + 2j]), "refused: cannot be stored"),
    "zero_rows": (
        lambda: pd.DataFrame({"v": pd.Series([], dtype="int64"), "w": pd.Series([], dtype=object)}),
        "int64",
    ),
    "named_index": (
        lambda: pd.DataFrame({"v": [1, 2]}, index=pd.Index(["p", "q"], name="key")),
        "int64",
    ),
    "multi_index": (
        lambda: pd.DataFrame(
            {"v": [1.0, 2.0]},
            index=pd.MultiIndex.from_tuples(
                [("p", pd.Timestamp("2026-01-01")), ("q", pd.Timestamp("2026-01-02"))],
                names=["key", "day"],
            ),
        ),
        "float64",
    ),
    "named_range_index": (  # stored as a column: reads back as an Index of int64
        lambda: pd.DataFrame({"v": [1, 2]}, index=pd.RangeIndex(2, name="n")),
        "int64",
    ),
    "date_index_with_freq": (  # Parquet keeps no freq: read back without it
        lambda: pd.DataFrame({"v": [1, 2]}, index=pd.date_range("2026-01-01", periods=2)),
        "int64",
    ),
    "range_index_offset": (  # row numbers: dropped
        lambda: pd.DataFrame({"v": [1, 2]}, index=pd.RangeIndex(5, 9, 2)),
        "int64",
    ),
    "object_index_of_ints": (  # row numbers: dropped
        lambda: pd.DataFrame({"v": [1, 2]}, index=pd.Index([7, 8], dtype=object)),
        "int64",
    ),
    "index_of_ints_with_nulls": (  # row numbers, however odd: dropped
        lambda: pd.DataFrame({"v": [1, 2]}, index=pd.Index([7, None], dtype=object)),
        "int64",
    ),
    "filtered_index": (  # row numbers: dropped
        lambda: pd.DataFrame({"v": [3, -1, 4, -1, -5, 9]}).query("v > 0"),
        "int64",
    ),
    "unnamed_string_index": (  # kept, unnamed; stored as the column "index"
        lambda: pd.DataFrame({"v": [1, 2]}, index=pd.Index(["p", "q"])),
        "int64",
    ),
    "index_of_nullable_ints_named": (
        lambda: pd.DataFrame({"v": [1, 2]}, index=pd.Index([7, None], dtype=object, name="k")),
        "refused: reads back as float64",
    ),
    "index_named_as_a_column": (
        lambda: pd.DataFrame({"v": [1, 2]}, index=pd.Index([7, 8], name="v")),
        "refused: has the name of a column",
    ),
    "unnamed_index_where_index_is_a_column": (
        lambda: pd.DataFrame({"v": [1, 2], "index": [3, 4]}, index=pd.Index(["p", "q"])),
        "refused: would be stored as column 'index'",
    ),
}

# Checks a published case must still pass when `vibepiper check` validates it again.
CHECKS = {
    "bigint_object": [expect.unique("v")],
    "int_object_nulls": [expect.in_range("v", min=1, max=3)],
}


def seen(data: pd.DataFrame) -> pd.DataFrame:
    """Everything a downstream asset can observe of its input, as text: dtypes, the
    index, and each value's repr and Python type."""
    rows = [f"dtype {c} {t}" for c, t in data.dtypes.items()]
    rows.append(f"index {type(data.index).__name__} {list(data.index.names)} {data.index!r}")
    rows += [
        f"{c}[{i}] {type(v).__name__} {v!r}"
        for c in data.columns
        for i, v in enumerate(data[c].tolist())
    ]
    return pd.DataFrame({"seen": rows})


def _assets(case, build):
    @asset(name=f"t_{case}", checks=CHECKS.get(case, []))
    def produce() -> pd.DataFrame:
        return build()

    @asset(name=f"d_{case}", inputs={"data": f"t_{case}"})
    def consume(data: pd.DataFrame) -> pd.DataFrame:
        return seen(data)

    return produce, consume


for _case, (_build, _) in CASES.items():
    globals()[f"t_{_case}"], globals()[f"d_{_case}"] = _assets(_case, _build)
