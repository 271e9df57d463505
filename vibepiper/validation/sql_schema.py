"""A pandera schema checked as SQL over a Parquet file: what of it SQL can check, and the
translation of that into measures, with the failures pandera reports.

What cannot run as SQL (refused by `sql_checks.sql_problem`, or a failed outcome saying
why) is, in a pandera schema, anything but declared columns with the built-in checks
below (custom, element-wise, grouped, `ignore_na=False` or `raise_warning` checks,
dataframe-wide checks, an index, regex columns, parsers, `default=`, `ordered`,
`strict="filter"`, `add_missing_columns`, `drop_invalid_rows`, `report_duplicates` other
than "all", compiled regex patterns, and a dtype outside the mapping below).

Pandera checks translated: equal_to, not_equal_to, greater_than(_or_equal_to),
less_than(_or_equal_to), in_range, isin, notin (a string is its set of characters),
str_matches (pandas' `^(pattern)`), str_contains, str_startswith, str_endswith,
str_length (characters), unique_values_eq. Regular expressions run on RE2 in DuckDB, as
pandas runs them on a string column read from Parquet (pyarrow's RE2).

Pandera dtypes and the Arrow types of the file they accept, exactly (numpy and pandas'
nullable dtypes alike: a Parquet column is nullable whatever its type):

    int8 ... int64, uint8 ... uint64    the integer of that width and signedness
    float16, float32, float64            halffloat, float, double
    bool, boolean                        bool
    str, string                          string, large_string
    datetime64 (naive)                   timestamp of any unit, without a zone
    datetime64 with tz=                  timestamp of any unit, in that zone (as pandas
                                         compares zones: "UTC" is datetime.timezone.utc)
    DateTime(time_zone_agnostic=True)    timestamp of any unit, in any zone
    date                                 date32, date64
    category (no categories declared)    dictionary
    Decimal(p, s)                        decimal128/decimal256 of precision p, scale s

`coerce=True` cannot convert a file: the declared dtype is checked as it is.

Where the two paths differ, because pandas holds the data differently from the file:
- An integer or bool column with nulls is that type in the file; pandas reads it as
  float64 / object (unless pandas metadata says Int64), so there pandera also fails the
  dtype. A Decimal's precision is checked here; pandera cannot see it in objects. A
  zoned timestamp whose unit differs from the declared one fails pandera's dtype check
  (a naive one does not); here any unit passes, DuckDB writing microseconds.
- A dtype mismatch is a whole-column failure here; pandera sometimes lists the values it
  could not coerce instead.
- Nulls never count as duplicates for a column's `unique=True` (pandera's own result);
  when only nulls repeat, the pandas path loses the failure and reports no outcome at
  all, where this path reports the schema passed. The pandas path (under pandas 3)
  names a failure of an unnamed schema `schema.nan.CHECK`; here it is `schema.CHECK`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from vibepiper.definitions.expect import Severity
from vibepiper.text import plural
from vibepiper.validation.outcome import CheckOutcome, sample_json
from vibepiper.validation.sql_measures import Plan, _done, _Run
from vibepiper.validation.sql_values import (
    _all,
    _Col,
    _compare,
    _error,
    _member_texts,
    _members,
    _not,
    _Sql,
    _Unevaluable,
)

Pending = Callable[[], "_Failure | None"]  # one schema check's failure, if it failed

WRITE_INSTEAD = "write it as expect.sql(QUERY) returning the failing rows"


@dataclass(frozen=True)
class _Problem:
    """Part of a schema that cannot run as SQL."""

    column: str | None
    check: str
    message: str


@dataclass(frozen=True)
class _ColumnSpec:
    name: str
    dtype: Any  # a pandera DataType, or None
    nullable: bool
    unique: bool
    required: bool
    checks: tuple[Any, ...]  # pandera Checks, each with a translation


@dataclass(frozen=True)
class _SchemaSpec:
    """A pandera schema as far as SQL can check it."""

    name: str | None
    columns: tuple[_ColumnSpec, ...]
    strict: bool
    unique: tuple[str, ...]
    problems: tuple[_Problem, ...]


@dataclass(frozen=True)
class _Failure:
    column: str | None
    check: str
    count: int
    message: str
    sample: str | None = None


def _read_schema(schema: Any) -> _SchemaSpec | str:
    """The schema's columns and what cannot run as SQL; a text if it is no pandera schema."""
    try:
        from pandera.api.pandas.container import DataFrameSchema
    except ImportError:  # pragma: no cover - pandera is a dependency
        return "cannot be read: pandera is not installed"
    resolved, to_schema = schema, getattr(schema, "to_schema", None)
    if isinstance(schema, type) and callable(to_schema):
        try:
            resolved = to_schema()
        except Exception as exc:
            return f"could not be read: {_error(exc)}"
    if not isinstance(resolved, DataFrameSchema):
        return f"is {type(schema).__name__}, not a pandera DataFrameModel or DataFrameSchema"
    problems = _frame_problems(resolved)
    columns = []
    for name, column in resolved.columns.items():
        found = _column_problems(name, column)
        problems += found
        if not found:
            columns.append(_column_spec(str(name), column))
    unique = resolved.unique
    return _SchemaSpec(
        resolved.name,
        tuple(columns),
        resolved.strict is True,
        (unique,) if isinstance(unique, str) else tuple(unique or ()),
        tuple(problems),
    )


