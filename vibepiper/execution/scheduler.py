"""Transitional: the entry points of the old scheduler, on the modules that replaced it
(`run`, `workspace`, `turns`, `reporter`). Removed once every caller has moved."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from vibepiper.execution.executors import Executor
from vibepiper.execution.recorder import new_run_id, run_row
from vibepiper.execution.reporter import Reporter, SilentReporter
from vibepiper.execution.run import RunOptions, materialize
from vibepiper.execution.states import RunResult
from vibepiper.execution.turns import run_turn
from vibepiper.execution.workspace import Workspace, check_pools, plan
from vibepiper.versioning.freshness import Verdict
from vibepiper.versioning.planner import PlanOptions

__all__ = [
    "Reporter",
    "RunResult",
    "Scheduler",
    "SilentReporter",
    "Workspace",
    "check_pools",
    "new_run_id",
    "run_row",
    "run_turn",
]


class Scheduler:
    def __init__(self, workspace: Workspace, reporter: Reporter | None = None) -> None:
        self.ws = workspace
        self.reporter = reporter

    def plan(
        self, names: list[str], *, force: bool = False, whole_graph: bool = False
    ) -> dict[str, Verdict]:
        return plan(self.ws, names, PlanOptions(force, whole_graph)).verdicts()

    def run(
        self,
        names: list[str],
        *,
        force: bool = False,
        fail_fast: bool = False,
        selection: str = "",
        executor: Executor | None = None,
        pools: Mapping[str, int] | None = None,
        cancel: threading.Event | None = None,
        signals: bool = False,
    ) -> RunResult:
        options = RunOptions(force, fail_fast, selection, dict(pools or {}), signals)
        return materialize(
            self.ws, names, options, reporter=self.reporter, executor=executor, cancel=cancel
        )
