"""Code versions: the explicit `version=`, else a fingerprint of everything that defines
an asset's output.

The fingerprint covers the function's own code (its syntax tree, so formatting, comments
and the docstring do not count), its configuration values, its schema, its checks and,
transitively, the project's own helper functions, classes and module-level constants that
the code refers to. Library code is identified by its package version, not its source.
Each of these is a named *part* ("code", "helper clean_names()", "constant RATE",
"library pandas"...), so a change can be explained by the parts that differ.
"""

from __future__ import annotations

import ast
import dis
import hashlib
import inspect
import json
import os
import sys
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from vibepiper.definitions.asset import AssetDef
from vibepiper.definitions.check import CheckDef
from vibepiper.versioning.source_cache import (
    STATEMENT_KINDS,
    Identity,
    IdentityMemo,
    identity_of,
    parsed,
    statements,
)

# Libraries every asset depends on implicitly: its inputs and output are their objects.
IMPLICIT_LIBRARIES = ("pandas", "pyarrow")
_COLUMN_FLAGS = ("dtype", "nullable", "unique", "coerce", "required", "regex")
_SCHEMA_FLAGS = ("strict", "coerce", "ordered", "unique", "add_missing_columns", "dtype")
_INSTALLED = tuple(os.path.join(p, "") for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})


UNKNOWN = "unknown"  # the part recorded when the fingerprint failed


@dataclass(frozen=True)
class CodeVersion:
    """An asset's code version, and the named parts it was computed from."""

    version: str
    parts: dict[str, str]