def _frame_problems(schema: Any) -> list[_Problem]:
    unsupported = [
        (bool(schema.checks), "checks", "its dataframe-wide checks take the whole frame"),
        (schema.index is not None, "index", "it declares an index, which a file has not"),
        (schema.strict == "filter", "strict", 'strict="filter" would drop columns'),
        (bool(schema.ordered), "ordered", "ordered=True is not checked as SQL"),
        (bool(schema.add_missing_columns), "add_missing_columns", "it would add columns"),
        (bool(schema.drop_invalid_rows), "drop_invalid_rows", "it would drop rows"),
        (bool(getattr(schema, "parsers", None)), "parsers", "its parsers change the data"),
        (
            bool(schema.unique) and schema.report_duplicates != "all",
            "unique",
            f"report_duplicates={schema.report_duplicates!r} is not checked as SQL",
        ),
    ]
    return [
        _Problem(None, check, f"schema: {why}; {WRITE_INSTEAD}")
        for wrong, check, why in unsupported
        if wrong
    ]


def _column_problems(name: Any, column: Any) -> list[_Problem]:
    label = f"schema column {name!r}"
    unsupported = [
        (not isinstance(name, str) or bool(column.regex), "regex", "is not one named column"),
        (bool(getattr(column, "parsers", None)), "parsers", "has parsers, which change data"),
        (column.default is not None, "default", "has default=, which fills nulls"),
        (bool(column.drop_invalid_rows), "drop_invalid_rows", "would drop rows"),
        (
            bool(column.unique) and column.report_duplicates != "all",
            "field_uniqueness",
            f"has report_duplicates={column.report_duplicates!r}",
        ),
    ]
    problems = [
        _Problem(str(name), check, f"{label} {why}; {WRITE_INSTEAD}")
        for wrong, check, why in unsupported
        if wrong
    ]
    if column.dtype is not None and _dtype_rule(column.dtype) is None:
        problems.append(
            _Problem(
                str(name),
                f"dtype('{column.dtype}')",
                f"{label} has dtype {column.dtype}, which has no Parquet type to check; "
                "declare int8..int64, uint8..uint64, float16..float64, bool, str, "
                "datetime64 (with or without a zone), date, category or Decimal(p, s)",
            )
        )
    for check in column.checks:
        why = _check_problem(check)
        if why:
            problems.append(
                _Problem(str(name), _label(check), f"{label}: check {_label(check)} {why}")
            )
    return problems


def _check_problem(check: Any) -> str:
    if not _builtin(check):
        return f"has no SQL translation; {WRITE_INSTEAD}"
    options = [
        (check.groupby is not None, "groupby="),
        (bool(check.element_wise), "element_wise=True"),
        (not check.ignore_na, "ignore_na=False"),
        (bool(check.raise_warning), "raise_warning=True (use expect.sql(..., severity='warn'))"),
        (not isinstance(check.statistics.get("pattern", ""), str), "a compiled pattern"),
    ]
    found = [what for wrong, what in options if wrong]
    return f"has {found[0]}, which SQL does not translate; {WRITE_INSTEAD}" if found else ""


