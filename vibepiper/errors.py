"""One exception tree for VibePiper.

Every error names its culprit (an asset, a file, an option), says how to fix it, and
carries the exit code the CLI returns for it. Exceptions pickle cleanly (their
constructor arguments are their state), so they survive a trip across processes.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130  # Ctrl-C or SIGTERM stopped a run (128 + SIGINT)


class VibePiperError(Exception):
    """Base of every error VibePiper raises on purpose."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class UsageError(VibePiperError):
    """The user asked for something that cannot be done as asked (exit 2)."""

    exit_code = EXIT_USAGE


class DefinitionError(UsageError):
    """An asset or check is defined wrongly: bad name, unknown parameter, cycle..."""


class ProjectLoadError(UsageError):
    """The project (its pyproject.toml or one of its asset modules) cannot be loaded."""


class SelectionError(UsageError):
    """A selector names nothing that exists, or cannot be parsed."""


class CatalogError(VibePiperError):
    """The catalog cannot be opened or is not one we can use."""


class CatalogBusyError(CatalogError):
    """Another process held the catalog lock for longer than we were willing to wait."""


class StoreError(VibePiperError):
    """A file in the store is missing, unreadable or corrupt."""


class AssetNotMaterializedError(UsageError):
    """The data asked for was never materialized (or that version does not exist)."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' suffix naming the closest candidate, or ''."""
    import difflib

    names = sorted(candidates)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