def describe_changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Why two code versions differ, in words: 'code changed', 'helper f() changed'..."""
    if UNKNOWN in new:
        return [
            f"its code version could not be computed ({new[UNKNOWN]}); "
            "set @asset(version=...) to pin it"
        ]
    reasons = []
    for label in sorted(new, key=_label_order):
        if label in old and old[label] != new[label]:
            if label.startswith("library "):
                reasons.append(f"{label} changed ({old[label]} -> {new[label]})")
            elif label == "config":
                reasons.append("configuration changed")
            elif label == "version":
                reasons.append(f"version changed ({old[label]} -> {new[label]})")
            else:
                reasons.append(f"{label} changed")
        elif label not in old and label == "version":
            reasons.append("version= set")
        elif label == "config" and label not in old:  # an override of a pinned version
            reasons.append("configuration changed")
    if "config" in old and "config" not in new and "version" in new:
        reasons.append("configuration changed")
    if not reasons:
        reasons.append("code changed")
    return reasons


def config_texts(config: Mapping[str, Any]) -> dict[str, str]:
    """Each configuration value as the deterministic text a code version hashes."""
    return {name: _text(value) for name, value in config.items()}


def _text(value: Any) -> str:
    try:
        return _canonical(value)
    except Exception as exc:  # user objects can fail in any way when inspected
        return f"{UNKNOWN}: {type(exc).__name__}"  # its code version is unknown too


def config_digest(texts: Mapping[str, str]) -> str:
    """The configuration part of a code version, from `config_texts` (the same digest
    as the canonical text of the whole configuration)."""
    items = sorted((_canonical(name), text) for name, text in texts.items())
    return _digest("{" + ",".join(f"{k}:{v}" for k, v in items) + "}")


def configured(
    code: CodeVersion, defaults: Mapping[str, str], values: Mapping[str, str]
) -> CodeVersion:
    """The code version of an asset whose configuration is `values` (`config_texts`)
    rather than its `defaults`. A version pinned with `version=` gains a configuration
    part only when the values differ from the defaults."""
    if dict(values) == dict(defaults) or UNKNOWN in code.parts:
        return code
    parts = {**code.parts, "config": config_digest(values)}
    if "version" in code.parts:
        return CodeVersion(f"{code.version}+{parts['config']}", parts)
    return CodeVersion(_digest(_canonical(parts)), parts)


def _label_order(label: str) -> tuple[int, str]:
    order = ("version", "code", "config", "schema", "checks")
    return (order.index(label) if label in order else len(order), label)


class Fingerprinter:
    """Fingerprints functions, classes and constants of one loaded project.

    Parsed files and hashes are cached for the fingerprinter's lifetime (one run): make a
    new one after the project's modules are reloaded. With a `memo`, what depends only on
    code is also remembered across runs: a function's syntax-tree hash by its file's
    identity (size, mtime, inode), so that after one edit only the edited file is parsed
    again; the globals a function's bytecode reads by that bytecode, so that only the
    edited function's is read again. Values (constants, configuration, schemas) are always
    looked at anew.
    """

    def __init__(self, memo: IdentityMemo | None = None) -> None:
        self.memo = memo
        self._trees: dict[str, dict[int | str, tuple[ast.AST, str]]] = {}
        # (id, with defaults) -> (the object, kept alive so its id stays unique; hash)
        self._own: dict[tuple[int, bool], tuple[Any, str]] = {}
        self._identities: dict[str, Identity | None] = {}

    def code_version(self, defn: AssetDef, checks: tuple[CheckDef, ...]) -> CodeVersion:
        """The code version; one that cannot be computed is new every time (never fresh)."""
        if defn.version is not None:
            return CodeVersion(f"v:{defn.version}", {"version": defn.version})
        try:
            return self._fingerprint(defn, checks)
        except Exception as exc:  # user objects can fail in any way when inspected
            problem = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            return CodeVersion(f"unknown:{os.urandom(8).hex()}", {UNKNOWN: problem})

    def _fingerprint(self, defn: AssetDef, checks: tuple[CheckDef, ...]) -> CodeVersion:
        parts: dict[str, str] = {}
        fn = defn.source_reader or defn.fn
        if defn.sql is not None:  # its normal form: formatting and comments do not count
            parts["code"] = _digest(f"sql:{_normalized(defn.sql)}|{dict(defn.read_as)}")
        else:  # parameter defaults are the configuration, a part of their own
            own = self._own_hash(fn, defaults=False)
            parts["code"] = own + (f"|{defn.source_path}" if defn.source_path else "")
            if defn.read_as:
                parts["code"] += f"|{_canonical(dict(defn.read_as))}"
        parts["config"] = _digest(_canonical(dict(defn.config)))  # == config_digest()
        if defn.schema is not None:
            parts["schema"] = self._schema_hash(defn.schema)
        if defn.partitions is not None:  # which data a key holds, and what it must hold
            laid_out = {
                "partitions": defn.partitions.as_dict(),
                "time_column": defn.time_column,
                "lookback": dict(defn.lookback),
            }
            parts["partitions"] = _digest(_canonical(laid_out))
        if defn.checks or checks:
            described = [_expectation(c) for c in defn.checks]
            described += [self._check_fn_hash(c) + c.severity for c in checks]
            parts["checks"] = _digest(_canonical(described))
            for chk in checks:
                if chk.sql is None:
                    self._collect(chk.fn, parts, set())
            for exp in defn.checks:
                if exp.fn is not None:  # a kind registered with @register_expectation
                    parts.setdefault(f"expectation {exp.kind}()", self._own_hash(exp.fn))
                    self._collect(exp.fn, parts, set())
        if defn.sql is None:
            self._collect(fn, parts, set())
        else:  # the engine that computes it
            parts["library duckdb"] = _library_version("duckdb")
        for library in IMPLICIT_LIBRARIES:
            parts.setdefault(f"library {library}", _library_version(library))
        return CodeVersion(_digest(_canonical(parts)), parts)

    # -- what a function refers to ----------------------------------------------------

    def _collect(self, obj: Any, parts: dict[str, str], seen: set[int]) -> None:
        """Add a part for every project helper, class, constant or library `obj` uses."""
        if id(obj) in seen:
            return
        seen.add(id(obj))
        for label, value in self._references(obj):
            if isinstance(value, types.ModuleType):
                parts.setdefault(label, _library_version(value.__name__))
            elif label.startswith(("helper ", "class ")):
                if label not in parts:
                    parts[label] = self._own_hash(value)
                self._collect(value, parts, seen)
            else:
                parts.setdefault(label, self._value_hash(value))

    def _references(self, obj: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(obj, AssetDef | CheckDef):
            obj = obj.fn
        if inspect.isclass(obj):
            for member in vars(obj).values():
                func = getattr(member, "__func__", member)
                if isinstance(func, types.FunctionType) and _is_project(func):
                    yield from self._references(func)
            return
        func = inspect.unwrap(obj) if callable(obj) else obj
        code = getattr(func, "__code__", None)
        if code is None:
            return
        namespace = dict(getattr(func, "__globals__", {}))
        used = self._global_loads(code)
        for cell_name, cell in zip(code.co_freevars, func.__closure__ or (), strict=False):
            try:
                namespace[cell_name] = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            used.setdefault(cell_name, set())
        for name in sorted(used):
            if name in namespace:
                yield from self._classify(name, namespace[name], used[name])

    def _classify(self, name: str, value: Any, attrs: set[str]) -> Iterator[tuple[str, Any]]:
        """Labelled parts for one global `name` (and `attrs`, the attributes read from it)."""
        if isinstance(value, AssetDef | CheckDef):
            value = value.fn
        if isinstance(value, types.ModuleType):
            if _is_project(value):
                for attr in sorted(attrs & set(vars(value))):
                    yield from self._classify(f"{name}.{attr}", getattr(value, attr), set())
            elif not _is_stdlib(value.__name__) and _top(value.__name__) != "vibepiper":
                yield f"library {_top(value.__name__)}", value
            return
        if inspect.isclass(value) or inspect.isfunction(value) or inspect.isbuiltin(value):
            if _is_project(value):
                label = f"class {name}" if inspect.isclass(value) else f"helper {name}()"
                yield label, value
            elif not _is_stdlib(getattr(value, "__module__", None) or "builtins"):
                module = sys.modules.get(_top(getattr(value, "__module__", "") or ""))
                if module is not None and module.__name__ != "vibepiper":
                    yield f"library {module.__name__}", module
            return
        yield f"constant {name}", value

    # -- hashing ----------------------------------------------------------------------

    def _own_hash(self, obj: Any, *, defaults: bool = True) -> str:
        """A hash of one function's or class's own code: its syntax tree, sans docstrings."""
        target = inspect.unwrap(obj) if callable(obj) and not inspect.isclass(obj) else obj
        key = (id(target), defaults)
        cached = self._own.get(key)
        if cached is None:
            cached = self._own[key] = (target, self._tree_hash(target, defaults))
        return cached[1]

    def _tree_hash(self, target: Any, defaults: bool) -> str:
        located = _location(target)
        if located is None:
            return _digest(_bytecode(target))
        filename, where = located
        remembered = self._remembered(filename, f"tree {int(defaults)} {where}")
        if remembered.value is not None:
            return remembered.value
        index = self._trees.get(filename)
        if index is None:
            index = self._trees[filename] = _index_file(filename)
        found = index.get(where)
        if found is None:
            return _digest(_bytecode(target))
        node, text = found
        # The same text parses to the same tree wherever it is: after an edit, only the
        # edited function is dumped again, not the other functions of its file.
        by_text = self._remembered_content(f"tree-text {int(defaults)} {text}")
        if by_text.value is not None and _is_digest(by_text.value):
            return remembered.keep(by_text.value)
        return remembered.keep(by_text.keep(_digest(_dump(node, defaults=defaults))))

    def _global_loads(self, code: types.CodeType) -> dict[str, set[str]]:
        """`_global_loads(code)`, remembered by what it reads (`_code_key`): after an edit
        only the edited function's bytecode is read again."""
        if self.memo is None:
            return _global_loads(code)
        key = f"loads {sys.implementation.cache_tag} {_code_key(code)}"
        known = _loads_from_text(self.memo.get(key, _ANY_FILE))
        if known is not None:
            return known
        used = _global_loads(code)
        self.memo.put(key, _ANY_FILE, json.dumps({k: sorted(v) for k, v in used.items()}))
        return used

    def _remembered_content(self, what: str) -> Remembered:
        """What the memo holds under `what`, a key made of content (not of a file)."""
        if self.memo is None:
            return Remembered(None, "", None)
        key = f"{sys.implementation.cache_tag} {what}"
        return Remembered(self.memo, key, _ANY_FILE, self.memo.get(key, _ANY_FILE))

    def _remembered(self, filename: str, what: str) -> Remembered:
        """What the memo holds about `what` in `filename` as the file is now, if anything."""
        if self.memo is None:
            return Remembered(None, "", None)
        if filename not in self._identities:
            try:
                self._identities[filename] = identity_of(os.stat(filename))
            except (OSError, ValueError):
                self._identities[filename] = None
        identity = self._identities[filename]
        if identity is None:
            return Remembered(None, "", None)
        key = f"{sys.implementation.cache_tag} {what} {filename}"
        return Remembered(self.memo, key, identity, self.memo.get(key, identity))

    def _schema_hash(self, schema: Any) -> str:
        """What a pandera schema checks: columns, dtypes, flags and every check's arguments
        (values such as an `isin` list are baked in when the class is created)."""
        to_schema = getattr(schema, "to_schema", None)
        resolved = to_schema() if callable(to_schema) else schema
        columns = getattr(resolved, "columns", None)
        if not isinstance(columns, dict):
            return self._value_hash(schema)
        described = {
            name: [str(getattr(col, attr, None)) for attr in _COLUMN_FLAGS]
            + [self._check_text(c) for c in getattr(col, "checks", [])]
            for name, col in columns.items()
        }
        flags = [str(getattr(resolved, attr, None)) for attr in _SCHEMA_FLAGS]
        checks = [self._check_text(c) for c in getattr(resolved, "checks", [])]
        index = repr(getattr(resolved, "index", None))
        return _digest(_canonical([described, flags, checks, index]))

    def _check_fn_hash(self, check: CheckDef) -> str:
        if check.sql is not None:
            return _digest(f"sql:{_normalized(check.sql)}")
        return self._own_hash(check.fn)

    def _check_text(self, check: Any) -> str:
        function = getattr(check, "_check_fn", None)
        code = self._own_hash(function) if inspect.isfunction(function) else ""
        statistics = _canonical(getattr(check, "statistics", None))
        return f"{getattr(check, 'name', check)}|{statistics}|{code}"

    def _value_hash(self, value: Any) -> str:
        if inspect.isclass(value):
            return self._own_hash(value)
        text = _canonical(value)
        if " at 0x" in text:  # an object whose repr is its address: use its type
            kind = type(value)
            return self._own_hash(kind) if _is_project(kind) else kind.__qualname__
        return _digest(text)


