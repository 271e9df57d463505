"""`@asset` and `source_file`: frozen definitions built from plain functions.

Decorating registers nothing and runs nothing: it reads the function's signature and
returns an `AssetDef`. Whether each input names a real asset is checked later, when the
project's graph is built, because only then are all names known.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, overload

from vibepiper.definitions.partitions import Partitions
from vibepiper.errors import DefinitionError, did_you_mean

NAME_RE = re.compile(r"[a-z_][a-z0-9_]*")  # the whole name: see fullmatch below
MAX_NAME = 100  # characters: a name is a folder of the store and part of file names
CONTEXT_PARAM = "context"
PARTITION_FIELD = "{partition}"  # in a partitioned source's path: the partition's key
SOURCE_SUFFIXES = (".csv", ".parquet", ".pq", ".json", ".jsonl", ".ndjson")

F = TypeVar("F", bound=Callable[..., Any])


def check_name(name: object, what: str = "asset") -> str:
    """Return `name` if it is a valid asset name, else raise a DefinitionError naming it."""
    if not isinstance(name, str) or len(name) > MAX_NAME or not NAME_RE.fullmatch(name):
        raise DefinitionError(
            f"{what} name {name!r} is not valid",
            "use lowercase letters, digits and underscores, not starting with a digit, "
            f"at most {MAX_NAME} characters (e.g. 'daily_orders')",
        )
    return name


def first_line(fn: Callable[..., Any]) -> int | None:
    """The line where `fn` is defined (that of its first decorator), if it is Python code."""
    code = getattr(inspect.unwrap(fn), "__code__", None)
    return code.co_firstlineno if code is not None else None


def check_schema(owner: str, schema: Any) -> Any:
    """Return `schema` if it is None or a pandera schema of pandas frames, else raise a
    DefinitionError naming `owner` (e.g. "asset 'orders'") and what it got."""
    if schema is None or _is_pandera_schema(schema):
        return schema
    if isinstance(schema, type):
        got = f"the class {schema.__qualname__}"
    else:
        got = f"of type {type(schema).__name__}"
    raise DefinitionError(
        f"{owner}: schema= is {got}, not a pandera schema",
        "pass a pandera DataFrameModel subclass or a pandera DataFrameSchema",
    )


def _is_pandera_schema(schema: Any) -> bool:
    # Imported here, when a schema is given (its module has then usually imported pandera
    # already): importing pandera takes half a second. These classes are also the bases of
    # the legacy `pandera.DataFrameSchema` and `pandera.DataFrameModel`, and exist in every
    # pandera version we support (>= 0.20).
    from pandera.api.pandas.container import DataFrameSchema
    from pandera.api.pandas.model import DataFrameModel

    if isinstance(schema, type):
        return issubclass(schema, DataFrameModel)
    return isinstance(schema, DataFrameSchema)


@dataclass(frozen=True)
class AssetDef:
    """One asset: a function, the assets it reads, and what is declared about its output."""

    name: str
    fn: Callable[..., Any]
    inputs: Mapping[str, str]  # parameter name -> upstream asset name
    config: Mapping[str, Any]  # parameter name -> default value
    takes_context: bool
    deps: tuple[str, ...] = ()
    schema: Any = None
    checks: tuple[Any, ...] = ()
    version: str | None = None
    tags: tuple[str, ...] = ()
    group: str = "default"
    description: str = ""
    retries: int = 0
    retry_delay: float = 0.0
    timeout: float | None = None
    max_age: timedelta | None = None
    pool: str | None = None
    quarantine: bool = False
    max_quarantined: float = 0.05  # the largest share of rows quarantine may remove
    source_path: str | None = None  # set for `source_file` assets, relative to the project
    automation: str | None = None  # "eager" or "missing": `vibepiper serve` runs it (SPEC §8)
    watch: bool = False  # a source file that `vibepiper serve` watches (a file sensor)
    partitions: Partitions | None = None  # SPEC §7: computed and kept partition by partition
    time_column: str | None = None  # every row must fall in its partition's window
    lookback: Mapping[str, int] = field(default_factory=dict)  # input -> earlier partitions
    source_reader: Callable[[str], Any] | None = field(default=None, compare=False)
    sql: str | None = None  # SPEC §10: the SELECT that DuckDB computes it with
    # parameter -> how it receives that input instead of a DataFrame: "relation" (DuckDB),
    # "reader" (a pyarrow RecordBatchReader) or "dataset" (a pyarrow dataset)
    read_as: Mapping[str, str] = field(default_factory=dict)
    module: str = "?"  # the module that defined it, for messages
    line: int | None = None  # the line of the module that defined it, for messages

    @property
    def is_source(self) -> bool:
        return self.source_path is not None

    @property
    def is_sql(self) -> bool:
        return self.sql is not None

    @property
    def is_partitioned(self) -> bool:
        return self.partitions is not None

    def source_path_of(self, partition: str) -> str:
        """The source file of one partition (its path with `{partition}` filled in)."""
        path = str(self.source_path)
        return path.replace(PARTITION_FIELD, partition) if partition else path

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    @property
    def upstream(self) -> tuple[str, ...]:
        """Every asset this one must come after: data inputs, `deps`, relationship targets."""
        names = [*self.inputs.values(), *self.deps]
        names += [c.to for c in self.checks if getattr(c, "to", None)]
        return tuple(dict.fromkeys(names))

    def with_config(self, values: Mapping[str, Any]) -> AssetDef:
        """A copy whose configuration parameters take `values` instead of their defaults
        (the overrides of `--set` and `[tool.vibepiper.config]`)."""
        return replace(self, config={**self.config, **values}) if values else self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (handy in unit tests)."""
        return self.fn(*args, **kwargs)

    @classmethod
    def restored(cls, **values: Any) -> AssetDef:
        """The definition with `values` and the defaults of every other field: the same
        object as `AssetDef(**values)` (whose `__init__` checks nothing either), made
        without the frozen class's field-by-field `__init__` (a snapshot rebuilds
        thousands of them)."""
        defaults, factories, names, required = _field_layout()
        if not required <= values.keys() <= names:
            unknown = sorted(values.keys() - names) or sorted(required - values.keys())
            raise TypeError(f"AssetDef.restored(): fields {unknown} unknown or missing")
        defn = object.__new__(cls)
        state = defn.__dict__
        state.update(defaults)
        for name, make in factories:
            if name not in values:
                state[name] = make()
        state.update(values)
        return defn


