"""A snapshot of a loaded project: its graph, each asset's code version and what `list`
shows, saved under the project home with the identity of every file it came from.

While none of those files changed (and neither did Python, VibePiper or the libraries the
code versions name), commands that only judge freshness or read the catalog — `status`,
`list`, `explain`, `show`, `history`, `query`, a dry run, and a `materialize` that finds
everything fresh — use the snapshot instead of importing the project's modules (and
pandas with them). As dbt's partial parsing does, it trades a full import for a stat of
each file. Set VIBEPIPER_NO_SNAPSHOT=1 to always import.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vibepiper.definitions.asset import AUTOMATIONS, AssetDef, check_name
from vibepiper.definitions.partitions import Partitions
from vibepiper.definitions.schedule import Schedule, as_dict, from_dicts
from vibepiper.errors import VibePiperError
from vibepiper.graph.graph import Graph
from vibepiper.version import __version__
from vibepiper.versioning.fingerprint import UNKNOWN, CodeVersion, config_texts

FORMAT = 9
FILENAME = "snapshot.json"


@dataclass(frozen=True)
class Snapshot:
    graph: Graph  # assets without their functions: enough to select, judge and list
    codes: dict[str, CodeVersion]
    # asset -> its configuration parameters' defaults, as code versions hash them (the
    # graph's assets have no configuration: their functions were not imported)
    defaults: dict[str, dict[str, str]]
    listing: dict[str, dict[str, Any]]  # name -> its `vibepiper list --json` row
    modules: Modules
    # Module files edited since (empty: the snapshot stands for the whole project), and the
    # modules of the tree to import again for them (see `affected`).
    changed: tuple[str, ...] = ()
    affected: tuple[str, ...] = ()
    files: dict[str, Any] = field(default_factory=dict)  # path -> identity, when taken
    # the schedules declared in Python, with the tree module holding each
    schedules: tuple[tuple[Schedule, str], ...] = ()


@dataclass(frozen=True)
class Modules:
    """How a project's modules hang together, as its last import found them."""

    tree: tuple[str, ...] = ()  # the modules whose definitions were collected, in order
    files: Mapping[str, str] = field(default_factory=dict)  # project module -> its file
    imports: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # -> project modules
    # asset -> the tree module that holds it, and those holding its checks
    holder: Mapping[str, str] = field(default_factory=dict)
    check_holders: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def enabled() -> bool:
    return os.environ.get("VIBEPIPER_NO_SNAPSHOT", "") in ("", "0")


def save(
    home: Path,
    key: dict[str, Any],
    files: list[Path],
    graph: Graph,
    codes: dict[str, CodeVersion],
    listing: list[dict[str, Any]],
    modules: Modules,
    known: Mapping[str, Any] | None = None,
    schedules: tuple[tuple[Schedule, str], ...] = (),
) -> None:
    """Write the snapshot (atomically). Skipped when a library version cannot be read
    without importing it (the snapshot could not be checked later), or when a code version
    could not be computed (the asset must then be judged stale every time)."""
    target = home / FILENAME
    if any(UNKNOWN in code.parts for code in codes.values()):
        target.unlink(missing_ok=True)  # such an asset must be judged from its code each time
        return
    names = {
        label.removeprefix("library ")
        for code in codes.values()
        for label in code.parts
        if label.startswith("library ")
    }
    libraries = {}
    for name in sorted(names):
        found = _installed(name)
        if found is None:
            return
        libraries[name] = found
    data = {
        "format": FORMAT,
        "key": key,
        "files": {str(f): _identity(f, (known or {}).get(str(f))) for f in sorted(set(files))},
        "packages": {str(d): _listing(d) for d in _package_dirs(files)},
        "libraries": libraries,
        "assets": [_asset_entry(graph.assets[n], graph, codes[n], modules) for n in graph.order],
        "listing": [_compact(row, LISTING_DEFAULTS) for row in listing],
        "tree": list(modules.tree),
        "modules": dict(modules.files),
        "imports": {name: list(found) for name, found in modules.imports.items()},
        "schedules": [{**as_dict(s), "holder": holder} for s, holder in schedules],
    }
    home.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{FILENAME}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(data))
    os.replace(temp, target)


