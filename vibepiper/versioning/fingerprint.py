"""Code versions: the explicit `version=`, else a fingerprint of what defines the output.

The fingerprint covers the function's code (its AST, so formatting, comments and the
docstring do not count), its configuration values, its schema and its checks.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import textwrap
from typing import Any

from vibepiper.definitions.asset import AssetDef


def code_version(defn: AssetDef) -> str:
    """The code version recorded with each materialization of `defn`."""
    if defn.version is not None:
        return f"v:{defn.version}"
    parts = [
        _function_fingerprint(defn.source_reader or defn.fn),
        _stable_json(dict(defn.config)),
        _schema_fingerprint(defn.schema),
        _stable_json([_check_fingerprint(c) for c in defn.checks]),
        defn.source_path or "",
    ]
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()


def _function_fingerprint(fn: Any) -> str:
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        code = getattr(fn, "__code__", None)
        return repr(code.co_code) if code is not None else repr(fn)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                node.decorator_list = []
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def _schema_fingerprint(schema: Any) -> str:
    if schema is None:
        return ""
    if inspect.isclass(schema):
        return _function_fingerprint(schema)
    return repr(schema)


def _check_fingerprint(chk: Any) -> str:
    describe = getattr(chk, "describe", None)
    if describe is not None:
        return f"{describe()}|{chk.severity}|{chk.name}"
    return _function_fingerprint(getattr(chk, "fn", chk))


def _stable_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)
