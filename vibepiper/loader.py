"""Loading a project: its settings (`[tool.vibepiper]` in pyproject.toml) and the
definitions in its asset modules, imported fresh each time."""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import re
import sys
import tomllib
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from vibepiper.definitions.asset import AssetDef
from vibepiper.definitions.check import CheckDef
from vibepiper.definitions.duplicates import refuse_duplicates
from vibepiper.definitions.schedule import Schedule
from vibepiper.errors import DefinitionError, ProjectLoadError, did_you_mean

if TYPE_CHECKING:
    from vibepiper.graph.graph import Graph
    from vibepiper.versioning.source_cache import IdentityMemo


@dataclass(frozen=True)
class Settings:
    """`[tool.vibepiper]` of a project's pyproject.toml, after command-line overrides."""

    root: Path
    modules: tuple[str, ...]
    home: Path
    openlineage: dict[str, Any] | None = None  # where to send OpenLineage events, if anywhere
    executor: str = "inprocess"  # the default executor of `materialize`
    workers: int | None = None  # its default number of workers
    pools: dict[str, int] = field(default_factory=dict)  # pool -> how many may run at once
    # [tool.vibepiper.config]: asset -> parameter -> value (checked against the assets by
    # `Project`, once they are known)
    config: dict[str, Any] = field(default_factory=dict)
    # [tool.vibepiper.schedules] and [tool.vibepiper.serve], as written (checked by
    # `vibepiper.automation` when `serve` or `schedules` needs them)
    schedules: Any = field(default_factory=dict)
    serve: Any = field(default_factory=dict)
    # [tool.vibepiper] sql_paths: folders of `.sql` files, one SQL asset each (SPEC §10)
    sql_paths: tuple[Path, ...] = ()
    # [tool.vibepiper.sql]: DuckDB's settings for SQL assets (memory_limit, threads, ...)
    sql: dict[str, Any] = field(default_factory=dict)
    # [tool.vibepiper.store]: where the data lives (SPEC §11); None: the local store
    store: StoreSettings | None = None


@dataclass(frozen=True)
class StoreSettings:
    """`[tool.vibepiper.store]`: an S3-compatible object store (`s3://bucket/prefix`).
    Credentials never come from here: from the environment or the AWS credential chain."""

    bucket: str
    prefix: str  # "" or "some/folder/" (ends with "/")
    endpoint_url: str | None = None
    region: str | None = None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def load_settings(
    path: str | os.PathLike[str] = ".",
    modules: Iterable[str] | None = None,
    home: str | os.PathLike[str] | None = None,
) -> Settings:
    """The settings of the project in `path`; `modules` and `home` override its own (a
    relative `home`, like `path`, is relative to the current folder)."""
    root = Path(path).resolve()
    if not root.is_dir():
        raise ProjectLoadError(
            f"project folder {path} does not exist", "pass --project DIR with an existing folder"
        )
    table = _tool_table(root / "pyproject.toml")
    listed = table.get("modules", ())
    if not isinstance(listed, list | tuple):
        example = f"[{listed!r}]".replace("'", '"') if isinstance(listed, str) else '["shop"]'
        raise ProjectLoadError(
            f"modules = {listed!r} in [tool.vibepiper] of {root / 'pyproject.toml'} is not a list",
            f"write it as a list of module names: modules = {example}",
        )
    names = tuple(modules or ()) or tuple(listed)
    if not names:
        raise ProjectLoadError(
            f"no asset modules for the project in {root}",
            'set modules = ["my_assets"] under [tool.vibepiper] in pyproject.toml, '
            "or pass -m MODULE",
        )
    for name in names:
        if not isinstance(name, str) or not all(p.isidentifier() for p in name.split(".")):
            raise ProjectLoadError(
                f"module name {name!r} is not valid",
                "give a dotted Python module name such as shop.assets",
            )
    return Settings(
        root,
        names,
        _home(home or os.environ.get("VIBEPIPER_HOME"), table.get("home"), root),
        _openlineage(table.get("openlineage"), root),
        **_execution(table),
        config=_config(table.get("config", {}), root / "pyproject.toml"),
        schedules=table.get("schedules", {}),
        serve=table.get("serve", {}),
        sql_paths=_sql_paths(table.get("sql_paths", ()), root),
        sql=_sql_settings(table.get("sql", {})),
        store=_store_settings(table.get("store"), root / "pyproject.toml"),
    )


STORE_SETTINGS = ("url", "endpoint_url", "region")
# A bucket's name as S3 allows it; a prefix of plain path components (no ".", "..", "//").
BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
PREFIX_PART_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=-]*")
SECRET_RE = re.compile(r"secret|password|token|credential|access_key|key_id|session", re.I)


