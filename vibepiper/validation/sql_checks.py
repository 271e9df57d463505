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
anything but what `sql_schema` translates.

This module holds the entry points and the built-in expectations' translations. The
rest is in `sql_measures` (the queries that take the measures, and the samples),
`sql_values` (the columns of the file, and values compared as pandas compares them) and
`sql_schema` (a pandera schema's translation); each says where its part of the two paths
differs.

Where the two paths differ, because pandas holds the data differently from the file:
- An `expect.sql` query sees NaN as DuckDB does (a value, the largest double), where the
  pandas path's DuckDB reads a frame's NaN as NULL: a query telling them apart (`isnan`,
  `IS NULL`, `> x` on a column holding NaN) counts differently.
- Columns whose names differ only in case are one name to DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from vibepiper import engine
from vibepiper.definitions.expect import BUILTIN_KINDS, Expectation, Kind, Severity
from vibepiper.text import first_line, plural
from vibepiper.validation.outcome import SAMPLE_ROWS, CheckKind, CheckOutcome, sample_json
from vibepiper.validation.sql_measures import Plan, _done, _Run
from vibepiper.validation.sql_schema import WRITE_INSTEAD, _plan_schema, _read_schema
from vibepiper.validation.sql_values import (
    _FALSE,
    _NUMERIC,
    _all,
    _any,
    _Col,
    _compare,
    _duck_family,
    _error,
    _ident,
    _members,
    _Missing,
    _not,
    _Sql,
    _Unevaluable,
)

if TYPE_CHECKING:
    import pyarrow as pa


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