@functools.cache
def _field_layout() -> tuple[
    dict[str, Any], tuple[tuple[str, Callable[[], Any]], ...], frozenset[str], frozenset[str]
]:
    """AssetDef's fields: those with a default value (and it), those with a default
    factory (and it), every name, and the names that have no default."""
    every = fields(AssetDef)
    defaults = {f.name: f.default for f in every if f.default is not MISSING}
    factories = tuple(
        (f.name, f.default_factory) for f in every if f.default_factory is not MISSING
    )
    names = frozenset(f.name for f in every)
    return defaults, factories, names, names - defaults.keys() - {n for n, _ in factories}


def _signature_parts(
    name: str, fn: Callable[..., Any], inputs: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, Any], bool]:
    params = inspect.signature(fn).parameters
    data: dict[str, str] = {}
    config: dict[str, Any] = {}
    takes_context = False
    for param in params.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise DefinitionError(
                f"asset '{name}': parameter '{param.name}' is *args/**kwargs",
                "declare each input as its own named parameter",
            )
        if param.name in inputs:
            data[param.name] = check_name(inputs[param.name], f"asset '{name}': input")
        elif param.name == CONTEXT_PARAM:
            takes_context = True
        elif param.default is not param.empty:
            config[param.name] = param.default
        else:
            data[param.name] = param.name
    unknown = sorted(set(inputs) - set(params))
    if unknown:
        raise DefinitionError(
            f"asset '{name}': inputs= names '{unknown[0]}', which is not a parameter of "
            f"{fn.__name__}()",
            f"its parameters are {', '.join(params) or '(none)'}",
        )
    return data, config, takes_context