def _store_settings(table: Any, pyproject: Path) -> StoreSettings | None:
    """`[tool.vibepiper.store] url = "s3://bucket/prefix"`, `endpoint_url`, `region`; a
    secret written there is refused (credentials come from the environment)."""
    if table is None:
        return None
    where = f"[tool.vibepiper.store] of {pyproject}"
    env = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment (or ~/.aws/credentials)"
    if not isinstance(table, dict):
        raise ProjectLoadError(
            f"{where} is not a table", 'write url = "s3://bucket/prefix" under it'
        )
    for key in table:
        if SECRET_RE.search(key):
            raise ProjectLoadError(
                f"{where} holds a secret ({key}): credentials are never read from pyproject.toml",
                f"remove it (and rotate it if it was committed); put {env}",
            )
        if key not in STORE_SETTINGS:
            raise ProjectLoadError(
                f"{where} has no setting '{key}'{did_you_mean(key, STORE_SETTINGS)}",
                f"the settings are {', '.join(STORE_SETTINGS)}",
            )
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip():
            raise ProjectLoadError(f"{where}: {key} = {value!r} is not a string", _STORE_EXAMPLE)
    url = table.get("url")
    if url is None:
        raise ProjectLoadError(f"{where} has no url", _STORE_EXAMPLE)
    bucket, prefix = _store_url(url, where, env)
    endpoint = table.get("endpoint_url")
    if endpoint is not None:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(endpoint)
            parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProjectLoadError(
                f"{where}: endpoint_url = {endpoint!r} is not an http(s) URL",
                'e.g. endpoint_url = "http://127.0.0.1:8333"',
            )
        if parts.username or parts.password:
            raise ProjectLoadError(
                f"{where}: endpoint_url holds credentials: they are never read from pyproject.toml",
                f"remove them from the URL; put {env}",
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ProjectLoadError(
                f"{where}: endpoint_url = {endpoint!r} has a path: give only the server",
                'e.g. endpoint_url = "http://127.0.0.1:8333"; the bucket goes in url',
            )
        endpoint = endpoint.rstrip("/")
    return StoreSettings(bucket, prefix, endpoint, table.get("region"))


_STORE_EXAMPLE = 'e.g. url = "s3://my-bucket/vibepiper", endpoint_url = "http://127.0.0.1:8333"'


def _store_url(url: str, where: str, env: str) -> tuple[str, str]:
    """The bucket and the prefix ("" or ending with "/") of `s3://bucket/prefix`."""
    if not url.startswith("s3://"):
        raise ProjectLoadError(
            f"{where}: url = {url!r} is not an s3:// URL",
            "give s3://BUCKET/PREFIX (leave the setting out for the local store)",
        )
    rest = url[len("s3://") :]
    host, _, path = rest.partition("/")
    if "@" in host:
        raise ProjectLoadError(
            f"{where}: url holds credentials: they are never read from pyproject.toml",
            f"remove them from the URL; put {env}",
        )
    if not BUCKET_RE.fullmatch(host) or ".." in host:
        raise ProjectLoadError(
            f"{where}: url = {url!r} does not name a valid bucket ({host!r})",
            "a bucket name has 3 to 63 lowercase letters, digits, dots and dashes",
        )
    parts = [p for p in path.split("/")]
    if parts and parts[-1] == "":
        parts.pop()
    if any(not PREFIX_PART_RE.fullmatch(p) for p in parts):
        raise ProjectLoadError(
            f"{where}: url = {url!r} has an invalid prefix ({path!r})",
            "give folders of letters, digits, '_', '-', '.' and '=', separated by single '/'",
        )
    return host, "".join(f"{p}/" for p in parts)


def _sql_paths(listed: Any, root: Path) -> tuple[Path, ...]:
    """`sql_paths = ["sql"]`: folders (relative to the project folder) of `.sql` files."""
    where = "[tool.vibepiper] sql_paths"
    if not isinstance(listed, list | tuple) or not all(isinstance(p, str) and p for p in listed):
        raise ProjectLoadError(
            f"{where} = {listed!r} is not a list of folders", 'write sql_paths = ["sql"]'
        )
    folders = []
    for name in listed:
        folder = (root / name).resolve()
        if not folder.is_dir():
            raise ProjectLoadError(
                f"{where}: folder '{name}' does not exist in {root}",
                "create it, or fix the folder's name in pyproject.toml",
            )
        folders.append(folder)
    return tuple(dict.fromkeys(folders))


SQL_SETTINGS = {"memory_limit": str, "threads": int, "temp_directory": str}


def _sql_settings(table: Any) -> dict[str, Any]:
    """`[tool.vibepiper.sql] memory_limit = "4GB"`, `threads = 4`, `temp_directory = ...`."""
    where = "[tool.vibepiper.sql]"
    if not isinstance(table, dict):
        raise ProjectLoadError(f"{where} is not a table", 'write memory_limit = "4GB" under it')
    for key, value in table.items():
        kind = SQL_SETTINGS.get(key)
        if kind is None:
            raise ProjectLoadError(
                f"{where} has no setting '{key}'{did_you_mean(key, SQL_SETTINGS)}",
                f"the settings are {', '.join(SQL_SETTINGS)}",
            )
        if not isinstance(value, kind) or isinstance(value, bool) or not value:
            raise ProjectLoadError(
                f"{where} {key} = {value!r} is not valid",
                'e.g. memory_limit = "4GB", threads = 4, temp_directory = ".vibepiper/tmp"',
            )
    return dict(table)


def sql_files(settings: Settings) -> list[Path]:
    """The `.sql` files of the project's `sql_paths`, in a stable order."""
    return [f for folder in settings.sql_paths for f in sorted(folder.rglob("*.sql"))]


def sql_file_assets(settings: Settings) -> list[tuple[AssetDef, str]]:
    """One SQL asset per `.sql` file, named by the file's stem; its group is its
    subfolder's name (else "default"), its description its leading comment lines. Each
    comes with its holder's name for the snapshot ("sql:" and its path)."""
    from vibepiper.definitions.asset import check_name, sql_asset

    found = []
    for path in sql_files(settings):
        shown = os.path.relpath(path, settings.root)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DefinitionError(
                f"SQL file {shown} cannot be read: {type(exc).__name__}",
                "save it as UTF-8 text",
            ) from None
        try:
            name = check_name(path.stem)
        except DefinitionError as exc:
            raise DefinitionError(f"SQL file {shown}: {exc.message}", exc.hint) from None
        folder = next(f for f in settings.sql_paths if path.is_relative_to(f))
        group = path.parent.name if path.parent != folder else None
        comments = []
        for line in text.strip().splitlines():
            if not line.strip().startswith("--"):
                break
            comments.append(line.strip()[2:].strip())
        defn = sql_asset(
            name,
            text,
            group=group,
            description=" ".join(c for c in comments if c),
            _where=(shown, 1),
        )
        found.append((defn, f"sql:{shown}"))
    return found


def _home(given: str | os.PathLike[str] | None, configured: Any, root: Path) -> Path:
    """The home folder: `--home` (or `home=`, or VIBEPIPER_HOME) relative to the current
    folder, like `--project`; else `[tool.vibepiper] home` relative to the project folder;
    else the project's `.vibepiper`."""
    if given:
        return Path(given).resolve()
    if configured is None:
        return (root / ".vibepiper").resolve()
    if not isinstance(configured, str) or not configured.strip():
        raise ProjectLoadError(
            f"[tool.vibepiper] home = {configured!r} is not valid",
            'give a folder as a string, relative to the project folder: home = ".vibepiper"',
        )
    return (root / configured).resolve()


def _execution(table: dict[str, Any]) -> dict[str, Any]:
    """`executor = "processes"`, `workers = 4` and `[tool.vibepiper.pools] name = N`."""
    from vibepiper.execution import EXECUTORS

    found: dict[str, Any] = {}
    executor = table.get("executor", "inprocess")
    if not isinstance(executor, str) or executor not in EXECUTORS:
        raise ProjectLoadError(
            f"[tool.vibepiper] executor = {executor!r} is not an executor",
            f"choose one of {', '.join(EXECUTORS)}",
        )
    found["executor"] = executor
    workers = table.get("workers")
    if workers is not None:
        if not _count(workers):
            raise ProjectLoadError(
                f"[tool.vibepiper] workers = {workers!r} is not valid", "give a whole number >= 1"
            )
        found["workers"] = workers
    pools = table.get("pools", {})
    if not isinstance(pools, dict):
        raise ProjectLoadError(
            "[tool.vibepiper] pools is not a table", "write [tool.vibepiper.pools] warehouse = 2"
        )
    for name, limit in pools.items():
        if not _count(limit):
            raise ProjectLoadError(
                f"[tool.vibepiper.pools] {name} = {limit!r} is not valid",
                "give how many assets of the pool may run at once: a whole number >= 1",
            )
    found["pools"] = dict(pools)
    return found


def _config(config: Any, pyproject: Path) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise ProjectLoadError(
            f"[tool.vibepiper] config = {config!r} in {pyproject} is not a table",
            "write [tool.vibepiper.config.ASSET] sections: [tool.vibepiper.config.orders] "
            "min_amount = 10",
        )
    return config


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _openlineage(config: Any, root: Path) -> dict[str, Any] | None:
    """`[tool.vibepiper] openlineage = {transport = "file", path = "..."}` or
    `{transport = "http", url = "http://host:5000"}` (plus an optional `namespace`)."""
    if config is None:
        return None
    where = "[tool.vibepiper] openlineage"
    if not isinstance(config, dict):
        raise ProjectLoadError(
            f"{where} is not a table",
            'write openlineage = {transport = "file", path = "events.jsonl"}',
        )
    transport = config.get("transport")
    if transport == "file" and isinstance(config.get("path"), str):
        return {**config, "path": str(root / config["path"])}
    if transport == "http" and isinstance(config.get("url"), str):
        return dict(config)
    raise ProjectLoadError(
        f"{where} = {config!r} is not valid",
        'use {transport = "file", path = "events.jsonl"} or '
        '{transport = "http", url = "http://localhost:5000"}',
    )


def _tool_table(pyproject: Path) -> dict[str, Any]:
    if not pyproject.is_file():
        return {}
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProjectLoadError(
            f"{pyproject} is not valid TOML: {exc}", "fix the file's syntax"
        ) from None
    table = data.get("tool", {}).get("vibepiper", {})
    if not isinstance(table, dict):
        raise ProjectLoadError(
            f"[tool.vibepiper] in {pyproject} is not a table",
            "write it as a [tool.vibepiper] section",
        )
    return table


def load_definitions(settings: Settings) -> tuple[list[AssetDef], list[CheckDef]]:
    """Import the project's modules (and their submodules) and collect their definitions."""
    found = import_definitions(settings)
    return found.assets, found.checks


@dataclass
class Definitions:
    """What the imported modules of a project's tree define."""

    assets: list[AssetDef]
    checks: list[CheckDef]
    tree: list[str]  # the modules whose definitions are collected, in import order
    # each definition's tree module (the first one found to hold it), by id
    holder: dict[int, str] = field(default_factory=dict)
    schedules: list[Schedule] = field(default_factory=list)  # declared with `schedule()`


def import_definitions(
    settings: Settings, only: Iterable[str] | None = None, tree: Iterable[str] = ()
) -> Definitions:
    """Import the project's modules (and their submodules) and collect their definitions.

    With `only`, just those modules are imported; the definitions are then those of the
    modules of `tree` (the whole tree, as an earlier import found it) that got imported:
    `only`, and whatever of the tree they import.
    """
    root = str(settings.root)
    if sys.path[:1] != [root]:  # first, even if another project was loaded before
        while root in sys.path:
            sys.path.remove(root)
        sys.path.insert(0, root)
    importlib.invalidate_caches()
    _forget_project_modules(settings)
    if only is None:
        modules = [m for name in settings.modules for m in _import_tree(name, settings.root)]
    else:
        for name in only:
            _import(name, settings.root)
        modules = [sys.modules[n] for n in tree if n in sys.modules]
    _LOADED.update(name for name, _ in _project_modules(settings))
    found = Definitions([], [], [])
    if only is None:
        for defn, holder in sql_file_assets(settings):
            found.assets.append(defn)
            found.holder[id(defn)] = holder
    seen: set[int] = set()
    for module in modules:
        if module.__name__ in found.tree:
            continue
        found.tree.append(module.__name__)
        values = list(_definitions_in(module))
        refuse_duplicates(module, [v for v in values if not isinstance(v, Schedule)])
        for value in values:
            if id(value) in seen:
                continue
            seen.add(id(value))
            found.holder[id(value)] = module.__name__
            if isinstance(value, Schedule):
                found.schedules.append(value)
            elif isinstance(value, AssetDef):
                found.assets.append(value)
            else:
                found.checks.append(value)
    return found


def _import_tree(name: str, root: Path) -> Iterator[ModuleType]:
    module = _import(name, root)
    yield module
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=f"{name}."):
        yield _import(info.name, root)


