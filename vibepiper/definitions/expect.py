"""`expect.*`: declarative checks, attached to an asset with `checks=[...]`.

Each expectation is a frozen value saying *what* must hold; the validation package decides
*how* to evaluate it (one evaluator per kind). Every one takes `severity="error" | "warn"`
and an optional `name=`. Besides the built-ins below, a project can declare its own kinds
with `@register_expectation` (see its docstring).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, overload

from vibepiper.errors import DefinitionError, did_you_mean


class Severity(StrEnum):
    """How a failed check counts: `error` blocks publication, `warn` is only reported."""

    ERROR = "error"
    WARN = "warn"


SeverityLike = Severity | Literal["error", "warn"]
SEVERITIES = tuple(Severity)


class Kind(StrEnum):
    """The built-in kinds of expectation (a registered one's kind is its own name)."""

    NOT_NULL = "not_null"
    UNIQUE = "unique"
    ACCEPTED_VALUES = "accepted_values"
    IN_RANGE = "in_range"
    ROW_COUNT = "row_count"
    RELATIONSHIP = "relationship"
    SQL = "sql"


BUILTIN_KINDS = frozenset(Kind)
# Kinds whose failures are particular rows (so quarantine can remove them).
ROW_KINDS = frozenset(
    {Kind.NOT_NULL, Kind.UNIQUE, Kind.ACCEPTED_VALUES, Kind.IN_RANGE, Kind.RELATIONSHIP}
)

Scope = Literal["rows", "table"]


def check_severity(severity: object, owner: str) -> Severity:
    if severity not in SEVERITIES:
        raise DefinitionError(
            f"{owner}: severity={severity!r} is not valid",
            "use severity='error' (blocks) or severity='warn' (reports only)",
        )
    return Severity(str(severity))


@dataclass(frozen=True)
class Expectation:
    """One declared check: its kind, its arguments, its severity and its display name."""

    kind: str  # a Kind, or the name of a registered expectation type
    args: tuple[Any, ...] = ()
    options: tuple[tuple[str, Any], ...] = ()
    severity: Severity = Severity.ERROR
    name: str = ""
    to: str | None = field(default=None)  # the other asset it reads (`relationship`, ...)
    custom: ExpectationType | None = field(default=None, repr=False)  # a registered kind

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)

    @property
    def fn(self) -> Callable[..., Any] | None:
        """The function evaluating a registered kind (part of the asset's code version)."""
        return self.custom.fn if self.custom is not None else None

    @property
    def row_level(self) -> bool:
        """Are its failures particular rows (run before quarantine, which removes them)?"""
        if self.custom is not None:
            return self.custom.scope == "rows"
        return self.kind in ROW_KINDS

    def describe(self) -> str:
        parts = [repr(a) for a in self.args]
        parts += [f"to={self.to!r}"] if self.to else []
        parts += [f"{k}={v!r}" for k, v in self.options]
        return f"{self.kind}({', '.join(parts)})"


def _make(
    kind: Kind,
    args: tuple[Any, ...],
    options: dict[str, Any],
    severity: SeverityLike,
    name: str | None,
    default_name: str,
    to: str | None = None,
) -> Expectation:
    label = name or default_name
    return Expectation(
        kind=kind,
        args=args,
        options=tuple(options.items()),
        severity=check_severity(severity, f"expect.{kind} '{label}'"),
        name=label,
        to=to,
    )


def _column(kind: str, col: object) -> str:
    if not isinstance(col, str) or not col:
        raise DefinitionError(
            f"expect.{kind}: column {col!r} is not valid", "give the column name as a string"
        )
    return col


# -- the built-ins --------------------------------------------------------------------


def not_null(col: str, *, severity: SeverityLike = "error", name: str | None = None) -> Expectation:
    """Every value of `col` is present (not null/NaN)."""
    return _make(Kind.NOT_NULL, (_column("not_null", col),), {}, severity, name, f"not_null_{col}")


def unique(*cols: str, severity: SeverityLike = "error", name: str | None = None) -> Expectation:
    """No two rows share the same value(s) of `cols`."""
    if not cols:
        raise DefinitionError("expect.unique: no column given", "name at least one column")
    columns = tuple(_column("unique", c) for c in cols)
    return _make(Kind.UNIQUE, columns, {}, severity, name, "unique_" + "_".join(columns))


