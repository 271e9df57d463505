"""A unit the run decided to compute: its job, and how what came back becomes a result."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vibepiper.execution import states
from vibepiper.execution.logs import LogLine
from vibepiper.execution.recorder import REVALIDATED
from vibepiper.execution.states import AssetResult
from vibepiper.execution.task import Job, TaskOutcome
from vibepiper.text import plural
from vibepiper.versioning.fingerprint import CodeVersion


@dataclass
class Launch:
    """A unit the run decided to compute, and when it started."""

    job: Job
    code: CodeVersion
    versions: dict[str, str | None]  # each input's data version it reads
    reasons: tuple[str, ...]  # why it is computed, in words
    lines: list[LogLine] = field(default_factory=list)  # what it has logged so far
    shown: int = 0  # how many of them were recorded when it timed out
    started: float = 0.0  # time.monotonic() when it was handed to the executor
    started_at: float = 0.0  # time.time(), the same moment

    def result(self, outcome: TaskOutcome, check_reads: Mapping[str, Any]) -> AssetResult:
        """How it ended, from what its task handed back: failed, its output rejected by
        its checks, or succeeded (to be published). `check_reads`: the other assets its
        checks read."""
        job = self.job
        common: dict[str, Any] = {
            "code_version": self.code.version,
            "code_parts": self.code.parts,
            "seconds": time.monotonic() - self.started,
            "started_at": self.started_at,
            "attempts": outcome.attempts,
            "reasons": self.reasons,
            "inputs": dict(self.versions),
            "checks": outcome.checks,
            "logs": tuple(outcome.logs),
            "quarantined": outcome.quarantined,
            "check_reads": {o: job.versions[o] for o in check_reads if o in job.versions},
            "revalidated": job.revalidate is not None,
            "partition": job.partition,
        }
        name, mid = job.asset, job.materialization_id
        if outcome.staged is None and not outcome.unchanged:
            return AssetResult(
                name, states.FAILED, mid, message=outcome.message, error=outcome.error, **common
            )
        common.update(
            data_version=outcome.data_version,
            row_count=outcome.row_count,
            columns=outcome.columns,
            column_lineage=outcome.column_lineage,
        )
        if outcome.rejected:
            blocking = [c for c in outcome.checks if c.blocking]
            message = outcome.check_error or _failed_checks(blocking)
            return AssetResult(name, states.CHECK_FAILED, mid, message=message, **common)
        message = ", ".join(self.reasons)
        if job.revalidate is not None:
            message = REVALIDATED + message
        return AssetResult(name, states.SUCCEEDED, mid, message=message, **common)

    def stopped(
        self,
        message: str,
        logs: Iterable[Any] = (),
        attempts: int = 0,
        *,
        cancelled: bool = False,
    ) -> AssetResult:
        """It failed without a result of its own: timed out, cancelled."""
        return AssetResult(
            self.job.asset,
            states.FAILED,
            self.job.materialization_id,
            code_version=self.code.version,
            code_parts=self.code.parts,
            seconds=time.monotonic() - self.started,
            started_at=self.started_at,
            reasons=self.reasons,
            inputs=dict(self.versions),
            message=message,
            error=message,
            logs=tuple(logs),
            attempts=attempts,
            cancelled=cancelled,
            partition=self.job.partition,
        )


def _failed_checks(outcomes: list[Any]) -> str:
    parts = [
        f"{o.name} ({plural(o.failing_rows, 'row')})" if o.failing_rows else o.name
        for o in outcomes
    ]
    return "failed checks: " + ", ".join(parts)
