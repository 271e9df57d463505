"""The states an asset passes through in a run (SPEC §3), and what each one means."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


class State(StrEnum):
    """An asset's state in a run; equal to (and stored, printed, serialised as) its value."""

    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    VALIDATING = "validating"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CHECK_FAILED = "check_failed"
    BLOCKED = "blocked"
    SKIPPED = "skipped"


PENDING = State.PENDING
RUNNING = State.RUNNING
RETRYING = State.RETRYING
VALIDATING = State.VALIDATING
SUCCEEDED = State.SUCCEEDED
FAILED = State.FAILED
CHECK_FAILED = State.CHECK_FAILED
BLOCKED = State.BLOCKED
SKIPPED = State.SKIPPED

FINAL_STATES = (SUCCEEDED, FAILED, CHECK_FAILED, BLOCKED, SKIPPED)
BAD_STATES = (FAILED, CHECK_FAILED, BLOCKED)  # they make a run (and the exit code) fail
BLOCKING_STATES = (FAILED, CHECK_FAILED, BLOCKED)  # downstream of these is blocked

RunStatus = Literal["succeeded", "failed", "cancelled"]  # `runs.status` of a finished run


@dataclass(frozen=True)
class AssetResult:
    """How one asset ended in a run."""

    asset: str
    state: State
    materialization_id: str = ""
    data_version: str | None = None
    code_version: str | None = None
    code_parts: dict[str, str] = field(default_factory=dict)  # what the code version covers
    row_count: int | None = None
    seconds: float = 0.0
    attempts: int = 0
    message: str = ""  # one line: the error, the block, or why it was (not) skipped
    error: str | None = None  # the full traceback of a failure
    reasons: tuple[str, ...] = ()  # why it was stale (and so recomputed)
    checks: tuple[Any, ...] = field(default=())
    inputs: dict[str, str | None] = field(default_factory=dict)  # input -> data version used
    check_reads: dict[str, str] = field(default_factory=dict)  # what its checks read -> version
    revalidated: bool = False  # not recomputed: its current data validated again
    quarantined: int | None = None  # rows removed by quarantine
    columns: tuple[tuple[str, str], ...] = ()  # the output's columns and their dtypes
    # a SQL asset's column lineage: (column, upstream asset, upstream column)
    column_lineage: tuple[tuple[str, str | None, str | None], ...] = ()
    logs: tuple[Any, ...] = ()  # the LogLines it logged while computing
    started_at: float | None = None  # time.time() when its computation started
    cancelled: bool = False  # stopped by the run's cancellation (recorded as failed)
    partition: str = ""  # the partition key (SPEC §7; "": the whole asset)
    blocked_by: str = ""  # for a blocked unit: the failed unit upstream that blocked it

    @property
    def label(self) -> str:
        """The asset, or `asset[key]` for a partition."""
        return f"{self.asset}[{self.partition}]" if self.partition else self.asset

    @property
    def warnings(self) -> list[Any]:
        return [c for c in self.checks if not c.passed and not c.blocking]

    @property
    def failed_checks(self) -> list[Any]:
        return [c for c in self.checks if c.blocking]

    @property
    def ok(self) -> bool:
        return self.state not in BAD_STATES


@dataclass
class RunResult:
    """What a run did: each selected asset's final result, in dependency order."""

    run_id: str
    results: dict[str, AssetResult] = field(default_factory=dict)
    dry_run: bool = False
    cancelled: bool = False  # stopped by Ctrl-C / SIGTERM

    @property
    def states(self) -> dict[str, State]:
        return {name: r.state for name, r in self.results.items()}

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results.values())

    @property
    def status(self) -> RunStatus:
        if self.cancelled:
            return "cancelled"
        return "succeeded" if self.ok else "failed"
