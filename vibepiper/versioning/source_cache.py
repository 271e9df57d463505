"""Hashes of source files, remembered by (size, mtime, inode) so an unchanged large file
is not read again on every run."""

from __future__ import annotations

import json
import os
from pathlib import Path

from vibepiper.versioning.data_version import file_version


class SourceHashes:
    """A small JSON file of path -> [size, mtime_ns, inode, hash] under the project home."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, list[object]] | None = None
        self._changed = False

    def version(self, file: Path) -> str:
        """The hash of `file`'s bytes; re-read only when its size, mtime or inode changed.

        Raises FileNotFoundError / OSError as reading the file would.
        """
        stat = os.stat(file)
        key = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        entries = self._load()
        entry = entries.get(str(file))
        if entry is not None and entry[:3] == key:
            return str(entry[3])
        digest = file_version(file)
        entries[str(file)] = [*key, digest]
        self._changed = True
        return digest

    def save(self) -> None:
        """Write the remembered hashes (atomically), if any changed."""
        if not self._changed or self._entries is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temp.write_text(json.dumps(self._entries, sort_keys=True))
        os.replace(temp, self.path)
        self._changed = False

    def _load(self) -> dict[str, list[object]]:
        if self._entries is None:
            try:
                loaded = json.loads(self.path.read_text())
                self._entries = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self._entries = {}
        return self._entries
