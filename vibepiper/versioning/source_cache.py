"""Facts about files remembered by their identity (size, mtime, inode), so that a file
that did not change is not read again: the hashes of source files here, and which stored
files were found sound (storage/sound_files.py). A file replaced, grown, truncated or
rewritten changes its identity and is read again."""

from __future__ import annotations

import ast
import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from vibepiper.versioning.data_version import file_version

Identity = tuple[int, int, int]  # size, mtime in nanoseconds, inode

MAX_ENTRIES = 200_000  # beyond this, the files not asked about this time are forgotten


def identity_of(found: os.stat_result) -> Identity:
    return found.st_size, found.st_mtime_ns, found.st_ino


def file_identity(path: Path) -> Identity | None:
    """`path`'s identity now, or None if it cannot be looked at (gone, say)."""
    try:
        return identity_of(os.stat(path))
    except OSError:
        return None


class Identities:
    """The identities of some files when taken; `changed()` tells whether any has moved
    since (a stat of each: what `serve` and the UI look at to know they must look again)."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.paths = list(paths)
        self.taken = [file_identity(p) for p in self.paths]

    def changed(self) -> bool:
        return any(file_identity(p) != t for p, t in zip(self.paths, self.taken, strict=True))


_TREES: dict[tuple[str, Identity], ast.Module | None] = {}
_LINES: dict[tuple[str, Identity], list[bytes]] = {}  # the bytes each tree was parsed from
_KEPT_TREES = 32


def forget_trees() -> None:
    """Drop the parsed files (a 400-function module's tree holds tens of MB)."""
    _TREES.clear()
    _LINES.clear()


def statements(node: ast.AST) -> Iterator[ast.AST]:
    """`node` and the statements (and handlers, match cases) inside it, at any depth:
    where a def, a class or an import can be (expressions hold none; a lambda is no def)."""
    stack = [node]
    while stack:
        here = stack.pop()
        yield here
        for name in _STATEMENT_LISTS:
            children = getattr(here, name, None)
            if isinstance(children, list):
                stack.extend(c for c in children if isinstance(c, STATEMENT_KINDS))


_STATEMENT_LISTS = ("body", "orelse", "finalbody", "handlers", "cases")
STATEMENT_KINDS = (ast.stmt, ast.excepthandler, ast.match_case)


def syntax_tree(filename: str) -> ast.Module | None:
    """The parsed file (None if it cannot be read or parsed), parsed once while the file
    keeps its identity, until `forget_trees`: the fingerprints and the import graph of one
    load share it."""
    return parsed(filename)[0]


def parsed(filename: str) -> tuple[ast.Module | None, list[bytes]]:
    """`syntax_tree(filename)`, and the lines of the very bytes it was parsed from (a
    node's `lineno`..`end_lineno` there are its source text)."""
    try:
        key = (filename, identity_of(os.stat(filename)))
    except (OSError, ValueError):
        return None, []
    if key in _TREES:
        return _TREES[key], _LINES.get(key, [])
    try:
        data = Path(filename).read_bytes()
        tree: ast.Module | None = ast.parse(data)
    except (OSError, SyntaxError, ValueError):
        tree, data = None, b""
    if len(_TREES) >= _KEPT_TREES:
        forget_trees()
    _TREES[key] = tree
    _LINES[key] = data.splitlines()
    return tree, _LINES[key]


class IdentityMemo:
    """A small JSON file of key -> [size, mtime_ns, inode, value], written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, list[object]] | None = None
        self._asked: set[str] = set()
        self._changed = False

    def get(self, key: str, identity: Identity) -> str | None:
        """The value remembered for `key` at this very identity, if any."""
        self._asked.add(key)
        entry = self._load().get(key)
        return str(entry[3]) if entry is not None and tuple(entry[:3]) == identity else None

    def put(self, key: str, identity: Identity, value: str) -> None:
        self._asked.add(key)
        self._load()[key] = [*identity, value]
        self._changed = True

    def save(self) -> None:
        """Write what is remembered (atomically), if anything changed; a home that cannot
        be written (read-only) just remembers nothing."""
        if not self._changed or self._entries is None:
            return
        entries = self._entries
        if len(entries) > MAX_ENTRIES:
            entries = {k: v for k, v in entries.items() if k in self._asked}
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temp.write_text(json.dumps(entries))
            os.replace(temp, self.path)
        except OSError:
            with contextlib.suppress(OSError):  # e.g. the home is a file: nothing was made
                temp.unlink(missing_ok=True)
        self._changed = False

    def _load(self) -> dict[str, list[object]]:
        """The remembered entries; anything in the file that is not [int, int, int, str]
        under a string is ignored (it is input like any other file on disk)."""
        if self._entries is None:
            try:
                loaded = json.loads(self.path.read_text())
            except (OSError, ValueError):
                loaded = {}
            self._entries = {
                k: v
                for k, v in (loaded.items() if isinstance(loaded, dict) else ())
                if isinstance(k, str)
                and isinstance(v, list)
                and len(v) == 4
                and all(type(x) is int for x in v[:3])
                and isinstance(v[3], str)
            }
        return self._entries


class SourceHashes:
    """The hashes of source files, under the project home."""

    def __init__(self, path: Path) -> None:
        self.memo = IdentityMemo(path)

    def version(self, file: Path) -> str:
        """The hash of `file`'s bytes; re-read only when its size, mtime or inode changed.

        Raises FileNotFoundError / OSError as reading the file would.
        """
        identity = identity_of(os.stat(file))
        known = self.memo.get(str(file), identity)
        if known is not None:
            return known
        digest = file_version(file)
        self.memo.put(str(file), identity, digest)
        return digest

    def save(self) -> None:
        self.memo.save()
