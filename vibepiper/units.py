"""The unit of work: one asset, or one partition of an asset.

Everything that plans, runs, stores or records work keys it by a `Unit` rather than by an
asset's name: the planner's decisions, the run loop, the store and the catalog's view of
current data. Partitions are not built yet, so every unit's partition is "" (the whole
asset); when they are, a partitioned asset has one unit per partition key, and no layer
needs a new kind of key.
"""

from __future__ import annotations

from typing import NamedTuple


class Unit(NamedTuple):
    """An asset (`partition` ""), or one partition of it."""

    asset: str
    partition: str = ""

    def __str__(self) -> str:
        return f"{self.asset}[{self.partition}]" if self.partition else self.asset


def whole(asset: str) -> Unit:
    """The unit of an unpartitioned asset."""
    return Unit(asset)