def load(home: Path, key: dict[str, Any]) -> Snapshot | None:
    """The snapshot, if it exists and everything it was made from is unchanged — or if
    only module files changed: then `changed` names them and `affected` says which
    modules to import again (the rest of the snapshot still stands for the others)."""
    data = _read(home, key)
    if data is None:
        return None
    try:
        changed = _changed(data)
        if changed is None:
            return None
        found = _rebuild(data)
        if not changed:
            return found
        affected = _affected(found.modules, changed)
        if affected is None:
            return None
        return replace(found, changed=tuple(changed), affected=affected)
    except (KeyError, TypeError, ValueError, AttributeError, VibePiperError):
        return None


def listing(home: Path, key: dict[str, Any]) -> list[dict[str, Any]] | None:
    """`vibepiper list`'s row of every asset, in the graph's order, if the snapshot stands
    whole (no file changed): read without rebuilding the definitions and their graph."""
    data = _read(home, key)
    if data is None:
        return None
    try:
        if _changed(data) != []:
            return None
        by_name = _list_rows(data)
        order = [entry["name"] for entry in data["assets"]]  # saved in the graph's order
        if len(order) != len(by_name) or not all(isinstance(n, str) for n in order):
            return None
        return [by_name[name] for name in order]
    except (KeyError, TypeError, ValueError, AttributeError, VibePiperError):
        return None


def _list_rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The snapshot's `list` rows by asset name (each name checked)."""
    rows = [_full(row, LISTING_DEFAULTS, LISTING_MUTABLE) for row in data["listing"]]
    return {check_name(row["name"]): row for row in rows}


