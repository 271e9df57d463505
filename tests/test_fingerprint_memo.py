"""What fingerprints depend on in source files (a function's syntax-tree hash, the globals
its bytecode reads) is remembered across runs by each file's identity (issue "performance
at scale": one edit re-parses one file, not every module). Values are always looked at
anew, and the memo, a file on disk, is input: what is not as we write it is ignored."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from vibepiper import Project
from vibepiper.versioning import fingerprint
from vibepiper.versioning.fingerprint import CodeVersion, Fingerprinter

from .conftest import run_cli
from .test_freshness import edit, recomputed

MEMO = Path(".vibepiper") / "fingerprint-memo.json"

BASE = """
RATE = 2


def double(frame):
    return frame.assign(n=frame.n * 2)
"""

DERIVED = """
import pandas as pd
from vibepiper import asset
from base import RATE, double

FACTOR = RATE * 10  # a value this file computes from another file's


@asset
def first() -> pd.DataFrame:
    return pd.DataFrame({"n": [1, 2, 3]})


@asset
def scaled(first: pd.DataFrame) -> pd.DataFrame:
    return first.assign(n=first.n * FACTOR)


@asset
def doubled(first: pd.DataFrame) -> pd.DataFrame:
    return double(first)
"""


@pytest.fixture
def proj(project_dir: Callable[..., Path]) -> Path:
    root = project_dir({"base": BASE, "derived": DERIVED})
    result = run_cli(root, "materialize")
    assert result.returncode == 0, result.stderr
    assert (root / MEMO).is_file()
    return root


def loaded(root: Path) -> Project:
    """The project imported and fingerprinted in this process (never from its snapshot)."""
    project = Project(root)
    project.load_code()
    return project


def without_memo(project: Project) -> dict[str, CodeVersion]:
    fingerprints = Fingerprinter()
    return {
        name: fingerprints.code_version(defn, project.graph.checks.get(name, ()))
        for name, defn in project.graph.assets.items()
    }


def test_an_edit_parses_only_the_edited_file(proj: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    index_file = fingerprint._index_file

    def spy(filename: str) -> dict[int | str, object]:
        parsed.append(Path(filename).name)
        return index_file(filename)

    monkeypatch.setattr(fingerprint, "_index_file", spy)
    edit(proj / "base.py", "frame.n * 2", "frame.n * 2 + 0")

    project = loaded(proj)

    assert parsed == ["base.py"]
    assert project.codes == without_memo(project)  # the memo changes nothing computed


def test_only_an_edited_functions_bytecode_is_read_again(
    proj: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a function's bytecode reads is remembered by the bytecode, not by its file or
    its lines: lines added above it, or an edit to another function, read nothing again."""
    read: list[str] = []
    global_loads = fingerprint._global_loads

    def spy(code: object) -> dict[str, set[str]]:
        read.append(getattr(code, "co_name", "?"))
        return global_loads(code)  # type: ignore[arg-type]

    monkeypatch.setattr(fingerprint, "_global_loads", spy)
    derived = proj / "derived.py"
    derived.write_text("# a comment\n\n" + derived.read_text())
    assert loaded(proj).codes == without_memo(loaded(proj))
    read.clear()
    derived.write_text("\n\n" + derived.read_text())  # lines added above every function
    project = loaded(proj)
    assert read == []
    edit(derived, "first.n * FACTOR", "first.n * FACTOR + 0")
    project = loaded(proj)
    assert read == ["scaled"]
    assert project.codes == without_memo(project)


def test_a_value_computed_from_an_edited_file_is_seen_in_an_unchanged_one(proj: Path) -> None:
    edit(proj / "base.py", "RATE = 2", "RATE = 3")

    assert recomputed(proj) == {"scaled"}


def test_an_edited_helper_in_another_file_is_seen(proj: Path) -> None:
    edit(proj / "base.py", "frame.n * 2", "frame.n * 4")

    assert recomputed(proj) == {"doubled"}


