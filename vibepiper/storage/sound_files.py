"""Stored files found sound, remembered by their identity (size, mtime, inode), so that a
run that changes nothing does not open thousands of files to look at them again.

The same trust as for source files (versioning/source_cache.py): a file replaced, grown,
truncated or rewritten changes its size, mtime or inode, and is looked at again. What the
look cannot see anyway (bytes flipped inside a file) is caught by the page checksums when
the file is read, and by `vibepiper doctor`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vibepiper.versioning.source_cache import Identity, IdentityMemo, identity_of

SOUND = "sound"


class SoundFiles:
    """Which files under `root` were found sound, by path relative to it."""

    def __init__(self, path: Path, root: Path) -> None:
        self.memo = IdentityMemo(path)
        self.root = root

    def identity(self, file: Path | str) -> Identity | None:
        """The file's identity, or None if it is not a regular file (missing, a link...)."""
        try:
            found = os.lstat(file)
        except OSError:
            return None
        return identity_of(found) if stat.S_ISREG(found.st_mode) else None

    def known_key(self, key: str, identity: Identity) -> bool:
        """Whether the file at `key` (its path relative to the root, with `/`) was found
        sound with this very identity."""
        return self.memo.get(key, identity) == SOUND

    def remember_key(self, key: str, identity: Identity) -> None:
        """The file at `key`, of this identity (taken before it was looked at), is sound."""
        self.memo.put(key, identity, SOUND)

    def save(self) -> None:
        self.memo.save()