def _max_age(name: str, value: float | timedelta | None) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    if _seconds(value, allow_zero=False):
        return timedelta(seconds=value)
    raise DefinitionError(
        f"asset '{name}': max_age={value!r} is not valid",
        "give a datetime.timedelta or a number of seconds greater than 0",
    )


MAX_SECONDS = 100 * 365 * 86400  # a century: more is a mistake (and overflows timedelta)


def _seconds(value: object, *, allow_zero: bool) -> bool:
    """Whether `value` is a usable number of seconds: a finite real, not a bool."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not math.isfinite(value) or value > MAX_SECONDS:
        return False
    return value >= 0 if allow_zero else value > 0


def _share(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise DefinitionError(
            f"asset '{name}': max_quarantined={value!r} is not valid",
            "give the largest share of rows to quarantine, from 0 to 1",
        )
    return float(value)


def _check_options(name: str, retries: int, retry_delay: float, timeout: float | None) -> None:
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise DefinitionError(
            f"asset '{name}': retries={retries!r} is not valid", "give a whole number >= 0"
        )
    if not _seconds(retry_delay, allow_zero=True):
        raise DefinitionError(
            f"asset '{name}': retry_delay={retry_delay!r} is not valid",
            "give a number of seconds >= 0",
        )
    if timeout is not None and not _seconds(timeout, allow_zero=False):
        raise DefinitionError(
            f"asset '{name}': timeout={timeout!r} is not valid",
            "give a number of seconds > 0, or leave it out",
        )


def _names(name: str, option: str, values: Iterable[str] | str | None) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    result = tuple(values)
    for value in result:
        if not isinstance(value, str) or not value:
            raise DefinitionError(
                f"asset '{name}': {option} contains {value!r}",
                f"{option} must be a list of non-empty strings",
            )
    return result


def build_asset(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    inputs: Mapping[str, str] | None = None,
    schema: Any = None,
    checks: Iterable[Any] | None = None,
    deps: Iterable[str] | None = None,
    version: str | None = None,
    tags: Iterable[str] | None = None,
    group: str | None = None,
    description: str | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    timeout: float | None = None,
    max_age: float | timedelta | None = None,
    pool: str | None = None,
    quarantine: bool = False,
    max_quarantined: float = 0.05,
    automation: str | None = None,
    partitions: Partitions | None = None,
    time_column: str | None = None,
    lookback: int | Mapping[str, int] = 0,
    read_as: Mapping[str, str] | None = None,
) -> AssetDef:
    """Build the frozen definition of one asset, raising DefinitionError on bad options."""
    if not callable(fn):
        raise DefinitionError(
            f"@asset was applied to {fn!r}, which is not a function",
            "decorate a function that returns a DataFrame",
        )
    asset_name = check_name(name if name is not None else fn.__name__)
    data, config, takes_context = _signature_parts(asset_name, fn, dict(inputs or {}))
    return _definition(
        asset_name,
        fn,
        data,
        config=config,
        takes_context=takes_context,
        schema=schema,
        checks=checks,
        deps=deps,
        version=version,
        tags=tags,
        group=group,
        description=description if description is not None else inspect.getdoc(fn) or "",
        retries=retries,
        retry_delay=retry_delay,
        timeout=timeout,
        max_age=max_age,
        pool=pool,
        quarantine=quarantine,
        max_quarantined=max_quarantined,
        automation=automation,
        partitions=partitions,
        time_column=time_column,
        lookback=lookback,
        read_as=_read_as(asset_name, fn, data, read_as),
        where=(getattr(fn, "__module__", None) or "?", first_line(fn)),
    )


def _definition(
    name: str,
    fn: Callable[..., Any],
    inputs: dict[str, str],
    *,
    where: tuple[str, int | None],
    config: dict[str, Any] | None = None,
    takes_context: bool = False,
    schema: Any = None,
    checks: Iterable[Any] | None = None,
    deps: Iterable[str] | None = None,
    version: str | None = None,
    tags: Iterable[str] | None = None,
    group: str | None = None,
    description: str = "",
    retries: int = 0,
    retry_delay: float = 0.0,
    timeout: float | None = None,
    max_age: float | timedelta | None = None,
    pool: str | None = None,
    quarantine: bool = False,
    max_quarantined: float = 0.05,
    automation: str | None = None,
    partitions: Partitions | None = None,
    time_column: str | None = None,
    lookback: int | Mapping[str, int] = 0,
    read_as: Mapping[str, str] | None = None,
    sql: str | None = None,
    owner: str | None = None,
) -> AssetDef:
    """The definition of the asset `name` (computed by `fn` from `inputs`: parameter ->
    asset), its options checked; `owner` names it in messages ("asset 'x'" by default)."""
    owner = owner or f"asset '{name}'"
    _check_options(name, retries, retry_delay, timeout)
    if version is not None and not isinstance(version, str | int):
        raise DefinitionError(
            f"{owner}: version={version!r} is not valid", "give a string such as '2'"
        )
    return AssetDef(
        name=name,
        fn=fn,
        inputs=inputs,
        config=config or {},
        takes_context=takes_context,
        deps=tuple(check_name(d, f"{owner}: dependency") for d in deps or ()),
        schema=check_schema(owner, schema),
        checks=_checks(owner, checks),
        version=None if version is None else str(version),
        tags=_names(name, "tags", tags),
        group=group or "default",
        description=description,
        retries=retries,
        retry_delay=float(retry_delay),
        timeout=None if timeout is None else float(timeout),
        max_age=_max_age(name, max_age),
        pool=pool,
        quarantine=bool(quarantine),
        max_quarantined=_share(name, max_quarantined),
        automation=_automation(name, automation),
        partitions=_partitions(owner, partitions),
        time_column=_time_column(name, time_column, partitions),
        lookback=_lookback(name, lookback, inputs, partitions),
        read_as=dict(read_as or {}),
        sql=sql,
        module=where[0],
        line=where[1],
    )


@overload
def asset(fn: Callable[..., Any], /) -> AssetDef: ...


@overload
def asset(
    *,
    name: str | None = None,
    inputs: Mapping[str, str] | None = None,
    schema: Any = None,
    checks: Iterable[Any] | None = None,
    deps: Iterable[str] | None = None,
    version: str | None = None,
    tags: Iterable[str] | None = None,
    group: str | None = None,
    description: str | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    timeout: float | None = None,
    max_age: float | timedelta | None = None,
    pool: str | None = None,
    quarantine: bool = False,
    max_quarantined: float = 0.05,
    automation: str | None = None,
    partitions: Partitions | None = None,
    time_column: str | None = None,
    lookback: int | Mapping[str, int] = 0,
    read_as: Mapping[str, str] | None = None,
) -> Callable[[Callable[..., Any]], AssetDef]: ...


def asset(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Declare a function as an asset. Works as `@asset` and as `@asset(...)`.

    Parameters named like other assets receive their data; `context` receives a
    `Context`; parameters with defaults are configuration. See SPEC §1 for the options.
    """
    if fn is not None:
        _check_option_names(fn, options)
        return build_asset(fn, **options)

    def decorate(func: Callable[..., Any]) -> AssetDef:
        _check_option_names(func, options)
        return build_asset(func, **options)

    return decorate