_ANY_FILE: Identity = (0, 0, 0)  # for memo entries keyed by content, not by a file


@dataclass
class Remembered:
    """One memo entry: its value if the memo held it for the file as it is, and `keep` to
    remember a value computed now (a no-op without a memo)."""

    memo: IdentityMemo | None
    key: str
    identity: Identity | None
    value: str | None = None

    def keep(self, value: str) -> str:
        if self.memo is not None and self.identity is not None:
            self.memo.put(self.key, self.identity, value)
        return value


def _location(obj: Any) -> tuple[str, int | str] | None:
    """The file that defines `obj`, and where in it: a class's qualname, a function's
    first line (decorators included); None for lambdas and what has no source file."""
    try:
        filename = inspect.getsourcefile(obj)
    except (TypeError, OSError):
        return None
    if not filename:
        return None
    if inspect.isclass(obj):
        return filename, obj.__qualname__
    code = getattr(obj, "__code__", None)
    if code is None or code.co_name == "<lambda>":
        return None
    return filename, code.co_firstlineno


def _loads_from_text(text: str | None) -> dict[str, set[str]] | None:
    """Remembered global loads, or None if absent or not {name: [attribute, ...]}: the memo
    is a file on disk, input like any other."""
    if text is None:
        return None
    try:
        loaded = json.loads(text)
    except ValueError:
        return None
    if not isinstance(loaded, dict) or not all(
        isinstance(v, list) and all(isinstance(a, str) for a in v) for v in loaded.values()
    ):
        return None
    return {str(k): set(v) for k, v in loaded.items()}


