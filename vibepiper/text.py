"""Small helpers for the words VibePiper prints."""

from __future__ import annotations


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
