"""Freshness: a pure verdict on whether an asset's current data can be reused.

An asset is fresh when its current materialization exists and its file is present, was
made by the same code version from exactly the current data versions of its inputs (for a
source, from the same file bytes), and is younger than `max_age` if one is set.

Why it is not fresh is a tuple of `Reason`s: a kind, the asset it points at (an input, an
asset its checks read) and a detail. Code follows reasons by their fields (`explain`
walks up the graph by `reason.asset`); the words a user reads are rendered from them only
at the edge, by `str(reason)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from vibepiper.units import Unit
from vibepiper.versioning.fingerprint import CodeVersion, describe_changes


@dataclass(slots=True)  # not frozen: a plan makes one per partition, and frozen ones cost 8x
class Current:
    """An asset's current published materialization, with the inputs it was made from
    (treat it as read-only)."""

    asset: str
    materialization_id: str
    code_version: str | None
    data_version: str
    row_count: int | None
    finished_at: datetime
    inputs: dict[str, str | None]
    # what its code version covered: a dict, or its JSON text (read only if needed: the
    # parts explain a changed version, and most versions have not changed)
    code_parts_recorded: dict[str, str] | str = field(default_factory=dict)
    # the state of the latest attempt to compute it, if later (or "cancelled")
    last_attempt: str = "succeeded"
    # the data version of each other asset its checks read when it was last validated
    check_reads: dict[str, str | None] = field(default_factory=dict)
    partition: str = ""  # the partition key ("": the whole asset)

    @property
    def unit(self) -> Unit:
        return Unit(self.asset, self.partition)

    @property
    def code_parts(self) -> dict[str, str]:
        recorded = self.code_parts_recorded
        if isinstance(recorded, str):
            import json

            parts = json.loads(recorded)
            recorded = parts if isinstance(parts, dict) else {}
        return {str(k): str(v) for k, v in recorded.items()}


class Why(StrEnum):
    """The kinds of reason an asset is stale."""

    NEVER = "never_materialized"
    FILE = "stored_file"  # detail: what is wrong with it ("missing", "damaged")
    CODE = "code"  # detail: which part of its code version changed, in words
    SOURCE = "source"  # detail: the source file's path
    NEW_INPUT = "new_input"  # asset: the input
    UPSTREAM_CHANGED = "upstream_changed"  # asset: the input; detail: since when
    UPSTREAM_STALE = "upstream_stale"  # asset: the input; detail: "is stale" / "will be..."
    MAX_AGE = "max_age"  # detail: the age limit and when it was made
    CHECK_READ = "check_read"  # asset: what its checks read; checks; detail: what of it
    LAST_ATTEMPT = "last_attempt"  # detail: the state of the last attempt
    FORCE = "force"
    ERROR = "error"  # it cannot be judged (a source file missing...); detail: the message
    PARTITIONS = "partitions"  # some of its partitions are stale; detail: which, and why


# the `detail` of a stale upstream: seen by a dry run that will recompute it, or not
STALE = "is stale"
WILL_RUN = "will be recomputed"


@dataclass(frozen=True)
class Reason:
    """One reason an asset is stale; `str()` gives it in words a user understands."""

    kind: Why
    asset: str | None = None  # the asset it points at, if any
    detail: str = ""
    checks: tuple[str, ...] = ()  # for CHECK_READ: the checks that read `asset`

    def __str__(self) -> str:
        if self.kind is Why.CHECK_READ:
            checks, verb = ", ".join(self.checks), "reads" if len(self.checks) == 1 else "read"
            noun = "check" if len(self.checks) == 1 else "checks"
            return f"{noun} {checks} {verb} {self.asset}, which {self.detail}"
        return _WORDS[self.kind].format(asset=self.asset, detail=self.detail)

    @property
    def upstream(self) -> str | None:
        """The other asset this reason blames (an input, an asset its checks read)."""
        return self.asset if self.kind in _BLAMING else None


_BLAMING = (Why.UPSTREAM_CHANGED, Why.UPSTREAM_STALE, Why.CHECK_READ)
# Each kind of reason in words (CHECK_READ, which names one check or several, aside).
_WORDS = {
    Why.NEVER: "never materialized",
    Why.FILE: "its stored file is {detail}",
    Why.CODE: "{detail}",  # already in words
    Why.SOURCE: "source {detail} changed",
    Why.NEW_INPUT: "new input {asset}",
    Why.UPSTREAM_CHANGED: "upstream {asset} changed since {detail}",
    Why.UPSTREAM_STALE: "upstream {asset} {detail}",
    Why.MAX_AGE: "older than max_age {detail}",
    Why.LAST_ATTEMPT: "the last attempt {detail}",
    Why.FORCE: "--force",
    Why.ERROR: "{detail}",  # already in words
    Why.PARTITIONS: "{detail}",  # already in words
}
# The detail of a LAST_ATTEMPT, by the state of that attempt.
LAST_CHECKS_FAILED = "failed its checks"
_LAST_ATTEMPT = {
    "failed": "failed",
    "check_failed": LAST_CHECKS_FAILED,
    "cancelled": "was cancelled",
}


@dataclass(frozen=True)
class Verdict:
    """Fresh or not, with every reason it is stale.

    `recheck`: stale only because data its checks read changed; its own data stands, so
    it is validated again rather than recomputed.
    """

    fresh: bool
    causes: tuple[Reason, ...] = ()
    recheck: bool = False

    @classmethod
    def of(cls, causes: Iterable[Reason]) -> Verdict:
        causes = tuple(causes)
        return cls(not causes, causes, recheck_only(causes))

    @property
    def reasons(self) -> tuple[str, ...]:
        """The reasons in words."""
        return tuple(str(c) for c in self.causes)


def recheck_only(causes: Iterable[Reason]) -> bool:
    """Whether only data that checks read changed (and perhaps the last validation
    failed): the asset's own data stands, and is validated again rather than recomputed."""
    causes = tuple(causes)
    return any(c.kind is Why.CHECK_READ for c in causes) and all(
        c.kind is Why.CHECK_READ or (c.kind is Why.LAST_ATTEMPT and c.detail == LAST_CHECKS_FAILED)
        for c in causes
    )


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
        return Verdict.of([Reason(Why.NEVER)])
    causes: list[Reason] = []
    if file_problem:
        causes.append(Reason(Why.FILE, detail=file_problem))
    if current.code_version != code.version:
        causes += [
            Reason(Why.CODE, detail=d) for d in describe_changes(current.code_parts, code.parts)
        ]
    if source is not None and source[1] != current.data_version:
        causes.append(Reason(Why.SOURCE, detail=source[0]))
    since = f"{current.finished_at:%Y-%m-%d %H:%M:%S} UTC"
    for name, version in inputs.items():
        if name not in current.inputs:
            causes.append(Reason(Why.NEW_INPUT, name))
        elif version != current.inputs[name]:
            causes.append(Reason(Why.UPSTREAM_CHANGED, name, since))
    if max_age is not None and now is not None and now - current.finished_at > max_age:
        causes.append(Reason(Why.MAX_AGE, detail=f"({_age(max_age)}), made {since}"))
    for other, (version, checks) in (check_reads or {}).items():
        if other in inputs:
            continue  # a change recomputes the asset anyway
        if other not in current.check_reads:
            causes.append(Reason(Why.CHECK_READ, other, "it was not validated against", checks))
        elif version != current.check_reads[other]:
            causes.append(Reason(Why.CHECK_READ, other, "changed", checks))
    if current.last_attempt in _LAST_ATTEMPT:
        causes.append(Reason(Why.LAST_ATTEMPT, detail=_LAST_ATTEMPT[current.last_attempt]))
    return Verdict.of(causes)


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
