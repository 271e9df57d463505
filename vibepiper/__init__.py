"""VibePiper: data assets with data quality built in.

Importing this package is cheap: it loads no pandas, pyarrow, pandera or DuckDB.
Those are imported where they are needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vibepiper.definitions import expect
from vibepiper.definitions.asset import AssetDef, asset, source_file, sql_asset
from vibepiper.definitions.check import CheckDef, CheckResult, check
from vibepiper.definitions.context import Context
from vibepiper.definitions.expect import register_expectation
from vibepiper.definitions.partitions import (
    Partition,
    Partitions,
    daily,
    hourly,
    monthly,
    static,
    weekly,
)
from vibepiper.definitions.schedule import schedule
from vibepiper.errors import VibePiperError
from vibepiper.version import __version__

if TYPE_CHECKING:
    from vibepiper.execution.states import RunResult
    from vibepiper.project import Project

__all__ = [
    "AssetDef",
    "CheckDef",
    "CheckResult",
    "Context",
    "Partition",
    "Partitions",
    "Project",
    "RunResult",
    "VibePiperError",
    "__version__",
    "asset",
    "check",
    "daily",
    "expect",
    "hourly",
    "monthly",
    "register_expectation",
    "schedule",
    "source_file",
    "sql_asset",
    "static",
    "weekly",
]


def __getattr__(name: str) -> Any:
    if name == "Project":
        from vibepiper.project import Project

        return Project
    if name == "RunResult":
        from vibepiper.execution.states import RunResult

        return RunResult
    raise AttributeError(f"module 'vibepiper' has no attribute {name!r}")
