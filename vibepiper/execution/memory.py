"""Outputs of a run kept in memory until their last consumer in the run is done."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from vibepiper.storage.store import Store
from vibepiper.units import Unit

if TYPE_CHECKING:
    import pandas as pd


class FrameCache:
    """The frames this run made, each kept while a unit of the run that reads it waits.

    `consumers`: each unit -> how many units of the run read it."""

    def __init__(self, store: Store, consumers: Mapping[Unit, int]) -> None:
        self.store = store
        self.waiting = dict(consumers)
        self.frames: dict[Unit, pd.DataFrame] = {}

    def keep(self, unit: Unit, frame: pd.DataFrame) -> None:
        if self.waiting.get(unit):
            self.frames[unit] = frame

    def get(self, unit: Unit, version: str) -> pd.DataFrame:
        """The data of `unit` at `version`: from memory if this run made it, else the store.

        A shallow copy: under pandas' copy-on-write, a consumer that modifies its input
        cannot change what another consumer receives.
        """
        frame = self.frames.get(unit)
        if frame is None:
            frame = self.store.read(unit, version)
        return frame.copy(deep=False)

    def done(self, read: Iterable[Unit]) -> None:
        """A unit that read `read` is done with them."""
        for up in read:
            if up in self.waiting:
                self.waiting[up] -= 1
                if self.waiting[up] <= 0:
                    self.frames.pop(up, None)