@functools.cache
def _option_names() -> list[str]:
    """`@asset`'s options (one signature taken per process, not one per asset)."""
    return [p for p in inspect.signature(build_asset).parameters if p != "fn"]


def _check_option_names(fn: Any, options: Mapping[str, Any]) -> None:
    """A DefinitionError naming the first option `@asset` does not have."""
    known = _option_names()
    for option in options:
        if option not in known:
            name = options.get("name") or getattr(fn, "__name__", "?")
            raise DefinitionError(
                f"asset '{name}': @asset has no option '{option}'{did_you_mean(option, known)}",
                f"the options are {', '.join(known)}",
            )


AUTOMATIONS = ("eager", "missing")
READ_AS = ("frame", "relation", "reader", "dataset")
# what an input's annotation says it wants (its last dotted part: `duckdb.DuckDBPyRelation`,
# `pa.RecordBatchReader`, `ds.Dataset`, ...; strings too, for `from __future__ import
# annotations`)
_ANNOTATED = {
    "DuckDBPyRelation": "relation",
    "RecordBatchReader": "reader",
    "Dataset": "dataset",
    "FileSystemDataset": "dataset",
}


def _read_as(
    name: str, fn: Callable[..., Any], data: Mapping[str, str], given: Mapping[str, str] | None
) -> dict[str, str]:
    """How each input is received, when not as a DataFrame: `read_as={param: kind}`, else
    the parameter's annotation."""
    found: dict[str, str] = {}
    for parameter in inspect.signature(fn).parameters.values():
        if parameter.name not in data or parameter.annotation is parameter.empty:
            continue
        note = parameter.annotation
        text = note if isinstance(note, str) else getattr(note, "__qualname__", "")
        kind = _ANNOTATED.get(str(text).rpartition(".")[2].strip("'\" "))
        if kind is not None:
            found[parameter.name] = kind
    if given is None:
        return found
    if not isinstance(given, Mapping):
        raise DefinitionError(
            f"asset '{name}': read_as={given!r} is not valid",
            'give {input: "relation" | "reader" | "dataset" | "frame"}',
        )
    for param, kind in given.items():
        if param not in data:
            raise DefinitionError(
                f"asset '{name}': read_as= names '{param}', which is not an input"
                f"{did_you_mean(str(param), list(data))}",
                f"its inputs are {', '.join(data) or '(none)'}",
            )
        if kind not in READ_AS:
            hint = did_you_mean(kind, READ_AS) if isinstance(kind, str) else ""
            raise DefinitionError(
                f"asset '{name}': read_as={kind!r} for '{param}' is not valid{hint}",
                f"use one of {', '.join(READ_AS)}",
            )
        found[str(param)] = str(kind)
    return {p: k for p, k in found.items() if k != "frame"}