def _project_modules(settings: Settings) -> Iterator[tuple[str, Path | None]]:
    """Imported modules that belong to the project: listed in its settings, or loaded from
    a file under its folder that is not part of an installed package (nor VibePiper)."""
    root = str(settings.root) + os.sep
    installed = tuple(os.path.join(p, "") for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
    for name, module in list(sys.modules.items()):
        if name == "__main__" or name.partition(".")[0] == "vibepiper":
            continue
        path = getattr(module, "__file__", None) or ""
        ours = path.startswith(root) and not path.startswith(installed)
        if ours and "site-packages" not in path:
            yield name, Path(path)
        elif any(name == m or name.startswith(f"{m}.") for m in settings.modules):
            yield name, None


def _forget_project_modules(settings: Settings) -> None:
    """Drop the project's modules from the import cache, so its current code is loaded.

    Done once per load, before any import: a module imported by a sibling during this
    load is then reused, not imported twice (which would define its assets twice). The
    modules an earlier load in this process found to be its project's go too: another
    project's `helpers` must not stand in for this one's.
    """
    for name, _ in _project_modules(settings):
        del sys.modules[name]
    for name in _LOADED:
        sys.modules.pop(name, None)
    _LOADED.clear()


_LOADED: set[str] = set()  # the project modules of the loads made in this process


def _import(name: str, root: Path) -> ModuleType:
    try:
        return importlib.import_module(name)
    except DefinitionError as exc:
        raise type(exc)(f"{exc.message} (in module {name})", exc.hint) from None
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(f"{exc.name}.")):
            raise ProjectLoadError(
                f"module '{name}' was not found in {root}",
                "check [tool.vibepiper] modules in pyproject.toml, or --project/-m",
            ) from None
        raise ProjectLoadError(
            f"module '{name}' failed to import: {_describe(exc, root)}",
            "fix the error in that module",
        ) from None
    except Exception as exc:
        raise ProjectLoadError(
            f"module '{name}' failed to import: {_describe(exc, root)}",
            "fix the error in that module",
        ) from None