def _builtin(check: Any) -> bool:
    """A built-in pandera check we translate, not a function that took its name: its
    function dispatches to pandera's own (which schemas copy, and pandera extends as it
    registers backends: any function in common tells)."""
    name = getattr(check, "name", None)
    if name not in _TRANSLATIONS and name != "unique_values_eq":
        return False
    registry = getattr(type(check), "CHECK_FUNCTION_REGISTRY", {})
    own = getattr(registry.get(name), "_function_registry", None) or {}
    mine = getattr(check._check_fn, "_function_registry", None) or {}
    return any(fn is theirs for fn in mine.values() for theirs in own.values())


def _label(check: Any) -> str:
    """A check's name in outcomes, as pandera reports it: `greater_than_or_equal_to(0)`."""
    return str(getattr(check, "error", None) or getattr(check, "name", None) or check)


def _column_spec(name: str, column: Any) -> _ColumnSpec:
    return _ColumnSpec(
        name,
        column.dtype,
        bool(column.nullable),
        bool(column.unique),
        bool(column.required),
        tuple(column.checks),
    )


def _plan_schema(run: _Run, schema: Any) -> Plan:
    spec = _read_schema(schema)
    if isinstance(spec, str):
        message = f"schema= of asset '{run.table}' {spec}"
        return _done(CheckOutcome("schema", Severity.ERROR, False, message=message, kind="schema"))
    pending: list[Pending] = [_problem_failure(p) for p in spec.problems]
    for column in spec.columns:
        pending += _plan_column(run, column)
    declared = {c.name for c in spec.columns} | {p.column for p in spec.problems}
    extra = [n for n in run.names if n not in declared]
    if spec.strict and extra:
        pending.append(partial(_whole, run, spec.name, "column_in_schema", ", ".join(extra[:3])))
    if spec.unique and all(c in run.kinds for c in spec.unique):
        pending += [_dupes(run, spec.unique, c, "multiple_fields_uniqueness") for c in spec.unique]

    def outcomes() -> list[CheckOutcome]:
        failures = [f for f in (p() for p in pending) if f is not None]
        if not failures:
            return [CheckOutcome("schema", Severity.ERROR, True, kind="schema")]
        failures.sort(key=lambda f: (str(f.column), f.check))
        return [
            CheckOutcome(
                f"schema.{f.column}.{f.check}" if f.column is not None else f"schema.{f.check}",
                Severity.ERROR,
                False,
                f.count,
                f.message,
                f.sample,
                "schema",
            )
            for f in failures
        ]

    return outcomes


def _problem_failure(problem: _Problem) -> Pending:
    return lambda: _Failure(problem.column, problem.check, 0, problem.message)


def _plan_column(run: _Run, spec: _ColumnSpec) -> list[Pending]:
    name = spec.name
    if name not in run.kinds:
        missing = _Failure(name, "column_in_dataframe", 0, f"column '{name}' is missing")
        return [lambda: missing] if spec.required else []
    col = run.column(name)
    pending: list[Pending] = []
    rule = _dtype_rule(spec.dtype) if spec.dtype is not None else None
    if rule is not None and not rule(col.kind):
        pending.append(partial(_whole, run, name, f"dtype('{spec.dtype}')", str(col.kind)))
    if not spec.nullable:
        pending.append(_rows(run, name, "not_nullable", col.null))
    if spec.unique:
        pending.append(_dupes(run, (name,), name, "field_uniqueness"))
    labelled: dict[str, Any] = {}  # pandera reports a check given twice once
    for check in spec.checks:
        labelled.setdefault(_label(check), check)
    pending += [_plan_check(run, col, check) for check in labelled.values()]
    return pending


def _plan_check(run: _Run, col: _Col, check: Any) -> Pending:
    label = _label(check)
    try:
        if check.name == "unique_values_eq":
            return _unique_values(run, col, label, check.statistics["values"])
        passes = _TRANSLATIONS[check.name](col, check.statistics)
    except _Unevaluable as exc:
        return partial(_whole, run, col.name, label, str(exc))
    return _rows(run, col.name, label, _all(col.present, _not(passes)))


