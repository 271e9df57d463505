"""What is read back is what was published: the one conversion between a DataFrame and
the Arrow table stored for it, in both directions.

`for_storage(asset, frame)` turns an asset's output into the table to store and the frame
that Parquet will give back for it (`Stored.frame`): downstream assets, checks, `show` and
`read()` all receive that frame, whether the data comes from memory or from disk.
Columns whose type Parquet keeps exactly are handed on as they are; for any other, the
frame is rebuilt from the table exactly as a read would rebuild it, and compared with what
the asset returned. A change of value is never silent: a column that cannot be stored
faithfully is an `UnstorableOutput` naming the column and what to do. An index of row
numbers (unnamed integers, such as filtering leaves) is dropped, so the rows read back
numbered 0, 1, 2...; any other index reads back as the same index, its levels stored as
named columns (docs/types.md, "The index"). A few types are normalised first, in
documented ways (docs/types.md): an object column of integers becomes Int64, of booleans
`boolean`, of datetimes datetime64; `datetime64[s]` becomes `datetime64[ms]` (Parquet has
no seconds unit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vibepiper.storage.parquet_files import IndexNotStorable, index_fields, without_row_numbers
from vibepiper.text import first_line, quoted

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

_REBUILT = "rebuilt"  # a column whose read-back is not provably the column as it is
_SAME_BY_CONSTRUCTION = frozenset({"string", "bytes", "date", "time", "empty"})
_BY_PANDAS = frozenset(
    {
        "integer",
        "boolean",
        "datetime",
        "datetime64",
        "timedelta",
        "timedelta64",
        "period",
        "interval",
    }
)


class UnstorableOutput(Exception):
    """An asset's output has a column that Parquet would not give back as it is."""


@dataclass(frozen=True)
class Stored:
    """The table to write for an output, and the frame every reader will get back."""

    table: pa.Table
    frame: pd.DataFrame


def for_storage(asset: str, frame: pd.DataFrame) -> Stored:
    """The table to store for `frame` and the frame Parquet gives back for it (the same
    object when nothing changes on the way)."""
    from vibepiper.storage.parquet_store import to_arrow

    frame = _normalise(asset, frame)
    try:
        table = to_arrow(frame)
    except Exception as exc:  # pyarrow names the column in the exception's second argument
        raise UnstorableOutput(_arrow_failure(asset, exc)) from exc
    _refuse_lossy_types(asset, table)
    if _kept_as_is(frame):
        return Stored(table, frame)
    try:
        back = to_frame(table)
    except Exception as exc:  # pandas cannot rebuild a type from the pandas metadata
        raise UnstorableOutput(_unreadable(asset, frame, exc)) from exc
    _compare(asset, frame, back)
    _stable(asset, frame, back, table)
    return Stored(table, back)


def frame_version(frame: pd.DataFrame, asset: str = "frame") -> str:
    """The data version of a DataFrame: that of the table it is stored as (and so of the
    table read back from its file)."""
    from vibepiper.versioning.data_version import table_version

    return table_version(for_storage(asset, frame).table)


def to_frame(table: pa.Table) -> pd.DataFrame:
    """The DataFrame for a stored table, the same whether the table was just made or read
    from a file: pandas' own types (Period, Interval) restored, nested values (lists,
    structs, maps) as exact Python values rather than arrays of floats."""
    import pandas as pd
    import pyarrow as pa

    _register_pandas_types()
    frame = table.to_pandas()
    for i, field in enumerate(table.schema):
        kind = field.type
        nested = pa.types.is_nested(kind) and not isinstance(kind, pa.ExtensionType)
        if nested and field.name in frame.columns:
            values = table.column(i).to_pylist()
            frame[field.name] = pd.Series(values, index=frame.index, dtype=object)
    return frame


def _register_pandas_types() -> None:
    """Make pyarrow know pandas' Period and Interval types in this process (a fresh
    process otherwise reads them as their storage: int64 and a struct)."""
    import importlib

    importlib.import_module("pandas.core.arrays.arrow.extension_types")  # registers them


# -- before conversion --------------------------------------------------------------


