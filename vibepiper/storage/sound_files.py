"""Stored files found sound, remembered by their identity (size, mtime, inode), so that a
run that changes nothing does not open thousands of files to look at them again.

The same trust as for source files (versioning/source_cache.py): a file replaced, grown,
truncated or rewritten changes its size, mtime or inode, and is looked at again. What the
look cannot see anyway (bytes flipped inside a file) is caught by the page checksums when
the file is read, and by `vibepiper doctor`.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

Identity = tuple[int, int, int]  # size, mtime in nanoseconds, inode

MAX_ENTRIES = 200_000  # beyond this, the files not looked at this time are forgotten


class SoundFiles:
    """A small JSON file of relative path -> [size, mtime_ns, inode] under the store."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path = path
        self.root = root
        self._entries: dict[str, list[int]] | None = None
        self._seen: set[str] = set()
        self._changed = False

    def identity(self, file: Path) -> Identity | None:
        """The file's identity, or None if it is not a regular file (missing, a link...)."""
        try:
            found = os.lstat(file)
        except OSError:
            return None
        if not stat.S_ISREG(found.st_mode):
            return None
        return found.st_size, found.st_mtime_ns, found.st_ino

    def known(self, file: Path, identity: Identity) -> bool:
        """Whether `file` was found sound with this very identity."""
        key = self._key(file)
        self._seen.add(key)
        return self._load().get(key) == list(identity)

    def remember(self, file: Path, identity: Identity) -> None:
        """`file`, of this identity (taken before it was looked at), is sound."""
        key = self._key(file)
        self._seen.add(key)
        self._load()[key] = list(identity)
        self._changed = True

    def save(self) -> None:
        """Write what is remembered (atomically), if anything changed; a store that
        cannot be written (a read-only home) just remembers nothing."""
        if not self._changed or self._entries is None:
            return
        entries = self._entries
        if len(entries) > MAX_ENTRIES:
            entries = {k: v for k, v in entries.items() if k in self._seen}
        temp = self.path.with_name(f"{self.path.name}.{os.getpid()}.part")
        try:
            temp.write_text(json.dumps(entries, separators=(",", ":")))
            os.replace(temp, self.path)
        except OSError:
            temp.unlink(missing_ok=True)
        self._changed = False

    def _key(self, file: Path) -> str:
        return file.relative_to(self.root).as_posix()

    def _load(self) -> dict[str, list[int]]:
        """The remembered files; anything in the file that is not [int, int, int] under a
        string is ignored (it is input like any other file on disk)."""
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
                and len(v) == 3
                and all(type(x) is int for x in v)
            }
        return self._entries