@pytest.mark.parametrize(
    "forge",
    [
        lambda memo: "not json",
        lambda memo: "[]",
        lambda memo: json.dumps({key: [1, 2] for key in memo}),
        lambda memo: json.dumps(
            {
                key: [*entry[:3], "{not json" if " loads " in key else entry[3]]
                for key, entry in memo.items()
            }
        ),
        lambda memo: json.dumps(
            {
                key: [*entry[:3], '{"pd": 1}' if " loads " in key else entry[3]]
                for key, entry in memo.items()
            }
        ),
    ],
    ids=["not-json", "a-list", "short-entries", "loads-not-json", "loads-not-names"],
)
def test_a_memo_that_is_not_as_we_write_it_is_ignored(
    proj: Path, forge: Callable[[dict[str, list[object]]], str]
) -> None:
    memo = proj / MEMO
    expected = without_memo(loaded(proj))
    memo.write_text(forge(json.loads(memo.read_text())))

    project = loaded(proj)

    assert project.codes == expected
    assert recomputed(proj) == set()


def test_the_memo_is_written_only_when_something_new_was_learnt(proj: Path) -> None:
    memo = proj / MEMO
    before = memo.stat()
    loaded(proj)  # every file as it was: all remembered

    assert memo.stat().st_mtime_ns == before.st_mtime_ns


# -- the syntax-tree hash, made faster, is the same hash -------------------------------


def _python_files() -> list[Path]:
    """Real code of many shapes: VibePiper's own files, these tests, and the standard
    library's ast, dataclasses and asyncio (match statements, try/except*, async, nested
    defs and classes, decorators, docstrings)."""
    import ast
    import asyncio
    import dataclasses

    here = Path(__file__).resolve().parent
    ours = sorted((here.parent / "vibepiper").rglob("*.py")) + sorted(here.glob("*.py"))
    library = [Path(m.__file__ or "") for m in (ast, dataclasses)]
    library += sorted(Path(asyncio.__file__ or "").parent.glob("*.py"))
    return ours + library


def test_the_fast_dump_writes_what_ast_dump_writes() -> None:
    import ast
    import sys

    if sys.version_info >= (3, 13):
        assert fingerprint._dumped is ast.dump  # there, ast.dump itself is used
        return
    nodes = 0
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.stmt | ast.match_case):  # (expressions are inside)
                assert fingerprint._fast_dump(node) == ast.dump(node), (path, node.lineno)
                nodes += 1
    assert nodes > 5_000


def test_dump_strips_what_a_full_walk_strips() -> None:
    """Decorators and docstrings are found where the statements are: the result is what
    stripping them on every node of the tree (ast.walk) gives."""
    import ast

    def by_full_walk(node: ast.AST, defaults: bool) -> str:
        node = ast.parse(ast.unparse(node)).body[0]  # a copy
        if not defaults and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.args.defaults = []
            node.args.kw_defaults = [None] * len(node.args.kw_defaults)
        for child in ast.walk(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                child.decorator_list = []
                body = child.body
                if (
                    body
                    and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)
                ):
                    child.body = body[1:] or [ast.Pass()]
        return ast.dump(node)

    defs = 0
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # (and the defs and classes nested in them)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                before = ast.dump(node)
                for defaults in (True, False):
                    assert fingerprint._dump(node, defaults=defaults) == by_full_walk(
                        node, defaults
                    ), (path, node.lineno)
                assert ast.dump(node) == before  # the tree is given back as it was
                defs += 1
    assert defs > 500


def test_an_edit_dumps_only_the_edited_functions_tree(
    proj: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The syntax-tree hash is also remembered by the function's own text: an edited file
    is parsed again, but only the function whose text changed is hashed again."""
    dumped: list[str] = []
    dump = fingerprint._dump

    def spy(node: object, **kwargs: bool) -> str:
        dumped.append(getattr(node, "name", "?"))
        return dump(node, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fingerprint, "_dump", spy)
    edit(proj / "derived.py", "first.n * FACTOR", "first.n * FACTOR + 0")

    project = loaded(proj)

    assert dumped == ["scaled"]
    assert project.codes == without_memo(project)


def test_a_remembered_tree_hash_that_is_not_one_is_ignored(proj: Path) -> None:
    memo = proj / MEMO
    entries = json.loads(memo.read_text())
    assert any(" tree-text " in key for key in entries)
    forged = {k: [*e[:3], "../x" if " tree-text " in k else e[3]] for k, e in entries.items()}
    memo.write_text(json.dumps(forged))
    edit(proj / "derived.py", "first.n * FACTOR", "first.n * FACTOR + 0")

    project = loaded(proj)

    assert project.codes == without_memo(project)
