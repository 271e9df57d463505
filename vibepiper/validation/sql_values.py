"""The SQL that judges the values of a Parquet file's columns as pandas judges them on the
frame the file reads back as: SQL text with its parameters, the columns (their Arrow type,
what pandas makes of it, and what DuckDB reads it as), what is missing (NULL, and NaN in
a float column; one value when grouping), and a column compared with values (`_compare`,
`_members`) as pandas compares a column with a scalar or finds it by isin.

Where the two paths differ, because pandas holds the data differently from the file:
- A value that does not compare with the column's type (`in_range("name", min=0)`)
  fails the check even when the column holds no value; pandas only notices with a value
  to compare (for most types).
- A bound finer than the column's unit (nanoseconds against microseconds) is truncated
  to the unit; a decimal column compared with a float is compared as a double.
- DuckDB trusts a Parquet file's min/max statistics, which leave NaN out: unless the
  connection sets `parquet_can_have_nan`, a query may skip or misjudge rows holding NaN.
  The checks here tell NaN from the value itself; a user's query is not rewritten.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vibepiper.text import first_line

if TYPE_CHECKING:
    import pandas as pd


# -- SQL text -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sql:
    """SQL text and the values of its `?` placeholders, in order."""

    text: str
    params: tuple[Any, ...] = ()
    join: bool = False  # holds a subquery: DuckDB then keeps no order of rows


_TRUE, _FALSE = _Sql("TRUE"), _Sql("FALSE")


def _all(*parts: _Sql) -> _Sql:
    return _Sql(" AND ".join(f"({p.text})" for p in parts), *_merged(parts))


def _any(*parts: _Sql) -> _Sql:
    return _Sql(" OR ".join(f"({p.text})" for p in parts), *_merged(parts))


def _not(part: _Sql) -> _Sql:
    return _Sql(f"NOT ({part.text})", part.params, part.join)


def _merged(parts: Sequence[_Sql]) -> tuple[tuple[Any, ...], bool]:
    return sum((p.params for p in parts), ()), any(p.join for p in parts)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}"


class _Missing(Exception):
    """A column a check names is not in the data (of `owner`, if not the asset's)."""

    def __init__(self, column: str, owner: str | None = None, columns: Sequence[str] = ()):
        super().__init__(column, owner, columns)
        self.column, self.owner, self.columns = column, owner, list(columns)


class _Unevaluable(Exception):
    """A check that cannot be evaluated on this data (where pandas would raise)."""


# -- the columns of the file ----------------------------------------------------------

_NUMERIC = frozenset({"int", "float", "decimal", "bool"})
_UNITS = {"s": "TIMESTAMP_S", "ms": "TIMESTAMP_MS", "us": "TIMESTAMP", "ns": "TIMESTAMP_NS"}
_INTS = {8: "TINYINT", 16: "SMALLINT", 32: "INTEGER", 64: "BIGINT"}


@dataclass(frozen=True)
class _Col:
    """One column of the file: its name, Arrow type, and what pandas makes of it."""

    name: str
    kind: Any  # pa.DataType

    @property
    def sql(self) -> str:
        return _ident(self.name)

    @property
    def family(self) -> str:
        return _family(self.kind)

    @property
    def duck(self) -> str:
        return _duck_type(self.kind)

    @property
    def nan(self) -> str:
        """NaN, told from the value itself: DuckDB believes a Parquet column's min/max
        statistics, which leave NaN out (unless `parquet_can_have_nan` is set), and would
        fold `isnan(col)` to false; a value of unknown statistics stops it."""
        return f"isnan(CASE WHEN random() >= 0 THEN {self.sql} END)"

    @property
    def null(self) -> _Sql:
        """Missing as pandas sees it: NULL, and NaN in a float column."""
        if self.family == "float":
            return _Sql(f"{self.sql} IS NULL OR {self.nan}")
        return _Sql(f"{self.sql} IS NULL")

    @property
    def present(self) -> _Sql:
        return _not(self.null)

    @property
    def key(self) -> str:
        """The value as pandas groups it: NaN and NULL are one missing value."""
        if self.family == "float":
            return f"CASE WHEN {self.nan} THEN NULL ELSE {self.sql} END"
        return self.sql


def _family(kind: Any) -> str:
    import pyarrow as pa

    types = pa.types
    if types.is_boolean(kind):
        return "bool"
    if types.is_integer(kind):
        return "int"
    if types.is_floating(kind):
        return "float"
    if types.is_decimal(kind):
        return "decimal"
    if types.is_string(kind) or types.is_large_string(kind) or types.is_string_view(kind):
        return "string"
    if types.is_dictionary(kind):
        return "category" if _family(kind.value_type) == "string" else "other"
    if types.is_timestamp(kind):
        return "timestamptz" if kind.tz else "timestamp"
    if types.is_date(kind):
        return "date"
    return "other"


def _duck_type(kind: Any) -> str:
    """The DuckDB type a Parquet column of Arrow type `kind` reads as."""
    import pyarrow as pa

    family = _family(kind)
    if family == "int":
        return ("" if pa.types.is_signed_integer(kind) else "U") + _INTS[kind.bit_width]
    if family == "float":
        return "DOUBLE" if kind.bit_width == 64 else "FLOAT"
    if family == "decimal":
        return f"DECIMAL({kind.precision},{kind.scale})"
    if family == "timestamptz":
        return "TIMESTAMPTZ_NS" if kind.unit == "ns" else "TIMESTAMPTZ"
    if family == "timestamp":
        return _UNITS[kind.unit]
    return {"bool": "BOOLEAN", "date": "DATE", "string": "VARCHAR", "category": "VARCHAR"}.get(
        family, ""
    )


def _duck_family(kind: str) -> str:
    """The family of a DuckDB type name (another asset's column, from DESCRIBE)."""
    upper = kind.upper()
    if upper == "BOOLEAN":
        return "bool"
    if upper.lstrip("U") in (*_INTS.values(), "HUGEINT"):
        return "int"
    if upper in ("FLOAT", "DOUBLE"):
        return "float"
    if upper.startswith("DECIMAL"):
        return "decimal"
    if upper == "VARCHAR":
        return "string"
    if upper.startswith("TIMESTAMP"):
        return "timestamptz" if "TIME ZONE" in upper or "TZ" in upper else "timestamp"
    return "date" if upper == "DATE" else "other"


# -- comparing a column with values, as pandas does -----------------------------------


def _compare(col: _Col, op: str, value: Any) -> _Sql:
    """`col op value` for a present value of `col`, as pandas compares a column with a
    scalar: types that do not compare are never equal, and cannot be ordered."""
    equality = op in ("=", "<>")
    if col.family == "category" and not equality:
        raise _Unevaluable("TypeError: Unordered Categoricals can only compare equality or not")
    value = _plain(value)
    if _never_equal(col, value):  # nothing is below, above or equal to it
        return _TRUE if op == "<>" else _FALSE
    operand = _operand(col, value)
    if operand is None:
        if equality:
            return _TRUE if op == "<>" else _FALSE
        raise _Unevaluable(
            f"TypeError: Invalid comparison between {col.kind} and {type(value).__name__}"
        )
    column, placeholder, param = operand
    return _Sql(f"{column} {op} {placeholder}", (param,))


def _never_equal(col: _Col, value: Any) -> bool:
    """A missing value pandas compares with the column without error, finding nothing
    equal, below or above it: NaN to numbers, NaT (or a text read as NaT) to times, and
    either to texts and dates."""
    family = col.family
    if family in _NUMERIC:
        return _nan(value)
    times = family in ("timestamp", "timestamptz")
    if not times and family not in ("string", "date"):
        return False
    nat = _timestamp(value, parse=times) is _NAT
    return nat if times else _nan(value) or nat


def _operand(col: _Col, value: Any) -> tuple[str, str, Any] | None:
    """The column's expression, the placeholder and the parameter comparing it with
    `value`; None if pandas would not compare them."""
    family = col.family
    if family in _NUMERIC:
        if not _is_number(value):
            return None
        column = f"CAST({col.sql} AS INTEGER)" if family == "bool" else col.sql
        if family == "float":  # numpy compares in the column's precision
            return column, f"CAST(? AS {col.duck})", _float(value)
        if isinstance(value, float):
            return column, "CAST(? AS DOUBLE)", value
        return column, "?", int(value) if isinstance(value, bool) else value
    if family in ("string", "category"):
        return (col.sql, "?", value) if isinstance(value, str) else None
    if family in ("timestamp", "timestamptz"):
        stamp = _stamp_of(value, family, parse=True)
        if stamp is None:
            return None
        return col.sql, f"CAST(? AS {col.duck})", stamp.isoformat()
    if family == "date":
        return (col.sql, "?", value) if _is_date(value) else None
    return None


def _members(col: _Col, values: Iterable[Any]) -> _Sql:
    """`col`'s value is one of `values`, as pandas' isin finds it."""
    items, _ = _member_texts(col, values)
    if not items:
        return _FALSE
    column = f"CAST({col.sql} AS DOUBLE)" if col.family == "float" else col.sql
    if col.family in ("string", "category"):
        return _Sql(f"{column} IN (SELECT unnest(CAST(? AS VARCHAR[])))", (items,), join=True)
    element = "DOUBLE" if col.family == "float" else col.duck
    cast = f"CAST(CAST(? AS VARCHAR[]) AS {element}[])"
    return _Sql(f"{column} IN (SELECT unnest({cast}))", (items,), join=True)


def _member_texts(col: _Col, values: Iterable[Any]) -> tuple[list[str], bool]:
    """The distinct values that can equal a value of `col`, as text for DuckDB to cast
    to the column's type; and whether some value never can."""
    if col.family == "other":
        raise _Unevaluable(f"TypeError: values of Arrow type {col.kind} are not compared")
    found: dict[Any, str] = {}
    unmatched = False
    for value in values:
        member = _member(col, _plain(value))
        if member is None:
            unmatched = True
        else:
            found.setdefault(member[0], member[1])
    return list(found.values()), unmatched


def _member(col: _Col, value: Any) -> tuple[Any, str] | None:
    """`value` as a value of `col` (a key equal to equal values, and its text), or None
    if no value of `col` equals it."""
    family = col.family
    if family in ("string", "category"):
        return (value, value) if isinstance(value, str) else None
    if family in ("timestamp", "timestamptz"):
        stamp = _stamp_of(value, family, parse=False)
        if stamp is None:
            return None
        return (stamp, stamp.isoformat()) if _whole_units(stamp, col.kind.unit) else None
    if family == "date":
        return (value, value.isoformat()) if _is_date(value) else None
    if not _is_number(value) or _nan(value):
        return None
    if family == "float":
        return _real(value)
    if not _finite(value):
        return None
    if family == "bool":
        return (bool(value), str(bool(value))) if value in (0, 1) else None
    return _exact(col.kind, decimal.Decimal(int(value) if isinstance(value, bool) else value))


def _whole_units(stamp: pd.Timestamp, unit: str) -> bool:
    """Whether `stamp` is a whole number of `unit`s (a column of that unit can hold it)."""
    fraction = stamp.microsecond * 1000 + stamp.nanosecond  # of its second, in ns
    return fraction % {"s": 10**9, "ms": 10**6, "us": 10**3}.get(unit, 1) == 0


def _real(value: Any) -> tuple[Any, str]:
    number = _float(value) + 0.0  # -0.0 is 0.0
    return number, repr(number)


def _float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer past the largest double
        return math.copysign(math.inf, value)


def _exact(kind: Any, number: decimal.Decimal) -> tuple[Any, str] | None:
    """`number` as a value of an integer or decimal column, if it is one exactly."""
    import pyarrow as pa

    with decimal.localcontext(decimal.Context(prec=200)):
        if pa.types.is_integer(kind):
            if number != number.to_integral_value():
                return None
            whole = int(number)
            low = -(2 ** (kind.bit_width - 1)) if pa.types.is_signed_integer(kind) else 0
            high = 2 ** (kind.bit_width - (1 if pa.types.is_signed_integer(kind) else 0))
            return (whole, str(whole)) if low <= whole < high else None
        scaled = number.scaleb(kind.scale)
        if scaled != scaled.to_integral_value() or abs(scaled) >= 10**kind.precision:
            return None
        return number, format(number, "f")


def _plain(value: Any) -> Any:
    """A numpy scalar as a Python value (a datetime64 as a pandas Timestamp)."""
    if type(value).__module__ != "numpy":
        return value
    import numpy as np
    import pandas as pd

    if isinstance(value, np.datetime64):
        return pd.Timestamp(value)  # NaT for not-a-time
    return value.item() if isinstance(value, np.generic) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real | decimal.Decimal)


def _nan(value: Any) -> bool:
    if isinstance(value, decimal.Decimal):
        return value.is_nan()
    return isinstance(value, float) and math.isnan(value)


def _finite(value: Any) -> bool:
    if isinstance(value, decimal.Decimal):
        return value.is_finite()
    return not isinstance(value, float) or math.isfinite(value)


def _is_date(value: Any) -> bool:
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


def _stamp_of(value: Any, family: str, *, parse: bool) -> Any:
    """`value` as a timestamp comparable with a column of `family` ("timestamp" or
    "timestamptz": zoned exactly when the column is), or None."""
    stamp = _timestamp(value, parse=parse)
    if stamp is None or stamp is _NAT or (stamp.tzinfo is not None) != (family == "timestamptz"):
        return None
    return stamp


def _timestamp(value: Any, *, parse: bool) -> Any:
    """`value` as pandas compares it with a datetime column (a Timestamp, or _NAT; a
    string is parsed in a comparison, never by isin); None if it is no time."""
    import pandas as pd

    if not isinstance(value, dt.datetime | str) or (isinstance(value, str) and not parse):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return _NAT if stamp is pd.NaT else stamp


_NAT = object()  # pandas' NaT, named without importing pandas
