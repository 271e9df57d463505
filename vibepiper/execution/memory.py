"""Outputs of a run kept in memory until their last consumer in the run is done."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from vibepiper.graph.graph import Graph
from vibepiper.storage.store import Store
from vibepiper.units import Unit

if TYPE_CHECKING:
    import pandas as pd


class FrameCache:
    """The frames this run made, each kept while a consumer in the run still waits."""

    def __init__(self, graph: Graph, store: Store, names: Iterable[str]) -> None:
        self.graph = graph
        self.store = store
        selected = set(names)
        self.waiting = {
            n: sum(1 for d in graph.downstream[n] if d in selected) for n in graph.assets
        }
        self.frames: dict[str, pd.DataFrame] = {}

    def keep(self, name: str, frame: pd.DataFrame) -> None:
        if self.waiting.get(name):
            self.frames[name] = frame

    def get(self, name: str, version: str) -> pd.DataFrame:
        """The data of `name` at `version`: from memory if this run made it, else the store.

        A shallow copy: under pandas' copy-on-write, a consumer that modifies its input
        cannot change what another consumer receives.
        """
        frame = self.frames.get(name)
        if frame is None:
            frame = self.store.read(Unit(name), version)
        return frame.copy(deep=False)

    def done(self, name: str) -> None:
        for up in self.graph.upstream[name]:
            if up in self.waiting:
                self.waiting[up] -= 1
                if self.waiting[up] <= 0:
                    self.frames.pop(up, None)
