"""Freshness: a pure verdict on whether an asset's current data can be reused.

An asset is fresh when its current materialization exists and its file is present, was
made by the same code version from exactly the current data versions of its inputs (for a
source, from the same file bytes), and is younger than `max_age` if one is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from vibepiper.versioning.fingerprint import CodeVersion, describe_changes


@dataclass(frozen=True)
class Current:
    """An asset's current published materialization, with the inputs it was made from."""

    asset: str
    materialization_id: str
    code_version: str | None
    data_version: str
    row_count: int | None
    finished_at: datetime
    inputs: dict[str, str | None]
    code_parts: dict[str, str] = field(default_factory=dict)
    last_attempt: str = "succeeded"  # the state of the latest attempt to compute it, if later


@dataclass(frozen=True)
class Verdict:
    """Fresh or not, with every reason it is stale, in words a user understands."""

    fresh: bool
    reasons: tuple[str, ...] = ()


def judge(
    current: Current | None,
    *,
    code: CodeVersion,
    inputs: Mapping[str, str | None],
    file_problem: str = "",
    source: tuple[str, str | None] | None = None,
    max_age: timedelta | None = None,
    now: datetime | None = None,
) -> Verdict:
    """The verdict for one asset.

    `inputs` maps each data input to its current data version (None: never made);
    `source` is (path, current file hash) for a source file asset; `file_problem` says
    what is wrong with its stored file ("missing", "damaged"), if anything.
    """
    if current is None:
        return Verdict(False, ("never materialized",))
    reasons: list[str] = []
    if file_problem:
        reasons.append(f"its stored file is {file_problem}")
    if current.code_version != code.version:
        reasons += describe_changes(current.code_parts, code.parts)
    if source is not None and source[1] != current.data_version:
        reasons.append(f"source {source[0]} changed")
    since = f"{current.finished_at:%Y-%m-%d %H:%M:%S} UTC"
    for name, version in inputs.items():
        if name not in current.inputs:
            reasons.append(f"new input {name}")
        elif version != current.inputs[name]:
            reasons.append(f"upstream {name} changed since {since}")
    if max_age is not None and now is not None and now - current.finished_at > max_age:
        reasons.append(f"older than max_age ({_age(max_age)}), made {since}")
    if current.last_attempt in ("failed", "check_failed"):
        failed = "failed its checks" if current.last_attempt == "check_failed" else "failed"
        reasons.append(f"the last attempt {failed}")
    return Verdict(not reasons, tuple(reasons))


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