def accepted_values(
    col: str, values: Iterable[Any], *, severity: SeverityLike = "error", name: str | None = None
) -> Expectation:
    """Every non-null value of `col` is one of `values`."""
    if isinstance(values, str | bytes):
        raise DefinitionError(
            f"expect.accepted_values('{col}'): values is a single string",
            "give a list, e.g. accepted_values(col, ['a', 'b'])",
        )
    return _make(
        Kind.ACCEPTED_VALUES,
        (_column("accepted_values", col), tuple(values)),
        {},
        severity,
        name,
        f"accepted_values_{col}",
    )


def in_range(
    col: str,
    min: Any = None,
    max: Any = None,
    *,
    severity: SeverityLike = "error",
    name: str | None = None,
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
        Kind.IN_RANGE,
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
    severity: SeverityLike = "error",
    name: str | None = None,
) -> Expectation:
    """The number of rows lies within [min, max]."""
    if min is None and max is None:
        raise DefinitionError(
            "expect.row_count: neither min nor max given", "give min=, max= or both"
        )
    return _make(Kind.ROW_COUNT, (), {"min": min, "max": max}, severity, name, "row_count")


def relationship(
    col: str, *, to: str, field: str, severity: SeverityLike = "error", name: str | None = None
) -> Expectation:
    """Every non-null value of `col` exists in column `field` of asset `to`."""
    from vibepiper.definitions.asset import check_name

    check_name(to, "expect.relationship: asset")
    _column("relationship", field)
    return _make(
        Kind.RELATIONSHIP,
        (_column("relationship", col),),
        {"field": field},
        severity,
        name,
        f"relationship_{col}_to_{to}",
        to=to,
    )


def sql(query: str, *, severity: SeverityLike = "error", name: str | None = None) -> Expectation:
    """A DuckDB query over the asset (by its own name) that returns the failing rows; it
    may read other assets by their names too (it is validated again when they change)."""
    if not isinstance(query, str) or not query.strip():
        raise DefinitionError("expect.sql: empty query", "give a SELECT returning failing rows")
    return _make(Kind.SQL, (query,), {}, severity, name, "sql")


# -- registered kinds -----------------------------------------------------------------

_RESERVED = ("severity", "name")  # the keywords every expectation takes
_REGISTERED: dict[str, ExpectationType] = {}


@dataclass(frozen=True)
class ExpectationType:
    """A kind of expectation registered with `@register_expectation`; calling it declares
    one expectation of that kind: `even("qty", severity="warn")`."""

    name: str
    fn: Callable[..., Any] = field(compare=False)
    scope: Scope = "rows"

    @property
    def origin(self) -> str:
        """Where its function is defined: 'module.qualname'."""
        module = getattr(self.fn, "__module__", None) or "?"
        return f"{module}.{getattr(self.fn, '__qualname__', self.name)}"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled by name: a worker process finds it registered by the same module."""
        return (registered, (self.name,))

    def __call__(
        self,
        *args: Any,
        severity: SeverityLike = "error",
        name: str | None = None,
        to: str | None = None,
        **options: Any,
    ) -> Expectation:
        """Declare one expectation; the arguments are those of the function after its
        first (the data), checked now. `to=ASSET` gives a parameter `to` that asset's data."""
        if to is not None:
            from vibepiper.definitions.asset import check_name

            check_name(to, f"{self.name}(to=...): asset")
        self._bind(args, options, to)
        given = [*args, *options.values()]
        words = [a for a in given if isinstance(a, str) and a.isidentifier()]
        label = name or "_".join([self.name, *words, *([f"to_{to}"] if to else [])])
        return Expectation(
            kind=self.name,
            args=tuple(args),
            options=tuple(options.items()),
            severity=check_severity(severity, f"{self.name} '{label}'"),
            name=label,
            to=to,
            custom=self,
        )

    def _bind(self, args: tuple[Any, ...], options: dict[str, Any], to: str | None) -> None:
        signature = inspect.signature(self.fn)
        extra = {"to": to} if to is not None else {}
        try:
            signature.bind(None, *args, **options, **extra)
        except TypeError as exc:
            parameters = list(signature.parameters.values())[1:]
            shown = [str(p.replace(annotation=p.empty)) for p in parameters if p.name != "to"]
            hint = f"call it as {self.name}({', '.join([*shown, 'severity=..., name=...'])})"
            if "to" in signature.parameters and to is None:
                hint += "; give to=ASSET: its data is passed as `to`"
            raise DefinitionError(f"expectation '{self.name}': {exc}", hint) from None


@overload
def register_expectation(name: Callable[..., Any], /) -> ExpectationType: ...


@overload
def register_expectation(
    name: str | None = None, /, *, scope: Scope = "rows"
) -> Callable[[Callable[..., Any]], ExpectationType]: ...


