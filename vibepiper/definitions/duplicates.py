"""One asset (or check) defined twice in a module is a definition error, not a silent
replacement: the loader refuses two definitions of one name found in a module, and a
definition that a later top-level statement of its module replaced (a second `def` of the
same name leaves only the last in the module, with its checks)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from types import ModuleType

from vibepiper.definitions.asset import AssetDef
from vibepiper.definitions.check import CheckDef
from vibepiper.errors import DefinitionError


def refuse_duplicates(module: ModuleType, found: list[AssetDef | CheckDef]) -> None:
    """Refuse two definitions of one asset (or check) in `module`: both found in it, or
    the first lost because a later top-level statement bound its name again."""
    own = [d for d in found if d.module == module.__name__]
    _refuse_found_twice(module.__name__, own)
    source = _source(module)
    if source is not None and _binds_a_name_twice(source):  # else nothing can be lost
        _refuse_lost(module.__name__, _top_level_bindings(source), {d.line for d in own})


def _refuse_found_twice(module: str, own: list[AssetDef | CheckDef]) -> None:
    by_label: dict[str, AssetDef | CheckDef] = {}
    for defn in own:
        other = by_label.setdefault(_label(defn), defn)
        if other is not defn:
            decorator = "check" if isinstance(defn, CheckDef) else "asset"
            raise DefinitionError(
                f"{_label(defn)} is defined twice in module {module}"
                f"{_lines(other.line, defn.line)}",
                f"give one of them another name, e.g. with @{decorator}(name=...)",
            )


def _refuse_lost(module: str, bindings: list[_Binding], kept: set[int | None]) -> None:
    """Refuse a definition the module no longer holds (none of those it holds, `kept`, is
    from its line) because a later binding of the module took its name."""
    for i, lost in enumerate(bindings):
        if lost.label is None or lost.line in kept:
            continue
        later = next((b for b in bindings[i + 1 :] if b.name == lost.name), None)
        if later is None:
            continue
        if later.label == lost.label:
            message = f"{lost.label} is defined twice in module {module}"
            message += _lines(lost.line, later.line)
        else:
            message = f"{lost.label} in module {module} (line {lost.line}) is lost: "
            message += f"line {later.line} binds the name '{lost.name}' again"
        raise DefinitionError(
            message, "rename one of them: a module-level name keeps only its last definition"
        )


def _label(defn: AssetDef | CheckDef) -> str:
    if isinstance(defn, CheckDef):
        return f"check '{defn.name}' on asset '{defn.asset}'"
    return f"asset '{defn.name}'"


def _lines(*lines: int | None) -> str:
    known = sorted({line for line in lines if line is not None})
    if not known:
        return ""
    return f" (line {known[0]})" if len(known) == 1 else f" (lines {known[0]} and {known[1]})"


def _source(module: ModuleType) -> str | None:
    loader = getattr(module.__spec__, "loader", None)
    get_source = getattr(loader, "get_source", None)
    if get_source is None:
        return None
    try:
        source = get_source(module.__name__)
    except (ImportError, OSError):
        return None
    return source if isinstance(source, str) else None


# A name bound by a def, class or assignment at the top level of a module (column 0). It
# may match more (e.g. `else: x = 1`), which only costs parsing the module.
_TOP_LEVEL_BINDING = re.compile(
    r"^(?:(?:async[ \t]+)?def|class)[ \t]+(\w+)|^(\w+)[ \t]*(?::[^=\n]*)?=(?!=)", re.MULTILINE
)


def _binds_a_name_twice(source: str) -> bool:
    """Whether some top-level name may be bound twice: a quick look, so that only such
    modules are parsed (parsing a module of 2,000 assets takes 0.4 s)."""
    names = [a or b for a, b in _TOP_LEVEL_BINDING.findall(source)]
    return len(names) != len(set(names))


@dataclass(frozen=True)
class _Binding:
    """A top-level statement binding `name`; `label` says which asset or check it defines
    (`@asset`, `@check(...)` or `= source_file(...)`, under any module prefix), if any."""

    line: int
    name: str
    label: str | None


def _top_level_bindings(source: str) -> list[_Binding]:
    try:
        tree = ast.parse(source)
    except SyntaxError:  # the file changed since it was imported
        return []
    found: list[_Binding] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            line = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            found.append(_Binding(line, node.name, _decorated_label(node)))
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    label = _source_label(node.value, target.id)
                    found.append(_Binding(node.lineno, target.id, label))
    return found


def _decorated_label(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str | None:
    for decorator in node.decorator_list:
        kind = _callee(decorator)
        options = decorator.keywords if isinstance(decorator, ast.Call) else []
        name = _text(options, "name") or node.name
        if kind == "asset":
            return f"asset '{name}'"
        if kind == "check":
            return f"check '{name}' on asset '{_text(options, 'asset') or '?'}'"
    return None


def _source_label(value: ast.expr, variable: str) -> str | None:
    if not isinstance(value, ast.Call) or _callee(value) != "source_file":
        return None
    first = value.args[0] if value.args else None
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return f"asset '{first.value}'"
    return f"asset '{_text(value.keywords, 'name') or variable}'"


def _callee(node: ast.expr) -> str | None:
    """`asset` for `asset`, `vp.asset`, `asset(...)` or `vp.asset(...)`."""
    func = node.func if isinstance(node, ast.Call) else node
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def _text(keywords: list[ast.keyword], key: str) -> str | None:
    """The string passed as `key=`, if it is written as a literal."""
    for keyword in keywords:
        if keyword.arg == key and isinstance(keyword.value, ast.Constant):
            value = keyword.value.value
            return value if isinstance(value, str) else None
    return None
