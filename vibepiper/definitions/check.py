"""`@check`: a user function that judges one asset's data, and its `CheckResult`."""

from __future__ import annotations

import inspect
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

    @property
    def upstream(self) -> tuple[str, ...]:
        """Assets other than the checked one that the function reads."""
        return tuple(p for p in self.params if p != self.asset)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def check(
    *, asset: str, severity: SeverityLike = "error", name: str | None = None
) -> Callable[[Callable[..., Any]], CheckDef]:
    """Declare a function as a check on `asset`; it receives assets by parameter name."""
    check_name(asset, "@check: asset")

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