def _normalise(asset: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The documented normalisations: an index of row numbers dropped; object columns
    (and index levels) of integers, booleans, datetimes (and other types pandas has an
    array for) to those arrays; datetime64[s] to [ms]."""
    frame = _without_row_numbers(asset, frame)
    changed: dict[str, Any] = {}
    for name, dtype in frame.dtypes.items():
        if _kept(dtype) and _unit(dtype) != "s":
            continue  # nothing to normalise (the common case: no column is looked at)
        better = _better_column(asset, str(name), frame[name])
        if better is not None:
            changed[str(name)] = better
    index = _better_index(asset, frame.index)
    if not changed and index is None:
        return frame
    frame = frame.assign(**changed) if changed else frame
    return frame.set_axis(index) if index is not None else frame


def _without_row_numbers(asset: str, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with an index of row numbers dropped; refused if its index cannot be
    stored as named columns."""
    frame = without_row_numbers(frame)
    try:
        index_fields(frame)
    except IndexNotStorable as exc:
        raise UnstorableOutput(f"asset '{asset}': {exc}") from None
    return frame


def _better_column(asset: str, name: str, column: pd.Series) -> Any:
    import pandas as pd
    from pandas.api.types import infer_dtype

    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or dtype.kind == "M":
        return column.dt.as_unit("ms") if _unit(dtype) == "s" else None
    if not _is_object(dtype):
        return None
    kind = infer_dtype(column, skipna=True)
    if kind not in _BY_PANDAS:
        return None
    if kind in ("datetime", "datetime64") and len(_zones(column)) > 1:
        raise UnstorableOutput(_mixed(asset, name, kind, None))
    try:
        array = pd.array(column.to_numpy(), copy=False)
    except (TypeError, ValueError, OverflowError) as exc:
        raise UnstorableOutput(_mixed(asset, name, kind, exc)) from None
    if isinstance(array, pd.arrays.NumpyExtensionArray):  # pandas found no better type
        raise UnstorableOutput(_mixed(asset, name, kind, None))
    if _unit(array.dtype) == "s":
        array = pd.Series(array).dt.as_unit("ms").array
    return array


def _better_index(asset: str, index: pd.Index) -> pd.Index | None:
    """The index as it reads back: its levels normalised as columns are, a date index
    without its `freq` (Parquet does not keep it); None if nothing changes."""
    import pandas as pd

    if isinstance(index, pd.RangeIndex):
        return None
    # freq=None drops it, keeping the values (not copied); pandas-stubs omit None
    if isinstance(index, pd.DatetimeIndex) and index.freq is not None:
        index = pd.DatetimeIndex(index, freq=None)  # type: ignore[arg-type]
        return _better_index(asset, index) or index
    if isinstance(index, pd.TimedeltaIndex) and index.freq is not None:
        index = pd.TimedeltaIndex(index, freq=None)  # type: ignore[arg-type]
        return _better_index(asset, index) or index
    levels = [index.get_level_values(i) for i in range(index.nlevels)]
    names = [f"index level {i}" if n is None else str(n) for i, n in enumerate(index.names)]
    better = [
        _better_column(asset, name, pd.Series(level))
        for name, level in zip(names, levels, strict=True)
    ]
    if all(b is None for b in better):
        return None
    arrays = [lv if b is None else b for lv, b in zip(levels, better, strict=True)]
    if index.nlevels == 1:
        return pd.Index(arrays[0], name=index.name)
    return pd.MultiIndex.from_arrays(arrays, names=index.names)


def _level(index: pd.Index, i: int) -> str:
    """A level of the index as errors name it."""
    name = index.names[i]
    return f"index {quoted(str(name))}" if name is not None else f"index level {i}"


def _zones(column: pd.Series) -> set[str | None]:
    """The time zones of an object column's datetimes (None: naive)."""
    zones = column.dropna().map(lambda v: None if v.tzinfo is None else str(v.tzinfo))
    return set(zones)


def _is_object(dtype: Any) -> bool:
    import numpy as np

    return isinstance(dtype, np.dtype) and dtype.kind == "O"


def _unit(dtype: Any) -> str | None:
    import numpy as np

    numpy = getattr(dtype, "base", None) if not isinstance(dtype, np.dtype) else dtype
    if isinstance(numpy, np.dtype) and numpy.kind in "mM":
        return np.datetime_data(numpy)[0]
    return getattr(dtype, "unit", None)


def _mixed(asset: str, name: str, kind: str, exc: Exception | None) -> str:
    if kind in ("datetime", "datetime64"):
        return (
            f"asset '{asset}': column {quoted(name)} mixes datetimes of different time zones (or "
            "naive and aware ones), which one column cannot hold; convert it with "
            "pd.to_datetime(column, utc=True) or give every value the same time zone"
        )
    if kind == "integer":
        return (
            f"asset '{asset}': column {quoted(name)} holds integers beyond 64 bits, which Parquet "
            "cannot store; store them as strings or decimal.Decimal"
        )
    why = f" ({first_line(exc)})" if exc is not None else ""
    return (
        f"asset '{asset}': column {quoted(name)} holds {kind} values that do not fit one "
        f"type{why}; give every value of the column the same type"
    )


def _unreadable(asset: str, frame: pd.DataFrame, exc: Exception) -> str:
    import pandas as pd

    culprits = [str(c) for c, t in frame.dtypes.items() if isinstance(t, pd.ArrowDtype)]
    culprit = f"column {quoted(culprits[0])}" if culprits else "a column"
    return (
        f"asset '{asset}': {culprit} would not read back from Parquet ({first_line(exc)}); "
        "convert it to an object column of lists or dicts (.astype(object)), or to JSON text"
    )


def _arrow_failure(asset: str, exc: Exception) -> str:
    args = getattr(exc, "args", ())
    where = next((a for a in args[1:] if isinstance(a, str)), "")
    column = where.split("column ", 1)[1].split(" with type")[0] if "column " in where else ""
    text = args[0].strip() if args and isinstance(args[0], str) else ""
    reason = text.splitlines()[0] if text else first_line(exc)
    culprit = f"column {quoted(column)}" if column else "a column"
    return (
        f"asset '{asset}': {culprit} cannot be stored as Parquet ({reason}); "
        "give every value of the column one type that Parquet stores (see docs/types.md)"
    )


# -- after conversion ---------------------------------------------------------------


def _refuse_lossy_types(asset: str, table: pa.Table) -> None:
    """Types that pass to Arrow but that Parquet would not give back as they are."""
    import pyarrow as pa

    for field in table.schema:
        kind = field.type
        if pa.types.is_dictionary(kind) and not (
            pa.types.is_string(kind.value_type) or pa.types.is_large_string(kind.value_type)
        ):
            raise UnstorableOutput(
                f"asset '{asset}': column {quoted(field.name)} is a categorical of "
                f"{kind.value_type} values, which Parquet gives back as plain "
                f"{kind.value_type}; convert it with .astype('{_plain(kind.value_type)}') "
                "or make its categories strings"
            )
        if _has_empty_struct(kind):
            raise UnstorableOutput(
                f"asset '{asset}': column {quoted(field.name)} holds dicts without keys, "
                "which Parquet cannot store; give them keys, or store them as JSON text"
            )


def _has_empty_struct(kind: pa.DataType) -> bool:
    """Whether a type is, or holds, a struct of no fields (what `{}` cells become)."""
    import pyarrow as pa

    if pa.types.is_struct(kind):
        return kind.num_fields == 0 or any(_has_empty_struct(f.type) for f in kind)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _has_empty_struct(kind.value_type)
    return False


def _plain(kind: pa.DataType) -> str:
    import pyarrow as pa

    return "Int64" if pa.types.is_integer(kind) else str(kind.to_pandas_dtype().__name__)


def _kept_as_is(frame: pd.DataFrame) -> bool:
    """Whether reading the frame back gives the frame itself: every column and index
    level has a type that Parquet keeps exactly (checked against the type matrix of
    tests/test_fidelity.py), and the index is not a named RangeIndex (stored as a column,
    it reads back as an Index). A look at the dtypes, so the common case costs nothing."""
    import pandas as pd

    if not all(_kept(dtype) for dtype in frame.dtypes):
        return False
    index = frame.index
    if isinstance(index, pd.RangeIndex):
        return index.name is None  # numbered 0, 1, 2...: row numbers are dropped before
    levels = index.dtypes if isinstance(index, pd.MultiIndex) else [index.dtype]
    return all(_kept(dtype, in_index=True) for dtype in levels)


def _kept(dtype: Any, in_index: bool = False) -> bool:
    """Whether Parquet gives back a column (or an index level) of this type exactly."""
    import numpy as np
    import pandas as pd

    if isinstance(dtype, np.dtype):
        return dtype.kind in "biufm" or (dtype.kind == "M" and _unit(dtype) != "s")
    if isinstance(dtype, pd.DatetimeTZDtype):
        return dtype.unit != "s"
    if isinstance(dtype, pd.StringDtype):
        return dtype.storage == "pyarrow"
    if in_index:  # pyarrow rebuilds the other types only for columns
        return False
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories.dtype
        return isinstance(categories, pd.StringDtype) and categories.storage == "pyarrow"
    if isinstance(dtype, pd.PeriodDtype | pd.IntervalDtype | pd.BooleanDtype):
        return True
    return (
        isinstance(dtype, pd.api.extensions.ExtensionDtype)
        and dtype.kind in "iuf"
        and (
            type(dtype).__module__.startswith("pandas.core.arrays")  # Int64, Float64...
        )
    )


def _compare(asset: str, frame: pd.DataFrame, back: pd.DataFrame) -> None:
    """Raise if any value of `frame` reads back as another value (a new type of missing
    value, a list that reads back as a list, a decimal with more digits are the same)."""
    from pandas.api.types import infer_dtype

    if list(back.columns) != list(frame.columns) or len(back) != len(frame):
        raise UnstorableOutput(f"asset '{asset}': its columns do not read back as written")
    for name in frame.columns:
        mine, theirs = frame[name], back[name]
        if _is_object(mine.dtype) and infer_dtype(mine, skipna=True) in _SAME_BY_CONSTRUCTION:
            continue
        if mine.dtype == theirs.dtype and _kept(mine.dtype):
            continue
        _same_column(asset, f"column {quoted(str(name))}", mine.to_numpy(), theirs.to_numpy())
    index, back_index = frame.index, back.index
    if (
        type(index) is type(back_index)
        and index.equals(back_index)
        and all(
            _kept(index.get_level_values(i).dtype, in_index=True)
            and index.get_level_values(i).dtype == back_index.get_level_values(i).dtype
            for i in range(index.nlevels)
        )
    ):
        return
    if list(index.names) != list(back_index.names):
        raise UnstorableOutput(f"asset '{asset}': its index does not read back as written")
    for i in range(index.nlevels):
        _same_column(
            asset,
            _level(index, i),
            index.get_level_values(i).to_numpy(),
            back_index.get_level_values(i).to_numpy(),
        )


def _stable(asset: str, frame: pd.DataFrame, back: pd.DataFrame, table: pa.Table) -> None:
    """What is read back must store as the same content, or data versions would depend
    on where a frame came from (pyarrow gives back some index types as others)."""
    from vibepiper.storage.parquet_store import to_arrow
    from vibepiper.versioning.data_version import table_version

    if table_version(to_arrow(back)) == table_version(table):
        return
    index, back_index = frame.index, back.index
    levels = [
        (
            _level(index, i),
            ", or reset_index()",
            index.get_level_values(i).dtype,
            back_index.get_level_values(i).dtype,
        )
        for i in range(index.nlevels)
    ]
    columns = [
        (f"column {quoted(str(c))}", "", frame[c].dtype, back[c].dtype) for c in frame.columns
    ]
    for what, or_else, mine, theirs in [*levels, *columns]:
        if mine != theirs:
            raise UnstorableOutput(
                f"asset '{asset}': {what} reads back as {theirs}, not {mine}; convert it to "
                f"a type that Parquet keeps (see docs/types.md){or_else}"
            )
    raise UnstorableOutput(
        f"asset '{asset}': its data does not read back as written; see docs/types.md"
    )


def _same_column(asset: str, what: str, mine: Any, theirs: Any) -> None:
    for row, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        if not _same(a, b):
            raise UnstorableOutput(
                f"asset '{asset}': {what} would read back changed (row {row}: {_show(a)} "
                f"becomes {_show(b)}); give every value of the column one type "
                "(dicts: the same keys; lists: one element type), or store it as JSON text"
            )


def _show(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _missing(value: Any) -> bool:
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _same(a: Any, b: Any) -> bool:
    """Equal values, deeply and exactly: 2**53 + 1 is not 2**53 as a float, a dict
    gaining a key changes, missing values of any kind are the same."""
    import numpy as np

    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    if isinstance(a, np.generic):
        a = a.item()
    if isinstance(b, np.generic):
        b = b.item()
    sequences = list | tuple | np.ndarray
    if isinstance(a, sequences) or isinstance(b, sequences):
        if not (isinstance(a, sequences) and isinstance(b, sequences)):
            return False
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)) or a.keys() != b.keys():
            return False
        return all(_same(a[k], b[k]) for k in a)
    if isinstance(a, str | bytes) or isinstance(b, str | bytes):
        return type(a) is type(b) and a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    try:
        return bool(a == b)
    except Exception:
        return False
