"""Freshness: a pure verdict on whether an asset's current data can be reused.

An asset is fresh when its current materialization exists and its file is present, was
made by the same code version from exactly the current data versions of its inputs (for a
source, from the same file bytes), and is younger than `max_age` if one is set.
"""

from __future__ import annotations

import re
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
    # the data version of each other asset its checks read when it was last validated
    check_reads: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """Fresh or not, with every reason it is stale, in words a user understands.

    `recheck`: stale only because data its checks read changed; its own data stands, so
    it is validated again rather than recomputed.
    """

    fresh: bool
    reasons: tuple[str, ...] = ()
    recheck: bool = False


def check_read_reason(checks: tuple[str, ...], other: str, what: str = "changed") -> str:
    """ "check X reads airlines, which changed"."""
    if len(checks) == 1:
        return f"check {checks[0]} reads {other}, which {what}"
    return f"checks {', '.join(checks)} read {other}, which {what}"


_CHECK_READ = re.compile(r"^checks? .* reads? (?P<name>[a-z_][a-z0-9_]*), which ")


def check_read_of(reason: str) -> str | None:
    """The asset a `check_read_reason` names ("airlines"), or None for other reasons."""
    match = _CHECK_READ.match(reason)
    return match["name"] if match else None


def is_check_read_reason(reason: str) -> bool:
    return check_read_of(reason) is not None


def judge(
    current: Current | None,
    *,
    code: CodeVersion,
    inputs: Mapping[str, str | None],
    file_problem: str = "",
    source: tuple[str, str | None] | None = None,
    max_age: timedelta | None = None,
    now: datetime | None = None,
    check_reads: Mapping[str, tuple[str | None, tuple[str, ...]]] | None = None,
) -> Verdict:
    """The verdict for one asset.

    `inputs` maps each data input to its current data version (None: never made);
    `check_reads` each other asset its checks read (that is not an input) to its current
    data version and the names of those checks;
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
    for other, (version, checks) in (check_reads or {}).items():
        if other in inputs:
            continue  # a change recomputes the asset anyway
        if other not in current.check_reads:
            reasons.append(check_read_reason(checks, other, "it was not validated against"))
        elif version != current.check_reads[other]:
            reasons.append(check_read_reason(checks, other))
    if current.last_attempt in ("failed", "check_failed"):
        failed = "failed its checks" if current.last_attempt == "check_failed" else "failed"
        reasons.append(f"the last attempt {failed}")
    return Verdict(not reasons, tuple(reasons), recheck_only(reasons))


LAST_CHECKS_FAILED = "the last attempt failed its checks"


def recheck_only(reasons: list[str] | tuple[str, ...]) -> bool:
    """Whether only data that checks read changed (and perhaps the last validation
    failed): the asset's own data stands, and is validated again rather than recomputed."""
    return any(is_check_read_reason(r) for r in reasons) and all(
        is_check_read_reason(r) or r == LAST_CHECKS_FAILED for r in reasons
    )


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
