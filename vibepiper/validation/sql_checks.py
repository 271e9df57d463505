"""Checks of an output too large for pandas, run as SQL over its Parquet file.

A SQL asset's output is written by DuckDB straight into a Parquet file and may be far
larger than memory, so its checks never load it: `run_sql_checks` runs them as queries
over a DuckDB view of the file, and gives the outcomes the pandas path gives for the same
data (`expectations.evaluate` and `schema_check.validate_schema` on the frame the file
reads back as): the same names, severities, verdicts, failing-row counts, samples and
messages in the same words. The queries, whatever the number of checks:

- one aggregate over the view: the row count, and a `count(*) FILTER (WHERE ...)` for
  each row-level check (`not_null`, `accepted_values`, `in_range`, and a schema's
  nullability, column checks and `unique_values_eq`);
- one `GROUP BY GROUPING SETS` for every uniqueness check (`expect.unique`, a column's
  `unique=True`, a schema's `unique=[...]`);
- one for the relationships (a mark join per check against the other asset's view);
- a count over each `expect.sql` and `@check(sql=...)` query;
- for each failed check only, a sample query of at most SAMPLE_ROWS rows.
A query that fails is run again check by check, so that the error is blamed on its check,
whose outcome says why: `run_sql_checks` never raises for a check.

What cannot run as SQL is refused by `sql_problem` (a definition error for the caller)
and, should it run anyway, is a failed outcome saying why, never skipped: registered
expectations (their function takes a DataFrame), quarantine, and in a pandera schema
anything but declared columns with the built-in checks below (custom, element-wise,
grouped, `ignore_na=False` or `raise_warning` checks, dataframe-wide checks, an index,
regex columns, parsers, `default=`, `ordered`, `strict="filter"`, `add_missing_columns`,
`drop_invalid_rows`, `report_duplicates` other than "all", compiled regex patterns, and a
dtype outside the mapping below).

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
- A value that does not compare with the column's type (`in_range("name", min=0)`)
  fails the check even when the column holds no value; pandas only notices with a value
  to compare (for most types).
- A bound finer than the column's unit (nanoseconds against microseconds) is truncated
  to the unit; a decimal column compared with a float is compared as a double.
- An `expect.sql` query sees NaN as DuckDB does (a value, the largest double), where the
  pandas path's DuckDB reads a frame's NaN as NULL: a query telling them apart (`isnan`,
  `IS NULL`, `> x` on a column holding NaN) counts differently.
- DuckDB trusts a Parquet file's min/max statistics, which leave NaN out: unless the
  connection sets `parquet_can_have_nan`, a query may skip or misjudge rows holding NaN.
  The checks here tell NaN from the value itself; a user's query is not rewritten.
- Samples are the first failing rows in the file's order when the connection preserves
  insertion order (DuckDB's default); without it, they are some failing rows.
- Columns whose names differ only in case are one name to DuckDB.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from vibepiper import engine
from vibepiper.definitions.expect import BUILTIN_KINDS, Expectation, Kind, Severity
from vibepiper.text import first_line, plural
from vibepiper.validation.outcome import SAMPLE_ROWS, CheckKind, CheckOutcome, sample_json

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

Plan = Callable[[], list[CheckOutcome]]  # its outcomes, once the measures are taken
Pending = Callable[[], "_Failure | None"]  # one schema check's failure, if it failed

WRITE_INSTEAD = "write it as expect.sql(QUERY) returning the failing rows"


def sql_problem(
    owner: str, schema: Any, checks: Sequence[Expectation], *, quarantine: bool = False
) -> str:
    """Why this schema or these expectations cannot run as SQL ("" if they can): one
    line naming `owner` (e.g. "asset 'orders'") and the check, and what to write instead.
    `quarantine=True` (the asset's option) cannot: it removes rows from a frame."""
    if quarantine:
        return (
            f"{owner}: quarantine=True needs the rows in memory to remove them; "
            "filter them out in the asset's query instead"
        )
    for exp in checks:
        problem = _expectation_problem(exp)
        if problem:
            return f"{owner}: {problem}"
    if schema is None:
        return ""
    spec = _read_schema(schema)
    if isinstance(spec, str):
        return f"{owner}: schema= {spec}"
    return f"{owner}: {spec.problems[0].message}" if spec.problems else ""


def run_sql_checks(
    con: Any,
    table: str,
    file_schema: pa.Schema,
    schema: Any,
    checks: Sequence[Expectation],
    sql_checks: Sequence[tuple[str, Severity, str]] = (),
) -> tuple[CheckOutcome, ...]:
    """The outcomes of the asset's schema, expectations and `@check(sql=...)` queries
    (name, severity, failing-rows query), as SQL over the view `table` of its file in
    `con` (other assets are views of their names), in the pandas path's order."""
    run = _Run(con, table, file_schema)
    plans = []
    if schema is not None:
        plans.append(
            _guarded(
                partial(_plan_schema, run, schema),
                CheckOutcome("schema", "error", False, kind="schema"),
                "schema=",
            )
        )
    for exp in [*(e for e in checks if e.row_level), *(e for e in checks if not e.row_level)]:
        failed = CheckOutcome(exp.name, exp.severity, False)
        plans.append(_guarded(partial(_plan_expectation, run, exp), failed, exp.describe()))
    run.execute()
    outcomes = [outcome for plan in plans for outcome in plan()]
    outcomes += [_query(run, name, sev, query, "check") for name, sev, query in sql_checks]
    return tuple(outcomes)


def _guarded(make: Callable[[], Plan], failed: CheckOutcome, label: str) -> Plan:
    """`make`'s plan; an error it did not foresee, planning or after, is the `failed`
    outcome saying what it was (never an exception out of run_sql_checks)."""

    def failure(exc: Exception) -> list[CheckOutcome]:
        engine.raise_if_interrupted(exc)
        return [replace(failed, message=f"{label} could not be evaluated: {_error(exc)}")]

    try:
        plan = make()
    except Exception as exc:
        outcome = failure(exc)
        return lambda: outcome

    def outcomes() -> list[CheckOutcome]:
        try:
            return plan()
        except Exception as exc:
            return failure(exc)

    return outcomes


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


def _literal(text: str) -> str:
    """A string literal: a regex pattern is compiled once only when it is a constant."""
    if "\x00" in text:
        raise _Unevaluable("ValueError: a NUL character in a pattern")
    return "'" + text.replace("'", "''") + "'"


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


# -- the measures, taken in as few queries as possible --------------------------------


@dataclass
class _Measure:
    """One aggregate over the view, taken by `_Run.execute`."""

    expr: _Sql
    value: Any = None
    error: str = ""


@dataclass
class _Dupes:
    """Rows sharing their values of `columns` with another row: all of them, and for each
    column those where it is not null (taken by `_Run.execute`)."""

    columns: tuple[str, ...]
    rows: int = 0
    present: dict[str, int] = field(default_factory=dict)
    error: str = ""


class _Run:
    """The view of one output, the measures its checks need, and their samples."""

    def __init__(self, con: Any, table: str, file_schema: Any) -> None:
        self.con, self.table, self.source = con, table, _ident(table)
        self.names = [str(n) for n in file_schema.names]
        self.kinds: dict[str, Any] = {}
        for item in file_schema:
            self.kinds.setdefault(str(item.name), item.type)
        self.scan: list[_Measure] = []
        self.joins: list[_Measure] = []
        self.dupes: dict[tuple[str, ...], _Dupes] = {}
        self.total = self.measure(_Sql("count(*)"))

    def column(self, name: str) -> _Col:
        if name not in self.kinds:
            raise _Missing(name)
        return _Col(name, self.kinds[name])

    def measure(self, expr: _Sql, *, join: bool = False) -> _Measure:
        found = _Measure(expr)
        (self.joins if join else self.scan).append(found)
        return found

    def count(self, where: _Sql, *, join: bool = False) -> _Measure:
        return self.measure(_Sql(f"count(*) FILTER (WHERE {where.text})", where.params), join=join)

    def duplicates(self, columns: Iterable[str]) -> _Dupes:
        names = tuple(columns)
        for name in names:
            self.column(name)
        return self.dupes.setdefault(names, _Dupes(names))

    def rows(self) -> int:
        return int(self.total.value or 0)

    def execute(self) -> None:
        self._measure(self.scan)
        self._measure(self.joins)
        self._group(list(self.dupes.values()))

    def _measure(self, measures: list[_Measure]) -> None:
        if not measures:
            return
        select = ", ".join(m.expr.text for m in measures)
        params = [p for m in measures for p in m.expr.params]
        try:
            [row] = self.con.execute(f"SELECT {select} FROM {self.source}", params).fetchall()
        except Exception as exc:  # DuckDB's errors, and a parameter it cannot take
            engine.raise_if_interrupted(exc)
            if len(measures) == 1:
                measures[0].error = _error(exc)
                return
            for one in measures:  # each alone, so that the error is its check's
                self._measure([one])
            return
        for one, value in zip(measures, row, strict=True):
            one.value = value

    def _group(self, groups: list[_Dupes]) -> None:
        if not groups:
            return
        names = list(dict.fromkeys(c for g in groups for c in g.columns))
        try:
            found = self.con.execute(self._grouped(names, groups)).fetchall()
        except Exception as exc:
            engine.raise_if_interrupted(exc)
            if len(groups) == 1:
                groups[0].error = _error(exc)
                return
            for one in groups:
                self._group([one])
            return
        counts = {row[0]: row[1:] for row in found}
        for group in groups:
            values = counts.get(_grouping(names, group.columns))
            group.rows = int(values[0]) if values else 0
            group.present = {
                c: int(values[1 + names.index(c)]) if values else 0 for c in group.columns
            }

    def _grouped(self, names: list[str], groups: list[_Dupes]) -> str:
        keys = [f"_vp_k{i}" for i in range(len(names))]
        inner = ", ".join(f"{self.column(n).key} AS {k}" for n, k in zip(names, keys, strict=True))
        distinct = dict.fromkeys(frozenset(g.columns) for g in groups)  # a set once: one mask
        sets = ", ".join(
            "(" + ", ".join(k for n, k in zip(names, keys, strict=True) if n in group) + ")"
            for group in distinct
        )
        counts = "".join(f", count({k}) AS _vp_c{i}" for i, k in enumerate(keys))
        sums = "".join(f", sum(_vp_c{i})" for i in range(len(keys)))
        return (
            f"SELECT _vp_g, sum(_vp_n){sums} FROM (SELECT GROUPING({', '.join(keys)}) AS _vp_g, "
            f"count(*) AS _vp_n{counts} FROM (SELECT {inner} FROM {self.source}) AS _vp_keys "
            f"GROUP BY GROUPING SETS ({sets}) HAVING count(*) > 1) AS _vp_dupes GROUP BY _vp_g"
        )

    def duplicated(self, columns: Sequence[str]) -> _Sql:
        """Rows whose values of `columns` another row shares (nulls equal, as in pandas)."""
        keys = [self.column(c).key for c in columns]
        named = [f"_vp_k{i}" for i in range(len(keys))]
        packed = ", ".join(f"'{n}': {k}" for n, k in zip(named, keys, strict=True))
        again = ", ".join(f"'{n}': {n}" for n in named)
        inner = ", ".join(f"{k} AS {n}" for n, k in zip(named, keys, strict=True))
        return _Sql(
            f"{{{packed}}} IN (SELECT {{{again}}} FROM (SELECT {inner} FROM {self.source}) "
            f"AS _vp_keys GROUP BY {', '.join(named)} HAVING count(*) > 1)",
            join=True,
        )

    def sample(self, where: _Sql) -> pd.DataFrame | None:
        """The first failing rows, whole (None if they cannot be read). A filter keeps the
        scan's order; through a join, rows are numbered first and sorted back."""
        if not where.join:
            query = f"SELECT * FROM {self.source} WHERE {where.text} LIMIT {SAMPLE_ROWS}"
            return self.fetch(_Sql(query, where.params))
        number = "_vp_row"
        while number in self.kinds:
            number += "_"
        query = (
            f"SELECT * EXCLUDE ({number}) FROM (SELECT row_number() OVER () AS {number}, * "
            f"FROM {self.source}) AS _vp_rows WHERE {where.text} "
            f"ORDER BY {number} LIMIT {SAMPLE_ROWS}"
        )
        return self.fetch(_Sql(query, where.params))

    def fetch(self, query: _Sql) -> pd.DataFrame | None:
        try:
            table = self.con.sql(query.text, params=list(query.params) or None).to_arrow_table()
            return _frame(table, self.kinds)
        except Exception as exc:  # a sample is only an illustration: none, then
            engine.raise_if_interrupted(exc)
            return None


def _grouping(names: list[str], columns: Sequence[str]) -> int:
    """DuckDB's GROUPING(k0, k1, ...) of the grouping set of `columns`: a bit per key,
    the first the highest, set for the keys not grouped by."""
    return sum(1 << (len(names) - 1 - i) for i, n in enumerate(names) if n not in columns)


def _frame(table: Any, kinds: dict[str, Any]) -> pd.DataFrame:
    """A few rows as a frame of Python values (exact integers, decimals), a zoned time in
    its column's zone (DuckDB gives it in the session's)."""
    import pandas as pd
    import pyarrow as pa

    values = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        zone = _zone(kinds.get(name))
        if zone and _zone(column.type):
            with contextlib.suppress(Exception):
                column = column.cast(pa.timestamp(column.type.unit, zone))
        values.append(pd.Series(column.to_pylist(), dtype=object))
    frame = pd.DataFrame(dict(enumerate(values)))
    frame.columns = pd.Index(table.column_names, dtype=object)
    return frame


def _zone(kind: Any) -> str | None:
    """The time zone of a zoned timestamp type, else None."""
    import pyarrow as pa

    return kind.tz if kind is not None and pa.types.is_timestamp(kind) and kind.tz else None


# -- expectations ---------------------------------------------------------------------


def _expectation_problem(exp: Expectation) -> str:
    if exp.custom is not None:
        return (
            f"expectation '{exp.name}' ({exp.describe()}) is registered with "
            "@register_expectation: its function takes a DataFrame, which a SQL asset "
            f"never builds; {WRITE_INSTEAD}"
        )
    if exp.kind not in BUILTIN_KINDS:
        return f"expectation '{exp.name}' is of unknown kind '{exp.kind}'; {WRITE_INSTEAD}"
    return ""


def _plan_expectation(run: _Run, exp: Expectation) -> Plan:
    problem = _expectation_problem(exp)
    if problem:
        return _done(_failed(exp, problem))
    try:
        return _PLANNERS[Kind(exp.kind)](run, exp)
    except _Missing as exc:
        owner, columns = exc.owner or run.table, exc.columns or run.names
        return _done(
            _failed(
                exp,
                f"column '{exc.column}' not found in asset '{owner}' "
                f"(its columns: {_shown(columns)})",
            )
        )
    except _Unevaluable as exc:
        return _done(_failed(exp, f"{exp.describe()} could not be evaluated: {exc}"))


def _done(outcome: CheckOutcome) -> Plan:
    return lambda: [outcome]


def _failed(exp: Expectation, message: str) -> CheckOutcome:
    return CheckOutcome(exp.name, exp.severity, False, 0, message)


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")


def _named(exp: Expectation) -> list[str]:
    """The columns `exp` names (its text arguments): a sample's first."""
    return [a for a in exp.args if isinstance(a, str)] if exp.kind != Kind.SQL else []


def _rows_plan(run: _Run, exp: Expectation, where: _Sql, *, join: bool = False) -> Plan:
    measure = run.count(where, join=join)
    return lambda: [_counted(run, exp, measure.value, measure.error, where)]


def _counted(run: _Run, exp: Expectation, count: Any, error: str, where: _Sql) -> CheckOutcome:
    if error:
        return _failed(exp, f"{exp.describe()} could not be evaluated: {error}")
    if not count:
        return CheckOutcome(exp.name, exp.severity, True)
    rows = run.sample(where)
    message = f"{exp.describe()} failed for {count} of {run.rows()} rows"
    sample = sample_json(rows, _named(exp)) if rows is not None else None
    return CheckOutcome(exp.name, exp.severity, False, int(count), message, sample)


def _not_null(run: _Run, exp: Expectation) -> Plan:
    return _rows_plan(run, exp, run.column(exp.args[0]).null)


def _accepted_values(run: _Run, exp: Expectation) -> Plan:
    col = run.column(exp.args[0])
    return _rows_plan(run, exp, _all(col.present, _not(_members(col, exp.args[1]))))


def _in_range(run: _Run, exp: Expectation) -> Plan:
    col = run.column(exp.args[0])
    low, high = exp.option("min"), exp.option("max")
    outside = [_compare(col, "<", low)] if low is not None else []
    outside += [_compare(col, ">", high)] if high is not None else []
    return _rows_plan(run, exp, _all(col.present, _any(*outside)))


def _unique(run: _Run, exp: Expectation) -> Plan:
    dupes = run.duplicates(exp.args)
    where = run.duplicated(exp.args)
    return lambda: [_counted(run, exp, dupes.rows, dupes.error, where)]


def _relationship(run: _Run, exp: Expectation) -> Plan:
    col = run.column(exp.args[0])
    other, name = str(exp.to), str(exp.option("field"))
    try:
        described = run.con.execute(f"DESCRIBE {_ident(other)}").fetchall()
    except Exception as exc:
        engine.raise_if_interrupted(exc)
        raise _Unevaluable(_error(exc)) from None
    columns = {str(row[0]): str(row[1]) for row in described}
    if name not in columns:
        raise _Missing(name, other, list(columns))
    found = _found_in(col, other, name, columns[name])
    return _rows_plan(run, exp, _all(col.present, _not(found)), join=True)


def _found_in(col: _Col, other: str, name: str, kind: str) -> _Sql:
    """`col`'s value is in column `name` of `other` (of DuckDB type `kind`), as pandas'
    isin finds it: values of types that never compare equal are never found."""
    mine, theirs = col.family, _duck_family(kind)
    numeric = mine in _NUMERIC and theirs in _NUMERIC
    texts = {mine, theirs} <= {"string", "category"}
    if not (mine == theirs or numeric or texts or "other" in (mine, theirs)):
        return _FALSE
    value, field_sql = col.sql, _ident(name)
    if numeric and (mine == "bool") != (theirs == "bool"):  # True is 1 to pandas
        value = f"CAST({value} AS INTEGER)" if mine == "bool" else value
        field_sql = f"CAST({field_sql} AS INTEGER)" if theirs == "bool" else field_sql
    return _Sql(
        f"{value} IN (SELECT {field_sql} FROM {_ident(other)} WHERE {field_sql} IS NOT NULL)",
        join=True,
    )


def _row_count(run: _Run, exp: Expectation) -> Plan:
    def outcome() -> list[CheckOutcome]:
        if run.total.error:
            return [_failed(exp, f"{exp.describe()} could not be evaluated: {run.total.error}")]
        low, high, count = exp.option("min"), exp.option("max"), run.rows()
        if (low is None or count >= low) and (high is None or count <= high):
            return [CheckOutcome(exp.name, exp.severity, True)]
        bounds = [f"at least {low}"] if low is not None else []
        bounds += [f"at most {high}"] if high is not None else []
        message = f"{plural(count, 'row')}, expected {' and '.join(bounds)}"
        return [CheckOutcome(exp.name, exp.severity, False, 0, message)]

    return outcome


def _sql(run: _Run, exp: Expectation) -> Plan:
    return lambda: [_query(run, exp.name, exp.severity, str(exp.args[0]), "expect")]


def _query(run: _Run, name: str, severity: Severity, query: str, kind: CheckKind) -> CheckOutcome:
    """A query's failing rows, counted (and sampled) without fetching them all."""
    body = query.strip()
    while body.endswith(";"):
        body = body[:-1].rstrip()
    wrapped = f"(\n{body}\n) AS _vp_query"  # on lines of its own: a trailing -- comment
    try:
        [found] = run.con.execute(f"SELECT count(*) FROM {wrapped}").fetchall()
    except Exception as exc:
        engine.raise_if_interrupted(exc)
        message = f"query of check '{name}' on asset '{run.table}' failed: {first_line(exc)}"
        return CheckOutcome(name, severity, False, 0, message, kind=kind)
    count = int(found[0])
    if not count:
        return CheckOutcome(name, severity, True, kind=kind)
    rows = run.fetch(_Sql(f"SELECT * FROM {wrapped} LIMIT {SAMPLE_ROWS}"))
    sample = sample_json(rows) if rows is not None else None
    return CheckOutcome(
        name, severity, False, count, f"query returned {count} failing rows", sample, kind
    )


_PLANNERS: dict[Kind, Callable[[_Run, Expectation], Plan]] = {
    Kind.NOT_NULL: _not_null,
    Kind.UNIQUE: _unique,
    Kind.ACCEPTED_VALUES: _accepted_values,
    Kind.IN_RANGE: _in_range,
    Kind.ROW_COUNT: _row_count,
    Kind.RELATIONSHIP: _relationship,
    Kind.SQL: _sql,
}


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
        stamp = _timestamp(value, parse=True)
        if (
            stamp is None
            or stamp is _NAT
            or (stamp.tzinfo is not None) != (family == "timestamptz")
        ):
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
        stamp = _timestamp(value, parse=False)
        if (
            stamp is None
            or stamp is _NAT
            or (stamp.tzinfo is not None) != (family == "timestamptz")
        ):
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


# -- pandera schemas ------------------------------------------------------------------


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
