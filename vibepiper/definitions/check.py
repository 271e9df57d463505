"""`@check`: a user function that judges one asset's data, and its `CheckResult`."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vibepiper.definitions.asset import check_name, first_line
from vibepiper.definitions.expect import Severity, SeverityLike, check_severity


@dataclass(frozen=True)
class CheckResult:
    """What a `@check` function returns: whether it passed, and why not."""

    passed: bool
    message: str = ""
    failing_rows: Any = None
    metadata: dict[str, Any] | None = field(default=None)


@dataclass(frozen=True)
class CheckDef:
    """A `@check` function bound to the asset it judges."""

    name: str
    asset: str
    fn: Callable[..., Any]
    severity: Severity
    params: tuple[str, ...]
    description: str = ""
    module: str = "?"  # the module that defined it, for messages
    line: int | None = None  # the line of the module that defined it, for messages
    sql: str | None = None  # `@check(sql=...)`: a query returning the failing rows

    @property
    def upstream(self) -> tuple[str, ...]:
        """Assets other than the checked one that the function reads."""
        return tuple(p for p in self.params if p != self.asset)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def check(
    *,
    asset: str,
    severity: SeverityLike = "error",
    name: str | None = None,
    sql: str | None = None,
) -> Any:
    """Declare a function as a check on `asset`; it receives assets by parameter name.

    With `sql=`, the check is a DuckDB query returning the failing rows (the checked
    asset and any other asset are tables of their names), run as SQL over the stored
    data: `check(asset=..., sql=..., name=...)` is the check itself, and decorating a
    function with `@check(asset=..., sql=...)` names it after the function (whose
    docstring describes it; the function is not called).
    """
    check_name(asset, "@check: asset")
    if sql is not None:
        if name is not None:
            return _sql_check(asset, severity, name, sql, None)
        return lambda fn: _sql_check(asset, severity, fn.__name__, sql, fn)

    def decorate(fn: Callable[..., Any]) -> CheckDef:
        check_name(name or fn.__name__, "check")
        label = name or fn.__name__
        return CheckDef(
            name=label,
            asset=asset,
            fn=fn,
            severity=check_severity(severity, f"check '{label}'"),
            params=tuple(inspect.signature(fn).parameters),
            description=inspect.getdoc(fn) or "",
            module=getattr(fn, "__module__", None) or "?",
            line=first_line(fn),
        )

    return decorate


def _sql_check(
    asset: str, severity: SeverityLike, name: str, sql: str, fn: Callable[..., Any] | None
) -> CheckDef:
    from vibepiper.definitions.sql import parse_query

    check_name(name, "check")
    parsed = parse_query(f"check '{name}'", sql)
    caller = sys._getframe(2)
    return CheckDef(
        name=name,
        asset=asset,
        fn=_query_check,
        severity=check_severity(severity, f"check '{name}'"),
        params=tuple(dict.fromkeys([asset, *parsed.tables])),
        description=(inspect.getdoc(fn) or "") if fn is not None else "",
        module=getattr(fn, "__module__", None) or caller.f_globals.get("__name__", "?"),
        line=first_line(fn) if fn is not None else caller.f_lineno,
        sql=sql.strip(),
    )


def _query_check(*args: Any, **kwargs: Any) -> Any:
    raise TypeError("a check with sql= is a query run by DuckDB, not called")
