"""Small helpers for the words VibePiper prints."""

from __future__ import annotations

from collections.abc import Iterable


def plural(count: int, word: str) -> str:
    """'1 row', '3 rows'."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name if it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def quoted(text: str) -> str:
    """'name' for a message; the repr when it holds a newline or another control or
    invisible character, so that one error stays one line and shows what is there."""
    return f"'{text}'" if text.isprintable() else repr(text)


def units_counted(labels: Iterable[str]) -> str:
    """'3 assets', '90 partitions' or '1 asset and 90 partitions': units of work by their
    labels (a partition's is `asset[key]`)."""
    labels = list(labels)
    parts = sum(1 for label in labels if label.endswith("]"))
    assets = plural(len(labels) - parts, "asset")
    if not parts:
        return assets
    partitions = plural(parts, "partition")
    return partitions if parts == len(labels) else f"{assets} and {partitions}"
