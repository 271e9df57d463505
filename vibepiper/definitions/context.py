"""`Context`: what an asset function may ask of the run that computes it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vibepiper.definitions.partitions import Partition


@dataclass(frozen=True)
class Context:
    """Handed to an asset whose function has a `context` parameter."""

    run_id: str
    asset: str
    project_dir: Path
    config: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    # the partition being computed (SPEC §7); None for an unpartitioned asset
    partition: Partition | None = None

    @property
    def log(self) -> logging.Logger:
        """A logger for this asset; its lines are shown with the asset's progress."""
        return logging.getLogger(f"vibepiper.asset.{self.asset}")