def _whole(run: _Run, column: str | None, check: str, shown: str) -> _Failure:
    """A failure of the whole column (or schema): every row counts."""
    subject = f"column '{column}'" if column is not None else "schema"
    return _Failure(column, check, run.rows(), f"{subject} failed {check}: {shown}")


def _rows(run: _Run, column: str, check: str, where: _Sql) -> Pending:
    measure = run.count(where)

    def failure() -> _Failure | None:
        if measure.error:
            return _Failure(column, check, 0, f"column '{column}' failed {check}: {measure.error}")
        return _rows_failure(run, column, check, int(measure.value or 0), where)

    return failure


def _dupes(run: _Run, columns: Sequence[str], column: str, check: str) -> Pending:
    """Rows whose `column` is not null and whose `columns` another row shares (pandera
    leaves the nulls out of its failure cases)."""
    dupes = run.duplicates(columns)
    where = _all(run.duplicated(columns), run.column(column).present)

    def failure() -> _Failure | None:
        if dupes.error:
            return _Failure(column, check, 0, f"column '{column}' failed {check}: {dupes.error}")
        return _rows_failure(run, column, check, dupes.present.get(column, 0), where)

    return failure


def _rows_failure(run: _Run, column: str, check: str, count: int, where: _Sql) -> _Failure | None:
    if not count:
        return None
    rows = run.sample(where)
    examples = ""
    if rows is not None and column in rows.columns:
        values = rows.iloc[:, list(rows.columns).index(column)].head(3).tolist()
        examples = f" (e.g. {', '.join(repr(v) for v in values)})"
    message = f"column '{column}' failed {check} in {plural(count, 'row')}{examples}"
    sample = sample_json(rows, [column]) if rows is not None else None
    return _Failure(column, check, count, message, sample)


def _unique_values(run: _Run, col: _Col, label: str, values: Iterable[Any]) -> Pending:
    """pandera's unique_values_eq: the column's distinct non-null values are `values`."""
    items, unmatched = _member_texts(col, values)
    inside = _members(col, values)
    outside = run.count(_all(col.present, _not(inside)))
    distinct = run.measure(
        _Sql(f"count(DISTINCT {col.key}) FILTER (WHERE {inside.text})", inside.params)
    )

    def failure() -> _Failure | None:
        error = outside.error or distinct.error
        if error:
            return _Failure(col.name, label, 0, f"column '{col.name}' failed {label}: {error}")
        if not unmatched and not outside.value and distinct.value == len(items):
            return None
        return _whole(run, col.name, label, "False")

    return failure


def _strings(col: _Col) -> None:
    if col.family not in ("string", "category"):
        raise _Unevaluable("AttributeError: Can only use .str accessor with string values!")


def _text_op(col: _Col, function: str, value: Any) -> _Sql:
    _strings(col)
    if not isinstance(value, str):
        raise _Unevaluable(f"TypeError: expected a string, not {type(value).__name__}")
    return _Sql(f"{function}({col.sql}, ?)", (value,))


def _literal(text: str) -> str:
    """A string literal: a regex pattern is compiled once only when it is a constant."""
    if "\x00" in text:
        raise _Unevaluable("ValueError: a NUL character in a pattern")
    return "'" + text.replace("'", "''") + "'"


def _regex(col: _Col, pattern: str) -> _Sql:
    _strings(col)
    return _Sql(f"regexp_matches({col.sql}, {_literal(pattern)})")


def _anchored(pattern: str) -> str:
    """pandas' `str.match` on Arrow strings: the pattern anchored at the start."""
    return f"^({pattern[1:] if pattern.startswith('^') else pattern})"


def _length(col: _Col, stats: dict[str, Any]) -> _Sql:
    _strings(col)
    length = f"length({col.sql})"
    if stats.get("exact_value") is not None:
        return _Sql(f"{length} = ?", (stats["exact_value"],))
    bounds = [(">=", stats.get("min_value")), ("<=", stats.get("max_value"))]
    parts = [_Sql(f"{length} {op} ?", (v,)) for op, v in bounds if v is not None]
    if not parts:
        raise _Unevaluable("ValueError: Must provide at least one of 'min_value' and 'max_value'")
    return _all(*parts)


def _between(col: _Col, stats: dict[str, Any]) -> _Sql:
    low = ">=" if stats.get("include_min", True) else ">"
    high = "<=" if stats.get("include_max", True) else "<"
    return _all(_compare(col, low, stats["min_value"]), _compare(col, high, stats["max_value"]))