def register_expectation(
    name: str | Callable[..., Any] | None = None, /, *, scope: Scope = "rows"
) -> ExpectationType | Callable[[Callable[..., Any]], ExpectationType]:
    """Register a kind of expectation, evaluated by the decorated function.

    ```python
    @register_expectation("even")
    def even(frame: pd.DataFrame, column: str) -> pd.Series:
        return frame[column] % 2 != 0        # the failing rows

    @asset(checks=[even("qty"), even("box", severity="warn")])
    ```

    The function receives the asset's data, then the arguments given when declaring the
    expectation (checked right then); a parameter named `to` receives the data of the
    asset named by `to=`, which is then materialized first and read like a relationship's.
    It returns the failing rows as a boolean Series over the frame (counted, sampled, and
    quarantined with `@asset(quarantine=True)` if `scope="rows"`), or a DataFrame of
    failing rows, or a count of them, or a bool (passed), or a `CheckResult` (with its
    own message). If it raises, the check fails with the exception in its message.
    `scope="table"` runs it after quarantine, on the rows that remain.

    The decorator returns the new kind itself: `even("qty")` is checked by mypy and
    found by "go to definition", which `expect.even(...)` could not be (a module
    attribute made up at run time is `Any` to a type checker, and would make a misspelt
    built-in type-check too). `expect.custom("even", "qty")` declares one by name.
    A name is registered once per process: a built-in's name or a name registered by
    another function is a DefinitionError; importing the same module again replaces it.
    """
    if callable(name):
        return _register(name.__name__, name, scope)
    label = name

    def decorate(fn: Callable[..., Any]) -> ExpectationType:
        return _register(label or str(getattr(fn, "__name__", "")), fn, scope)

    return decorate


def _register(name: str, fn: Callable[..., Any], scope: Scope) -> ExpectationType:
    from vibepiper.definitions.asset import check_name

    check_name(name, "expectation")
    if name in BUILTIN_KINDS:
        raise DefinitionError(
            f"expectation '{name}' is a built-in (expect.{name})",
            f"register yours under another name, e.g. @register_expectation('{name}_strict')",
        )
    if scope not in ("rows", "table"):
        raise DefinitionError(
            f"expectation '{name}': scope={scope!r} is not valid",
            "use scope='rows' (failures are rows) or scope='table' (judges the whole)",
        )
    _check_parameters(name, fn)
    kind = ExpectationType(name, fn, scope)
    old = _REGISTERED.get(name)
    if old is not None and old.origin != kind.origin:
        raise DefinitionError(
            f"expectation '{name}' is registered twice: by {old.origin} and by {kind.origin}",
            f"give one of them another name: @register_expectation('{name}_2')",
        )
    _REGISTERED[name] = kind
    return kind


def _check_parameters(name: str, fn: Callable[..., Any]) -> None:
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        raise DefinitionError(
            f"expectation '{name}': {fn!r} is not a function", "decorate a function"
        ) from None
    takes_frame = parameters and parameters[0].kind in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
    )
    if not takes_frame:
        raise DefinitionError(
            f"expectation '{name}': its function takes no data parameter",
            "make the first parameter the asset's data: def check(frame, column): ...",
        )
    reserved = [p.name for p in parameters[1:] if p.name in _RESERVED]
    if reserved:
        raise DefinitionError(
            f"expectation '{name}': parameter '{reserved[0]}' is reserved",
            "every expectation takes severity= and name=: rename the parameter",
        )


def registered(name: str) -> ExpectationType:
    """The expectation kind registered as `name`; a DefinitionError if there is none."""
    kind = _REGISTERED.get(name)
    if kind is not None:
        return kind
    if name in BUILTIN_KINDS:
        raise DefinitionError(
            f"expectation '{name}' is a built-in", f"declare it with expect.{name}(...)"
        )
    raise DefinitionError(
        f"no expectation is registered as {name!r}{did_you_mean(str(name), _REGISTERED)}",
        f"register it with @register_expectation('{name}') in a module imported before "
        "this one, or import it and call it directly",
    )


def custom(
    expectation: str,
    /,
    *args: Any,
    severity: SeverityLike = "error",
    name: str | None = None,
    to: str | None = None,
    **options: Any,
) -> Expectation:
    """An expectation of the kind registered as `expectation`, with these arguments:
    `expect.custom("even", "qty")` is `even("qty")`, for checks declared by name."""
    return registered(expectation)(*args, severity=severity, name=name, to=to, **options)
