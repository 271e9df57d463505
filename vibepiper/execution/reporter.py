"""What a run tells about itself as it goes (rendered by `reporting.console`, sent as
OpenLineage events by `reporting.openlineage`)."""

from __future__ import annotations

from typing import Protocol

from vibepiper.execution.states import AssetResult, RunResult


class Reporter(Protocol):
    """Told what happens during a run; renders it (see `reporting.console`)."""

    def run_started(self, run_id: str, names: list[str]) -> None: ...
    def asset_started(self, name: str, state: str) -> None: ...
    def asset_finished(self, result: AssetResult) -> None: ...
    def run_finished(self, run: RunResult) -> None: ...  # after the run is recorded


class SilentReporter:
    def run_started(self, run_id: str, names: list[str]) -> None:
        pass

    def asset_started(self, name: str, state: str) -> None:
        pass

    def asset_finished(self, result: AssetResult) -> None:
        pass

    def run_finished(self, run: RunResult) -> None:
        pass