def _describe(exc: BaseException, root: Path) -> str:
    where = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.startswith(str(root)):
            where = f" ({os.path.relpath(frame.filename, root)}:{frame.lineno})"
            break
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}{where}"


def project_files(settings: Settings) -> list[Path]:
    """pyproject.toml and the file of every imported module of the project."""
    return [settings.root / "pyproject.toml", *project_module_files(settings).values()]


def project_module_files(settings: Settings) -> dict[str, Path]:
    """The file of every imported module of the project, by module name."""
    return {name: path for name, path in _project_modules(settings) if path is not None}


def _definitions_in(module: ModuleType) -> Iterator[AssetDef | CheckDef | Schedule]:
    kinds = (AssetDef, CheckDef, Schedule)
    for value in vars(module).values():
        if isinstance(value, kinds):
            yield value
        elif isinstance(value, list | tuple | dict):  # assets built by a factory in a loop
            items = value.values() if isinstance(value, dict) else value
            yield from (v for v in items if isinstance(v, kinds))


@dataclass(frozen=True)
class GraphLoader:
    """Imports a project's definitions in a worker process; picklable and hashable."""

    root: Path
    modules: tuple[str, ...]
    home: Path
    sql_paths: tuple[Path, ...] = ()

    def __call__(self) -> Graph:
        from vibepiper.graph.graph import Graph as GraphClass

        settings = Settings(self.root, self.modules, self.home, sql_paths=self.sql_paths)
        assets, checks = load_definitions(settings)
        return GraphClass.build(assets, checks)


