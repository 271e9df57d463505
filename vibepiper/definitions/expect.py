"""`expect.*`: declarative built-in checks, attached to an asset with `checks=[...]`.

Each built-in is a frozen value saying *what* must hold; the validation package decides
*how* to evaluate it. Every one takes `severity="error" | "warn"` and an optional `name=`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vibepiper.errors import DefinitionError

SEVERITIES = ("error", "warn")


def check_severity(severity: object, owner: str) -> str:
    if severity not in SEVERITIES:
        raise DefinitionError(
            f"{owner}: severity={severity!r} is not valid",
            "use severity='error' (blocks) or severity='warn' (reports only)",
        )
    return str(severity)


@dataclass(frozen=True)
class Expectation:
    """One built-in check: its kind, its arguments, its severity and its display name."""

    kind: str
    args: tuple[Any, ...] = ()
    options: tuple[tuple[str, Any], ...] = ()
    severity: str = "error"
    name: str = ""
    to: str | None = field(default=None)  # the other asset, for `relationship`

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)

    def describe(self) -> str:
        parts = [repr(a) for a in self.args]
        parts += [f"to={self.to!r}"] if self.to else []
        parts += [f"{k}={v!r}" for k, v in self.options]
        return f"{self.kind}({', '.join(parts)})"


def _make(
    kind: str,
    args: tuple[Any, ...],
    options: dict[str, Any],
    severity: str,
    name: str | None,
    default_name: str,
    to: str | None = None,
) -> Expectation:
    label = name or default_name
    check_severity(severity, f"expect.{kind} '{label}'")
    return Expectation(
        kind=kind, args=args, options=tuple(options.items()), severity=severity, name=label, to=to
    )


def _column(kind: str, col: object) -> str:
    if not isinstance(col, str) or not col:
        raise DefinitionError(
            f"expect.{kind}: column {col!r} is not valid", "give the column name as a string"
        )
    return col


def not_null(col: str, *, severity: str = "error", name: str | None = None) -> Expectation:
    """Every value of `col` is present (not null/NaN)."""
    return _make("not_null", (_column("not_null", col),), {}, severity, name, f"not_null_{col}")


def unique(*cols: str, severity: str = "error", name: str | None = None) -> Expectation:
    """No two rows share the same value(s) of `cols`."""
    if not cols:
        raise DefinitionError("expect.unique: no column given", "name at least one column")
    columns = tuple(_column("unique", c) for c in cols)
    return _make("unique", columns, {}, severity, name, "unique_" + "_".join(columns))


def accepted_values(
    col: str, values: Iterable[Any], *, severity: str = "error", name: str | None = None
) -> Expectation:
    """Every non-null value of `col` is one of `values`."""
    if isinstance(values, str | bytes):
        raise DefinitionError(
            f"expect.accepted_values('{col}'): values is a single string",
            "give a list, e.g. accepted_values(col, ['a', 'b'])",
        )
    return _make(
        "accepted_values",
        (_column("accepted_values", col), tuple(values)),
        {},
        severity,
        name,
        f"accepted_values_{col}",
    )


def in_range(
    col: str, min: Any = None, max: Any = None, *, severity: str = "error", name: str | None = None
) -> Expectation:
    """Every non-null value of `col` lies within [min, max] (either bound may be None)."""
    if min is None and max is None:
        raise DefinitionError(
            f"expect.in_range('{col}'): neither min nor max given", "give min=, max= or both"
        )
    if min is not None and max is not None and min > max:
        raise DefinitionError(
            f"expect.in_range('{col}'): min={min!r} is above max={max!r}", "swap them"
        )
    return _make(
        "in_range",
        (_column("in_range", col),),
        {"min": min, "max": max},
        severity,
        name,
        f"in_range_{col}",
    )


def row_count(
    min: int | None = None,
    max: int | None = None,
    *,
    severity: str = "error",
    name: str | None = None,
) -> Expectation:
    """The number of rows lies within [min, max]."""
    if min is None and max is None:
        raise DefinitionError(
            "expect.row_count: neither min nor max given", "give min=, max= or both"
        )
    return _make("row_count", (), {"min": min, "max": max}, severity, name, "row_count")


def relationship(
    col: str, *, to: str, field: str, severity: str = "error", name: str | None = None
) -> Expectation:
    """Every non-null value of `col` exists in column `field` of asset `to`."""
    from vibepiper.definitions.asset import check_name

    check_name(to, "expect.relationship: asset")
    _column("relationship", field)
    return _make(
        "relationship",
        (_column("relationship", col),),
        {"field": field},
        severity,
        name,
        f"relationship_{col}_to_{to}",
        to=to,
    )


def sql(query: str, *, severity: str = "error", name: str | None = None) -> Expectation:
    """A DuckDB query over the asset (by its own name) that returns the failing rows; it
    may read other assets by their names too (it is validated again when they change)."""
    if not isinstance(query, str) or not query.strip():
        raise DefinitionError("expect.sql: empty query", "give a SELECT returning failing rows")
    return _make("sql", (query,), {}, severity, name, "sql")