def _partitions(owner: str, value: Any) -> Partitions | None:
    if value is None or isinstance(value, Partitions):
        return value
    raise DefinitionError(
        f"{owner}: partitions={repr(value)[:60]} is not a partitioning",
        'use daily(start="2026-01-01"), hourly(...), weekly(...), monthly(...) or static([...])',
    )


def _time_column(name: str, value: Any, partitions: Partitions | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise DefinitionError(
            f"asset '{name}': time_column={value!r} is not valid", "give a column's name"
        )
    if partitions is None or not partitions.is_time:
        raise DefinitionError(
            f"asset '{name}': time_column= needs time partitions",
            "add partitions=daily(start=...) (or hourly, weekly, monthly), or drop time_column=",
        )
    return value


def _lookback(
    name: str, value: Any, inputs: Mapping[str, str], partitions: Partitions | None
) -> dict[str, int]:
    """`lookback=`: N earlier partitions of every input (an int), or of some (a dict)."""
    if not value:
        return {}
    if partitions is None or not partitions.is_time:
        raise DefinitionError(
            f"asset '{name}': lookback= needs time partitions",
            "add partitions=daily(start=...) (or hourly, weekly, monthly), or drop lookback=",
        )
    given = dict.fromkeys(inputs, value) if isinstance(value, int) else value
    if not isinstance(given, Mapping):
        raise DefinitionError(
            f"asset '{name}': lookback={value!r} is not valid",
            "give a whole number of earlier partitions, or {input: number}",
        )
    for param, count in given.items():
        if param not in inputs:
            raise DefinitionError(
                f"asset '{name}': lookback= names '{param}', which is not an input"
                f"{did_you_mean(str(param), list(inputs))}",
                f"its inputs are {', '.join(inputs) or '(none)'}",
            )
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 10_000:
            raise DefinitionError(
                f"asset '{name}': lookback={count!r} for '{param}' is not valid",
                "give a whole number of earlier partitions, from 0 to 10000",
            )
    return {str(p): int(c) for p, c in given.items() if c}


def _automation(name: str, value: Any) -> str | None:
    """`automation=`: None, "eager" (recompute when an input has new data) or "missing"
    (compute it when it has never been materialized)."""
    if value is None or value in AUTOMATIONS:
        return value
    shown = repr(value)[:60]
    hint = did_you_mean(value, AUTOMATIONS) if isinstance(value, str) else ""
    raise DefinitionError(
        f"asset '{name}': automation={shown} is not valid{hint}",
        'use automation="eager" (recompute when an input gets new data) or "missing" '
        "(compute it once, when it has never been materialized)",
    )


def _checks(owner: str, checks: Any) -> tuple[Any, ...]:
    """The expectations given as `checks=`: a list (or tuple) of `expect.*(...)` calls."""
    from vibepiper.definitions.expect import Expectation

    if checks is None:
        return ()
    if not isinstance(checks, list | tuple):
        single = isinstance(checks, Expectation)
        raise DefinitionError(
            f"{owner}: checks= takes a list of expectations, not "
            f"{'one expectation' if single else repr(checks)[:80]}",
            "write checks=[expect.unique('id')] (in square brackets, even for one)",
        )
    for item in checks:
        if not isinstance(item, Expectation):
            called = "call it with its arguments, " if callable(item) else ""
            shown = getattr(item, "__name__", None) if callable(item) else None
            raise DefinitionError(
                f"{owner}: {shown or repr(item)[:80]} in checks= is not an expectation",
                f"{called}e.g. expect.not_null('id'); a @check function is declared with "
                "@check(asset=...), not listed in checks=",
            )
    return tuple(checks)


def _check_watchable(name: str, path: str) -> None:
    """A DefinitionError unless `path` can name a local file to watch (`vibepiper serve`
    also refuses a folder or a device there, once it knows the project folder)."""
    if "://" in path or any(c in path for c in "*?[\0"):
        raise DefinitionError(
            f"source '{name}': watch=True on '{path}', which is not a local file's path, "
            "cannot be watched",
            "watch a regular file (a path relative to the project folder), or drop watch=True",
        )


def _default_reader(path: str) -> Any:
    import pandas as pd

    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pandas()
    return pd.read_json(path, lines=suffix in (".jsonl", ".ndjson"))


def source_file(
    name: str,
    path: str,
    *,
    read: Callable[[str], Any] | None = None,
    description: str | None = None,
    tags: Iterable[str] | None = None,
    group: str | None = "sources",
    schema: Any = None,
    checks: Iterable[Any] | None = None,
    watch: bool = False,
    partitions: Partitions | None = None,
) -> AssetDef:
    """A root asset read from a local CSV, Parquet or JSON file (or by `read(path)`).

    `path` is relative to the project folder. The file's bytes are its data version,
    so editing the file makes everything downstream stale. With `watch=True`, `vibepiper
    serve` watches the file: once a change has settled, it runs everything downstream.
    With `partitions=`, each partition is its own file: `path` holds `{partition}`, which
    is replaced by the partition's key (e.g. "data/events/{partition}.csv").
    """
    check_name(name, "source")
    if not isinstance(path, str | Path) or not str(path):
        raise DefinitionError(
            f"source '{name}': path {path!r} is not valid",
            "give the file's path relative to the project folder",
        )
    if read is None and Path(path).suffix.lower() not in SOURCE_SUFFIXES:
        raise DefinitionError(
            f"source '{name}': cannot read '{path}' (unknown file type)",
            f"use one of {', '.join(SOURCE_SUFFIXES)} or pass read=a function(path) -> DataFrame",
        )
    if watch not in (True, False):
        raise DefinitionError(
            f"source '{name}': watch={watch!r} is not valid", "give watch=True or watch=False"
        )
    if watch:
        _check_watchable(name, str(path))
    partitions = _partitions(f"source '{name}'", partitions)
    if (partitions is None) == (PARTITION_FIELD in str(path)):
        raise DefinitionError(
            f"source '{name}': {PARTITION_FIELD} in the path and partitions= go together "
            f"(path '{path}')"
            + (", but partitions= is not given" if partitions is None else ", but it has none"),
            f"put {PARTITION_FIELD} in the path where the key goes, e.g. "
            f"'data/events/{PARTITION_FIELD}.csv', and pass partitions=daily(start=...)",
        )
    if partitions is not None and watch:
        raise DefinitionError(
            f"source '{name}': watch=True is not supported for a partitioned source",
            "drop watch=True (schedule the asset instead)",
        )
    reader = read or _default_reader
    caller = sys._getframe(1)
    return AssetDef(
        name=name,
        fn=reader,
        inputs={},
        config={},
        takes_context=False,
        schema=check_schema(f"source '{name}'", schema),
        checks=_checks(f"source '{name}'", checks),
        tags=_names(name, "tags", tags),
        group=group or "default",
        description=description or f"Source file {path}",
        source_path=str(path),
        source_reader=reader,
        watch=bool(watch),
        partitions=partitions,
        module=caller.f_globals.get("__name__", "?"),
        line=caller.f_lineno,
    )


def _computed_by_duckdb(**inputs: Any) -> Any:
    """A SQL asset's function: it has none, DuckDB computes it (see `sql_asset`)."""
    raise TypeError("a SQL asset is computed by DuckDB from its query, not called")


def sql_asset(
    name: str,
    sql: str,
    *,
    schema: Any = None,
    checks: Iterable[Any] | None = None,
    deps: Iterable[str] | None = None,
    version: str | None = None,
    tags: Iterable[str] | None = None,
    group: str | None = None,
    description: str | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    timeout: float | None = None,
    max_age: float | timedelta | None = None,
    pool: str | None = None,
    automation: str | None = None,
    partitions: Partitions | None = None,
    time_column: str | None = None,
    lookback: int | Mapping[str, int] = 0,
    _where: tuple[str, int | None] | None = None,
) -> AssetDef:
    """An asset computed by DuckDB from one SELECT (SPEC §10): its inputs are the assets
    the query reads by name, its code version is the query's normal form (formatting and
    comments do not count). It takes `@asset`'s options, but `inputs=` (the query names
    its inputs), `quarantine` (rows are not removed from a file) and `read_as`."""
    from vibepiper.definitions.sql import parse_query

    check_name(name)
    if _where is None:
        caller = sys._getframe(1)
        where = (caller.f_globals.get("__name__", "?"), caller.f_lineno)
    else:
        where = _where
    owner = f"asset '{name}'" + (f" ({where[0]})" if _where is not None else "")
    parsed = parse_query(owner, sql)
    return _definition(
        name,
        _computed_by_duckdb,
        {table: table for table in parsed.tables},
        where=where,
        owner=owner,
        schema=schema,
        checks=checks,
        deps=deps,
        version=version,
        tags=tags,
        group=group,
        description=description or "",
        retries=retries,
        retry_delay=retry_delay,
        timeout=timeout,
        max_age=max_age,
        pool=pool,
        automation=automation,
        partitions=partitions,
        time_column=time_column,
        lookback=lookback,
        sql=sql.strip(),
    )