def project_imports(
    files: dict[str, Path], memo: IdentityMemo | None = None
) -> dict[str, tuple[str, ...]]:
    """For each project module (name -> file), the project modules its file imports,
    anywhere in it (a function's own `import` too), read from its syntax tree: an edit
    to one module makes every module that imports it, at any remove, load again.
    What each file imports is remembered in `memo` by the file's identity."""
    found = {}
    for name, path in files.items():
        imported = _imports_of(name, path, memo)
        found[name] = tuple(sorted(m for m in imported if m in files and m != name))
    return found


def _imports_of(name: str, path: Path, memo: IdentityMemo | None) -> list[str]:
    import json

    from vibepiper.versioning.source_cache import identity_of, statements, syntax_tree

    key = f"imports {name} {path}"
    try:
        identity = identity_of(os.stat(path))
    except OSError:
        return []
    known = memo.get(key, identity) if memo is not None else None
    if known is not None:
        return list(json.loads(known))
    tree = syntax_tree(str(path))
    if tree is None:
        return []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    imported: set[str] = set()
    for node in statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imported.update(_with_parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                up = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join([*up, *([base] if base else [])])
            if base:
                imported.update(_with_parents(base))
                imported.update(f"{base}.{alias.name}" for alias in node.names)
    result = sorted(imported)
    if memo is not None:
        memo.put(key, identity, json.dumps(result))
    return result


def _with_parents(dotted: str) -> list[str]:
    """`a.b.c` imports `a`, `a.b` and `a.b.c`."""
    parts = dotted.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]
