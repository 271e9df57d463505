"""The measures a run of SQL checks needs, taken over the view of one output in as few
queries as possible, and the samples of the checks that failed.

Each check asks `_Run` for its measures (a count of failing rows, an aggregate, the
duplicates of some columns) and gets back an object filled by `_Run.execute`: the
aggregates share one scan, the uniqueness checks one `GROUP BY GROUPING SETS`, the
relationships one query of joins. A query that fails is run again measure by measure, so
that its error is its check's. Samples are taken after, for the failed checks only.

Samples are the first failing rows in the file's order when the connection preserves
insertion order (DuckDB's default); without it, they are some failing rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vibepiper import engine
from vibepiper.validation.outcome import SAMPLE_ROWS, CheckOutcome
from vibepiper.validation.sql_values import _Col, _error, _ident, _Missing, _Sql

if TYPE_CHECKING:
    import pandas as pd

Plan = Callable[[], list[CheckOutcome]]  # its outcomes, once the measures are taken


def _done(outcome: CheckOutcome) -> Plan:
    return lambda: [outcome]


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