def _index_file(filename: str) -> dict[int | str, tuple[ast.AST, str]]:
    """Every function (by first line, decorators included) and class (by qualname), with
    a digest of its source text (from its `def` or `class` line to its last line)."""
    tree, lines = parsed(filename)
    if tree is None:
        return {}
    index: dict[int | str, tuple[ast.AST, str]] = {}

    def text_of(node: ast.stmt) -> str:
        end = getattr(node, "end_lineno", None) or node.lineno
        return hashlib.sha256(b"\n".join(lines[node.lineno - 1 : end])).hexdigest()

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, STATEMENT_KINDS):  # expressions hold no def or class
                continue
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                qualname = f"{prefix}{child.name}"
                if isinstance(child, ast.ClassDef):
                    index[qualname] = (child, text_of(child))
                    visit(child, f"{qualname}.")
                else:
                    index[first] = (child, text_of(child))
                    visit(child, f"{qualname}.<locals>.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return index


def _dump(node: ast.AST, *, defaults: bool = True) -> str:
    """`ast.dump` of `node` without decorators (they hold options, versioned separately)
    or docstrings, and without the top function's parameter defaults unless `defaults`.

    The tree is changed in place for the dump and restored after: no copy is made.
    """
    saved: list[tuple[ast.AST, str, Any]] = []

    def set_field(target: ast.AST, name: str, value: Any) -> None:
        saved.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    if not defaults and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        set_field(node.args, "defaults", [])
        set_field(node.args, "kw_defaults", [None] * len(node.args.kw_defaults))
    for child in statements(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            set_field(child, "decorator_list", [])
            body = child.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                set_field(child, "body", body[1:] or [ast.Pass()])
    try:
        return _dumped(node)
    finally:
        for target, name, value in reversed(saved):
            setattr(target, name, value)


def _fast_dump(node: Any) -> str:
    """What `ast.dump(node)` gives (no attributes, no indent) as CPython 3.11 and 3.12
    write it, in a third of the time: `Name(field=value, ...)`, a field left out when it
    is None and its class's default is None."""
    if isinstance(node, ast.AST):
        kind = type(node)
        fields = _FIELDS.get(kind)
        if fields is None:
            fields = _FIELDS[kind] = tuple(
                (name, getattr(kind, name, ...) is None) for name in kind._fields
            )
        parts = []
        for name, none_is_default in fields:
            try:
                value = getattr(node, name)
            except AttributeError:
                continue
            if value is None and none_is_default:
                continue
            parts.append(f"{name}={_fast_dump(value)}")
        return f"{kind.__name__}({', '.join(parts)})"
    if isinstance(node, list):
        return f"[{', '.join([_fast_dump(item) for item in node])}]"
    return repr(node)


_FIELDS: dict[type, tuple[tuple[str, bool], ...]] = {}
# From 3.13 on, ast.dump leaves empty lists and None out (show_empty=False): code versions
# stay what ast.dump gives, on every Python.
_dumped = _fast_dump if sys.version_info < (3, 13) else ast.dump


def _bytecode(obj: Any) -> str:
    code = getattr(obj, "__code__", None)
    if code is None:
        return repr(obj)
    return repr((code.co_code, _consts(code), code.co_names))


def _code_key(code: types.CodeType) -> str:
    """A hash of what `_global_loads(code)` reads: the instructions and the names they
    refer to, nested code included; not line numbers (a line added above a function
    leaves its key as it was) nor constants."""
    nested = [_code_key(c) for c in code.co_consts if isinstance(c, types.CodeType)]
    names = (code.co_names, code.co_varnames, code.co_cellvars, code.co_freevars)
    return _digest(repr((code.co_code, names, nested)))


def _consts(code: types.CodeType) -> tuple[Any, ...]:
    return tuple(_consts(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts)


_LOAD_GLOBAL = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF"})
_LOAD_ATTR = frozenset({"LOAD_ATTR", "LOAD_METHOD"})


def _global_loads(code: types.CodeType) -> dict[str, set[str]]:
    """The globals `code` (and code nested in it) reads, each with the attributes read
    straight off it (`helpers.rate` reads `rate` from `helpers`)."""
    used: dict[str, set[str]] = {}
    previous = None
    for instruction in dis.get_instructions(code):
        if instruction.opname in _LOAD_GLOBAL and isinstance(instruction.argval, str):
            used.setdefault(instruction.argval, set())
        elif (
            instruction.opname in _LOAD_ATTR
            and previous is not None
            and previous.opname in _LOAD_GLOBAL
            and isinstance(previous.argval, str)
        ):
            used[previous.argval].add(str(instruction.argval))
        previous = instruction
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            for name, attrs in _global_loads(const).items():
                used.setdefault(name, set()).update(attrs)
    return used


def _is_project(obj: Any) -> bool:
    """Defined in a file of the project (not an installed package, not the stdlib)?"""
    module = (
        obj
        if isinstance(obj, types.ModuleType)
        else sys.modules.get(getattr(obj, "__module__", "") or "")
    )
    path = getattr(module, "__file__", None)
    if not path or module is None or _top(module.__name__) == "vibepiper":
        return False
    return not path.startswith(_INSTALLED) and "site-packages" not in path


def _is_stdlib(module_name: str) -> bool:
    return _top(module_name) in sys.stdlib_module_names or module_name == "builtins"


def _top(module_name: str) -> str:
    return module_name.partition(".")[0]


_VERSIONS: dict[str, str] = {}


def _library_version(module_name: str) -> str:
    top = _top(module_name)
    if top not in _VERSIONS:
        version = getattr(sys.modules.get(top), "__version__", None)
        if not isinstance(version, str):
            import importlib.metadata

            try:
                version = importlib.metadata.version(top)
            except importlib.metadata.PackageNotFoundError:
                version = "unknown"
        _VERSIONS[top] = version
    return _VERSIONS[top]


def _canonical(value: Any, depth: int = 0) -> str:
    """A deterministic text for a value: sets sorted, frames hashed, the rest by repr."""
    if depth > 20:
        return "..."
    if isinstance(value, dict):
        items = sorted(
            (_canonical(k, depth + 1), _canonical(v, depth + 1)) for k, v in value.items()
        )
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if isinstance(value, set | frozenset):
        return "set(" + ",".join(sorted(_canonical(v, depth + 1) for v in value)) + ")"
    if isinstance(value, list | tuple):
        inner = ",".join(_canonical(v, depth + 1) for v in value)
        return f"{type(value).__name__}({inner})"
    module = type(value).__module__ or ""
    if module.startswith("pandas") and hasattr(value, "shape"):
        import pandas as pd

        hashed = pd.util.hash_pandas_object(value).to_numpy().tobytes()
        columns = repr(list(getattr(value, "columns", []))) + repr(getattr(value, "dtypes", ""))
        return f"{type(value).__name__}:{columns}:{hashlib.blake2b(hashed).hexdigest()}"
    return repr(value)


def _expectation(exp: Any) -> str:
    return f"{exp.describe()}|{exp.severity}|{exp.name}"


def _normalized(query: str) -> str:
    """A query's normal form (its text as written, if it does not parse: the definition
    refused it already, or it is a check's query that fails when it runs)."""
    from vibepiper.definitions.sql import normal_form

    return normal_form(query)


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _is_digest(value: str) -> bool:
    """Whether `value` (read from the memo, a file on disk) has the form `_digest` gives."""
    return len(value) == 24 and all(c in "0123456789abcdef" for c in value)