def _characters(values: Any) -> Any:
    """pandera's isin and notin read a string as its set of characters."""
    return list(values) if isinstance(values, str) else values


# a row passes the check (its value being present)
_TRANSLATIONS: dict[str, Callable[[_Col, dict[str, Any]], _Sql]] = {
    "equal_to": lambda col, s: _compare(col, "=", s["value"]),
    "not_equal_to": lambda col, s: _compare(col, "<>", s["value"]),
    "greater_than": lambda col, s: _compare(col, ">", s["min_value"]),
    "greater_than_or_equal_to": lambda col, s: _compare(col, ">=", s["min_value"]),
    "less_than": lambda col, s: _compare(col, "<", s["max_value"]),
    "less_than_or_equal_to": lambda col, s: _compare(col, "<=", s["max_value"]),
    "in_range": _between,
    "isin": lambda col, s: _members(col, _characters(s["allowed_values"])),
    "notin": lambda col, s: _not(_members(col, _characters(s["forbidden_values"]))),
    "str_matches": lambda col, s: _regex(col, _anchored(s["pattern"])),
    "str_contains": lambda col, s: _regex(col, s["pattern"]),
    "str_startswith": lambda col, s: _text_op(col, "starts_with", s["string"]),
    "str_endswith": lambda col, s: _text_op(col, "ends_with", s["string"]),
    "str_length": _length,
}

_INTEGER_DTYPES = {
    f"{prefix}INT{bits}": (bits, prefix == "") for prefix in ("", "U") for bits in (8, 16, 32, 64)
}
_FLOAT_DTYPES = {"FLOAT16": 16, "FLOAT32": 32, "FLOAT64": 64}


def _dtype_rule(dtype: Any) -> Callable[[Any], bool] | None:
    """Which Arrow types a pandera dtype accepts (see the module's docstring); None if
    it has no Parquet equivalent."""
    import pyarrow as pa

    engine_name = type(dtype).__module__.rsplit(".", 1)[-1]
    name = type(dtype).__name__.upper()
    if engine_name not in ("numpy_engine", "pandas_engine"):
        return None
    if name in _INTEGER_DTYPES:
        bits, signed = _INTEGER_DTYPES[name]
        return lambda k: (
            pa.types.is_integer(k)
            and k.bit_width == bits
            and pa.types.is_signed_integer(k) == signed
        )
    if name in _FLOAT_DTYPES:
        width = _FLOAT_DTYPES[name]
        return lambda k: pa.types.is_floating(k) and k.bit_width == width
    if name == "BOOL":
        return pa.types.is_boolean
    if (name, engine_name) == ("STRING", "pandas_engine"):
        return lambda k: pa.types.is_string(k) or pa.types.is_large_string(k)
    if (name, engine_name) == ("DATE", "pandas_engine"):
        return pa.types.is_date
    if (name, engine_name) == ("DATETIME", "pandas_engine"):
        return _timestamp_rule(dtype)
    if name == "CATEGORY" and not getattr(dtype, "categories", None) and not dtype.ordered:
        return pa.types.is_dictionary
    if name == "DECIMAL":
        precision, scale = dtype.precision, dtype.scale
        return lambda k: pa.types.is_decimal(k) and (k.precision, k.scale) == (precision, scale)
    return None


def _timestamp_rule(dtype: Any) -> Callable[[Any], bool]:
    import pyarrow as pa

    zone = getattr(dtype, "tz", None)
    if getattr(dtype, "time_zone_agnostic", False):
        return lambda k: pa.types.is_timestamp(k) and k.tz is not None
    if zone is None:
        return lambda k: pa.types.is_timestamp(k) and k.tz is None
    return lambda k: pa.types.is_timestamp(k) and k.tz is not None and _same_zone(zone, k.tz)


def _same_zone(declared: Any, found: str) -> bool:
    """The same zone as pandas tells zones apart ("UTC" is datetime.timezone.utc)."""
    import pandas as pd

    try:
        return bool(pd.DatetimeTZDtype("ns", declared) == pd.DatetimeTZDtype("ns", found))
    except (TypeError, ValueError, LookupError):
        return False