def _read(home: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The snapshot's JSON, if it is of this format and was made for `key`."""
    try:
        data = json.loads((home / FILENAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
        return None
    return data


def project_key(
    root: Path, modules: tuple[str, ...], sql_files: list[str] | None = None
) -> dict[str, Any]:
    return {
        "root": str(root),
        "modules": list(modules),
        "sql_files": sql_files or [],
        "python": sys.version,
        "vibepiper": __version__,
    }


def _changed(data: dict[str, Any]) -> list[str] | None:
    """The files that changed since the snapshot, or None if something else did (a
    package's listing, a library's version): then it cannot be used at all."""
    changed = []
    for path, identity in data["files"].items():
        if _identity(Path(path), identity) != identity:
            changed.append(str(path))
    for folder, listing in data["packages"].items():
        if _listing(Path(folder)) != listing:
            return None
    # A library's metadata folder is named after its version: if it is still there, the
    # version is the same (and no import of importlib.metadata is needed to know it).
    if not all(os.path.isdir(folder) for folder in data["libraries"].values()):
        return None
    return changed


def _affected(modules: Modules, changed: list[str]) -> tuple[str, ...] | None:
    """The modules of the tree to import again after `changed` files were edited: their
    own modules, every module that imports one of those (at any remove: its code may use
    what changed), and the modules holding checks on the assets of any of these, or
    assets checked by them (a code version covers the asset's checks). None if a changed
    file is no module's (pyproject.toml, say): then everything is imported."""
    by_file = {file: name for name, file in modules.files.items()}
    if not all(path in by_file for path in changed):
        return None
    links: dict[str, set[str]] = {name: set() for name in modules.files}
    for name, imported in modules.imports.items():
        for other in imported:
            links.setdefault(other, set()).add(name)  # `other` changed: `name` must follow
    for asset, holder in modules.holder.items():
        for other in modules.check_holders.get(asset, ()):
            links.setdefault(holder, set()).add(other)
            links.setdefault(other, set()).add(holder)
    affected = {by_file[path] for path in changed}
    stack = list(affected)
    while stack:
        for other in links.get(stack.pop(), ()):
            if other not in affected:
                affected.add(other)
                stack.append(other)
    return tuple(name for name in modules.tree if name in affected)


def _identity(path: Path, known: list[Any] | None = None) -> list[Any]:
    """[size, mtime_ns, sha256] of a file; read and hashed only if size or mtime moved."""
    try:
        stat = path.stat()
    except OSError:
        return []
    if known and known[:2] == [stat.st_size, stat.st_mtime_ns]:
        return known
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if known and known[2:] == [digest]:  # touched, not changed
        return known
    return [stat.st_size, stat.st_mtime_ns, digest]


def _package_dirs(files: list[Path]) -> list[Path]:
    return sorted({f.parent for f in files if f.name == "__init__.py"})


def _listing(folder: Path) -> list[str]:
    """What `pkgutil.walk_packages` would find in a package folder."""
    try:
        return sorted(
            p.name for p in folder.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()
        )
    except OSError:
        return []


def _installed(name: str) -> str | None:
    """The metadata folder (`name-version.dist-info`) of an installed library, if known."""
    import importlib.metadata

    try:
        folder = getattr(importlib.metadata.distribution(name), "_path", None)
    except importlib.metadata.PackageNotFoundError:
        return None
    return str(folder) if folder is not None and Path(folder).is_dir() else None


# What most assets have: an entry (a listing row) leaves out what equals these, and is
# read back over them (a snapshot of thousands of assets is far smaller, read faster).
ENTRY_DEFAULTS: dict[str, Any] = {
    "check_holders": [],
    "inputs": {},
    "upstream": [],
    "check_reads": {},
    "tags": [],
    "group": "default",
    "description": "",
    "max_age": None,
    "source_path": None,
    "automation": None,
    "watch": False,
    "partitions": None,
    "time_column": None,
    "lookback": {},
    "sql": None,
    "read_as": {},
    "config": {},
}
LISTING_DEFAULTS: dict[str, Any] = {  # in the order of `list --json`'s keys
    "name": None,
    "deps": [],
    "tags": [],
    "group": "default",
    "description": "",
    "checks": [],
    "schema": None,
    "source": None,
    "partitions": None,
}


def _compact(row: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in defaults or v != defaults[k]}


def _mutable(defaults: dict[str, Any]) -> tuple[tuple[str, type], ...]:
    """The keys of `defaults` whose value is a list or a dict, and its type."""
    return tuple((k, type(v)) for k, v in defaults.items() if isinstance(v, list | dict))


ENTRY_MUTABLE, LISTING_MUTABLE = _mutable(ENTRY_DEFAULTS), _mutable(LISTING_DEFAULTS)


def _full(
    row: Any, defaults: dict[str, Any], mutable: tuple[tuple[str, type], ...]
) -> dict[str, Any]:
    """A compacted row read back over `defaults` (`mutable`: its lists and dicts, each
    row given its own); a TypeError if it is not a mapping of texts."""
    if not isinstance(row, dict) or not all(isinstance(k, str) for k in row):
        raise TypeError("a snapshot entry is not a mapping")
    full = {**defaults, **row}
    for key, kind in mutable:
        if key not in row:
            full[key] = kind()
    return full


def _asset_entry(
    defn: AssetDef, graph: Graph, code: CodeVersion, modules: Modules
) -> dict[str, Any]:
    return _compact(_whole_entry(defn, graph, code, modules), ENTRY_DEFAULTS)


def _whole_entry(
    defn: AssetDef, graph: Graph, code: CodeVersion, modules: Modules
) -> dict[str, Any]:
    return {
        "name": defn.name,
        "module": defn.module,
        "holder": modules.holder[defn.name],
        "check_holders": list(modules.check_holders.get(defn.name, ())),
        "inputs": dict(defn.inputs),
        "upstream": list(graph.upstream[defn.name]),
        "check_reads": {k: list(v) for k, v in graph.check_reads.get(defn.name, {}).items()},
        "tags": list(defn.tags),
        "group": defn.group,
        "description": defn.description,
        "max_age": defn.max_age.total_seconds() if defn.max_age else None,
        "source_path": defn.source_path,
        "automation": defn.automation,
        "watch": defn.watch,
        "partitions": defn.partitions.as_dict() if defn.partitions else None,
        "time_column": defn.time_column,
        "lookback": dict(defn.lookback),
        "sql": defn.sql,
        "read_as": dict(defn.read_as),
        "code_version": code.version,
        "code_parts": code.parts,
        "config": config_texts(defn.config),
    }


def stands_in(defn: AssetDef) -> bool:
    """Whether `defn` is the snapshot's stand-in for an asset whose code was not imported."""
    return defn.fn is _not_loaded


def _not_loaded(*args: Any, **kwargs: Any) -> Any:
    raise VibePiperError(
        "this asset's code was not loaded (a snapshot was used)",
        "run the command again, or set VIBEPIPER_NO_SNAPSHOT=1",
    )


def _rebuild(data: dict[str, Any]) -> Snapshot:
    """The snapshot's definitions; a name that no definition could have (the file was
    edited or forged: names end up in SQL and paths) makes the whole snapshot unusable."""
    assets, codes, reads, defaults = [], {}, {}, {}
    holder: dict[str, str] = {}
    check_holders: dict[str, tuple[str, ...]] = {}
    valid: set[str] = set()
    for compact in data["assets"]:
        entry = _full(compact, ENTRY_DEFAULTS, ENTRY_MUTABLE)
        _check_names(entry, valid)
        if entry["check_reads"]:
            reads[entry["name"]] = MappingProxyType(
                {str(k): tuple(map(str, v)) for k, v in dict(entry["check_reads"]).items()}
            )
        inputs = dict(entry["inputs"])
        assets.append(
            AssetDef.restored(
                name=entry["name"],
                fn=_not_loaded,
                inputs=inputs,
                config={},
                takes_context=False,
                deps=tuple(u for u in entry["upstream"] if u not in inputs.values()),
                tags=tuple(entry["tags"]),
                group=entry["group"],
                description=entry["description"],
                max_age=timedelta(seconds=entry["max_age"]) if entry["max_age"] else None,
                source_path=entry["source_path"],
                automation=_automation(entry["automation"]),
                watch=entry["watch"] is True,
                partitions=Partitions.from_dict(entry["partitions"])
                if entry["partitions"]
                else None,
                time_column=str(entry["time_column"]) if entry["time_column"] else None,
                lookback={str(k): int(v) for k, v in dict(entry["lookback"]).items()},
                sql=str(entry["sql"]) if entry["sql"] is not None else None,
                read_as={str(k): str(v) for k, v in dict(entry["read_as"]).items()},
                module=str(entry["module"]),
            )
        )
        holder[entry["name"]] = str(entry["holder"])
        if entry["check_holders"]:
            check_holders[entry["name"]] = tuple(map(str, entry["check_holders"]))
        codes[entry["name"]] = CodeVersion(entry["code_version"], dict(entry["code_parts"]))
        defaults[entry["name"]] = {str(k): str(v) for k, v in dict(entry["config"]).items()}
    listing = _list_rows(data)
    order = [a.name for a in assets]  # saved in the graph's order
    graph = replace(Graph.build(assets, order=order), check_reads=MappingProxyType(reads))
    tree = tuple(map(str, data["tree"]))
    _check_tree(tree, data["key"]["modules"])
    modules = Modules(
        tree=tree,
        files={str(k): str(v) for k, v in dict(data["modules"]).items()},
        imports={str(k): tuple(map(str, v)) for k, v in dict(data["imports"]).items()},
        holder=holder,
        check_holders=check_holders,
    )
    entries = list(data["schedules"])
    declared = from_dicts(entries, data["key"]["modules"])
    holders = [str(e["holder"]) for e in entries]
    if not all(h in tree for h in holders):
        raise ValueError("a schedule's module is not of the project's tree")
    return Snapshot(
        graph,
        codes,
        defaults,
        listing,
        modules,
        files=dict(data["files"]),
        schedules=tuple(zip(declared, holders, strict=True)),
    )


def _automation(value: Any) -> str | None:
    if value is not None and value not in AUTOMATIONS:
        raise ValueError(f"automation {value!r} is not one of ours")
    return value


def _check_tree(tree: tuple[str, ...], listed: list[str]) -> None:
    """Raise a ValueError unless every module of `tree` is a listed module or one of its
    submodules: the tree's names are imported when their files are edited, and a name
    read from disk must not make us import any other module."""
    for name in tree:
        inside = any(name == m or name.startswith(f"{m}.") for m in listed)
        if not inside or not all(part.isidentifier() for part in name.split(".")):
            raise ValueError(f"module {name!r} is not of the project's tree")


def _check_names(entry: dict[str, Any], valid: set[str]) -> None:
    """Raise (a DefinitionError, or a TypeError) unless every asset named in `entry` has a
    name `@asset` would accept, and every parameter name is an identifier. `valid`: the
    names already found valid (each name is looked at once, however often it is read)."""
    named = [entry["name"], *entry["upstream"], *dict(entry["inputs"]).values()]
    for reads in dict(entry["check_reads"]).values():
        named.extend(reads)
    for name in named:
        if name not in valid:
            valid.add(check_name(name))
    params = [*dict(entry["inputs"]), *dict(entry["config"])]
    if not all(isinstance(p, str) and p.isidentifier() for p in params):
        raise TypeError("a parameter name is not an identifier")
