"""Every asset's verdict, last state and last check results, judged once for many
requests: the UI serves the latest judgement and makes the next one in the background
when the catalog, a definition file or a source file changed (a stat of each), or when it
is older than REFRESH seconds (max_age passing, a stored file removed by hand). So a page
never waits for a judgement of thousands of assets, and what it shows is a moment old."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vibepiper.catalog import reads
from vibepiper.versioning.source_cache import Identities

if TYPE_CHECKING:
    from vibepiper.project import Project
    from vibepiper.versioning.freshness import Verdict

REFRESH = 30.0  # seconds: a judgement older than this is made again (in the background)


@dataclass(frozen=True)
class Judgement:
    verdicts: dict[str, Verdict]
    states: dict[str, str]  # asset -> the state of its latest materialization
    check_results: list[dict[str, Any]]  # each check's latest result


def judge(project: Project) -> Judgement:
    return Judgement(
        project.status(),
        reads.last_states(project.catalog),
        reads.last_check_results(project.catalog),
    )


class Judged:
    """The latest judgement of the project `current()` returns, kept fresh. `current` is
    its own (a Project is not shared between threads), and a page never waits for a
    judgement but the very first."""

    def __init__(self, current: Callable[[], Project]) -> None:
        self.current = current
        self.first = threading.Lock()
        self.refreshing = threading.Lock()  # one judgement in the background at a time
        self.latest: Judgement | None = None
        self.watched = Identities([])  # the files whose change calls for a new judgement
        self.made_at = 0.0

    def get(self) -> Judgement:
        latest = self.latest
        if latest is None:
            with self.first, self.refreshing:
                if self.latest is None:
                    self._make()
            assert self.latest is not None
            return self.latest
        stale = time.monotonic() - self.made_at > REFRESH or self.watched.changed()
        if stale and self.refreshing.acquire(blocking=False):
            threading.Thread(target=self._refresh, daemon=True).start()
        return latest

    def _refresh(self) -> None:
        try:  # if it fails, the next request tries again (and shows the last judgement)
            with contextlib.suppress(Exception):
                self._make()
        finally:
            self.refreshing.release()

    def _make(self) -> None:
        project = self.current()  # (loaded again if its definitions changed)
        catalog = project.catalog.path
        sources = [
            project.root / a.source_path
            for a in project.graph.assets.values()
            if a.source_path is not None
        ]
        self.watched = Identities(
            [
                catalog,
                catalog.with_name(catalog.name + ".wal"),
                *project.definition_files(),
                *sources,
            ]
        )
        self.latest, self.made_at = judge(project), time.monotonic()
