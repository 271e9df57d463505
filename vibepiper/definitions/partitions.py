"""Partitions (SPEC §7): an asset kept as many slices, each computed, versioned, checked
and judged fresh on its own.

A partitioning is a value: `hourly`, `daily`, `weekly` or `monthly` time windows from a
start (in a time zone), or `static` keys. It knows its keys (those whose window has ended,
up to a moment), checks a key a user typed, turns a `FROM..TO` range into keys, and maps
a key of one partitioning to the keys of another that it reads (time windows that
overlap; the same static key).

Time windows follow the wall clock of their zone: a day is midnight to midnight, so a day
in which the clocks change is 23 or 25 hours long; an hour that does not exist (spring
forward) has no partition, and an hour that happens twice (fall back) is one partition
two hours long. Keys sort as their windows do.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vibepiper.errors import DefinitionError, UsageError

KINDS = ("hourly", "daily", "weekly", "monthly")
FORMATS = {
    "hourly": ("%Y-%m-%d-%H:%M", "YYYY-MM-DD-HH:MM, on the hour"),
    "daily": ("%Y-%m-%d", "a day, YYYY-MM-DD"),
    "weekly": ("%Y-%m-%d", "a week's first day (a Monday), YYYY-MM-DD"),
    "monthly": ("%Y-%m", "a month, YYYY-MM"),
}
MAX_STATIC_KEY = 100
STATIC_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@=+-]*")
RANGE_SEP = ".."


class KeyFormError(UsageError):
    """A key that does not have the form of a partitioning's keys (a day for hours...)."""


@dataclass(frozen=True)
class Partition:
    """The partition an asset function computes (`context.partition`): its key and, for a
    time partition, its half-open window `[start, end)` (aware datetimes in its zone)."""

    key: str
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Partitions:
    """A partitioning: the keys an asset is split into."""

    kind: str  # one of KINDS, or "static"
    start: str = ""  # time kinds: the first day (YYYY-MM-DD) or moment (YYYY-MM-DD HH:MM)
    end: str = ""  # time kinds: no window starts at or after it ("": open-ended)
    tz: str = "UTC"
    static_keys: tuple[str, ...] = ()

    # -- what it is ------------------------------------------------------------------

    @property
    def is_time(self) -> bool:
        return self.kind in KINDS

    @functools.cached_property
    def token(self) -> str:
        """A short text equal for equal partitionings: comparing two is then cheap (a
        static partitioning of thousands of keys is compared for every partition)."""
        import hashlib
        import json

        return hashlib.blake2b(json.dumps(self.as_dict()).encode(), digest_size=16).hexdigest()

    def same_as(self, other: Partitions | None) -> bool:
        return other is not None and (other is self or other.token == self.token)

    @functools.cached_property
    def _positions(self) -> dict[str, int]:
        """Each static key's place in the declared order."""
        return {k: i for i, k in enumerate(self.static_keys)}

    def has(self, key: str) -> bool:
        """Whether `key` is one of the static keys (time keys: use `check_key`)."""
        return key in self._positions

    def describe(self) -> str:
        if not self.is_time:
            return f"static({len(self.static_keys)} keys)"
        end = f", end={self.end}" if self.end else ""
        return f"{self.kind}(start={self.start}{end}, tz={self.tz})"

    def as_dict(self) -> dict[str, Any]:
        if self.is_time:
            return {"kind": self.kind, "start": self.start, "end": self.end, "tz": self.tz}
        return {"kind": "static", "keys": list(self.static_keys)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Partitions:
        """The partitioning `as_dict` gave (read from a snapshot: checked again)."""
        if data["kind"] == "static":
            return static(list(data["keys"]))
        if data["kind"] not in KINDS:
            raise ValueError(f"partitions of kind {data['kind']!r} are not ours")
        return _time(str(data["kind"]), str(data["start"]), str(data["end"]) or None, data["tz"])

    # -- keys ----------------------------------------------------------------------------

    def keys(self, until: datetime | None = None) -> list[str]:
        """Every key, in order; for time partitions those whose window has ended by
        `until` (default: now; naive means UTC), up to `end`."""
        return list(self._keys(until))

    def _keys(self, until: datetime | None = None) -> Sequence[str]:
        """`keys`, as the cached tuple itself (no copy)."""
        if not self.is_time:
            return self.static_keys
        from vibepiper import clock

        moment = until or clock.now()
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return _time_keys(self.kind, self.start, self.end, self.tz, _minute_floor(moment))

    def all_keys(self) -> Sequence[str]:
        """Every key ever (time partitions: up to `end`, else up to now), not copied: a
        mapping from thousands of partitions asks for them each time."""
        if self.is_time and self.end:
            return _time_keys(self.kind, self.start, self.end, self.tz, None)
        return self._keys()

    def order(self, key: str) -> tuple[int, str]:
        """A sort key: static keys in declared order, time keys as their windows."""
        if self.is_time:
            return (0, key)
        return (self._positions.get(key, len(self.static_keys)), key)

    def window(self, key: str) -> tuple[datetime, datetime] | None:
        """The half-open window `[start, end)` of a time key (aware, in its zone): from
        the key's wall-clock start to the next key's (where the clock skips a window's
        start, where it lands)."""
        if not self.is_time:
            return None
        zone = ZoneInfo(self.tz)
        local = datetime.strptime(key, FORMATS[self.kind][0])
        following = _step(self.kind, local)
        while self.kind == "hourly" and not _exists(following, zone):
            following += timedelta(hours=1)
        return _resolved(local, zone), _resolved(following, zone)

    def partition(self, key: str) -> Partition:
        window = self.window(key)
        return Partition(key, *window) if window else Partition(key)

    def check_key(self, key: str, owner: str) -> str:
        """`key` if it is one of this partitioning's keys, else a UsageError naming `owner`
        (e.g. "asset 'events'") and the form keys take."""
        if not isinstance(key, str) or not key:
            raise UsageError(f"{owner}: an empty partition key", self._form())
        if not self.is_time:
            if key not in self.static_keys:
                from vibepiper.errors import did_you_mean

                raise UsageError(
                    f"{owner} has no partition {key!r}{did_you_mean(key, self.static_keys)}",
                    self._form(),
                )
            return key
        fmt, _ = FORMATS[self.kind]
        try:
            parsed = datetime.strptime(key, fmt)
        except ValueError:
            parsed = None
        if parsed is None or parsed.strftime(fmt) != key:
            raise KeyFormError(f"{owner}: {key!r} is not a partition key", self._form())
        if self.kind == "weekly" and parsed.weekday() != 0:
            raise UsageError(f"{owner}: {key!r} is not a Monday", self._form())
        if self.kind == "hourly" and parsed.minute != 0:
            raise UsageError(f"{owner}: {key!r} is not on the hour", self._form())
        first = _first_key(self.kind, self.start, ZoneInfo(self.tz))
        if key < first:
            raise UsageError(
                f"{owner}: partition {key} is before its first partition {first}",
                f"partitions start at {self.start}",
            )
        if self.end and key >= _first_key(self.kind, self.end, ZoneInfo(self.tz)):
            raise UsageError(
                f"{owner}: partition {key} is after its last partition",
                f"partitions end before {self.end}",
            )
        if (
            self.kind == "hourly"
            and _start_of(self.kind, key, ZoneInfo(self.tz)).strftime(fmt) != key
        ):
            raise UsageError(
                f"{owner}: hour {key} does not exist in {self.tz} (the clocks skip it)",
                self._form(),
            )
        return key

    def has_ended(self, key: str, now: datetime) -> bool:
        """Whether the window of `key` is over at `now` (naive means UTC); static keys
        always are."""
        window = self.window(key)
        moment = now.replace(tzinfo=UTC) if now.tzinfo is None else now
        return window is None or window[1] <= moment

    def check_ended(self, key: str, owner: str, now: datetime) -> str:
        """`key` if its window has ended by `now` (aware or naive UTC), else a UsageError:
        a partition is computed once its window is over."""
        if not self.has_ended(key, now):
            window = self.window(key)
            assert window is not None
            found = self.keys(now)
            latest = f"; the latest is {found[-1]}" if found else ""
            raise UsageError(
                f"{owner}: partition {key} has not ended yet (its window ends at "
                f"{window[1].isoformat()})",
                f"a partition is computed once its window is over{latest}",
            )
        return key

    def between(self, first: str, last: str, owner: str) -> list[str]:
        """The keys from `first` to `last`, both included."""
        self.check_key(first, owner)
        self.check_key(last, owner)
        if self.order(first) > self.order(last):
            raise UsageError(
                f"{owner}: the range {first}{RANGE_SEP}{last} is reversed",
                f"give the earlier key first: {last}{RANGE_SEP}{first}",
            )
        if not self.is_time:
            keys = self.static_keys
            return list(keys[keys.index(first) : keys.index(last) + 1])
        keys = _time_keys(self.kind, self.start, self.end, self.tz, None, upto=last)
        return list(keys[bisect.bisect_left(keys, first) :])

    def _form(self) -> str:
        if not self.is_time:
            shown = ", ".join(self.static_keys[:8]) + (", ..." if len(self.static_keys) > 8 else "")
            return f"the keys are {shown}"
        return f"a key of {self.describe()} is {FORMATS[self.kind][1]}"

    # -- what one partitioning reads of another -------------------------------------------

    def reads(self, up: Partitions, key: str, lookback: int = 0) -> list[str]:
        """The keys of `up` that this partitioning's `key` reads: the same static key; the
        time windows overlapping its own (and `lookback` earlier ones)."""
        if not self.is_time:
            return [key] if up.has(key) else []
        start, end = self.window(key) or (None, None)
        assert start is not None and end is not None
        keys = up.all_keys()
        zone = ZoneInfo(up.tz)
        at = up._key_at(start.astimezone(zone), zone)
        i = bisect.bisect_left(keys, at)
        j = i
        while j < len(keys) and _start_of(up.kind, keys[j], zone) < end:
            j += 1
        return list(keys[max(0, i - lookback) : j])

    def _key_at(self, moment: datetime, zone: ZoneInfo) -> str:
        """The key of the window holding `moment` (aware, in this zone)."""
        local = moment.replace(tzinfo=None)
        if self.kind == "hourly":
            floor = local.replace(minute=0, second=0, microsecond=0)
        elif self.kind == "daily":
            floor = datetime(local.year, local.month, local.day)
        elif self.kind == "weekly":
            day = local.date() - timedelta(days=local.weekday())
            floor = datetime(day.year, day.month, day.day)
        else:
            floor = datetime(local.year, local.month, 1)
        return floor.strftime(FORMATS[self.kind][0])

    def mapping_problem(self, up: Partitions) -> str:
        """Why this partitioning cannot read `up` partition by partition ("" if it can)."""
        if self.is_time and up.is_time:
            return ""
        if not self.is_time and not up.is_time:
            if set(self.static_keys) <= set(up.static_keys):
                return ""
            missing = sorted(set(self.static_keys) - set(up.static_keys))
            return f"its static keys {missing[:3]} are not keys of the input"
        return f"{self.describe()} and {up.describe()} do not map onto each other"


# -- the public constructors (SPEC §7) -------------------------------------------------------


def hourly(start: str | date | datetime, *, end: Any = None, tz: str = "UTC") -> Partitions:
    """One partition per hour, keys `YYYY-MM-DD-HH:MM`."""
    return _time("hourly", start, end, tz)


def daily(start: str | date | datetime, *, end: Any = None, tz: str = "UTC") -> Partitions:
    """One partition per day, keys `YYYY-MM-DD`."""
    return _time("daily", start, end, tz)


def weekly(start: str | date | datetime, *, end: Any = None, tz: str = "UTC") -> Partitions:
    """One partition per week (Monday to Monday), keys `YYYY-MM-DD` of the Monday."""
    return _time("weekly", start, end, tz)


def monthly(start: str | date | datetime, *, end: Any = None, tz: str = "UTC") -> Partitions:
    """One partition per calendar month, keys `YYYY-MM`."""
    return _time("monthly", start, end, tz)


def static(keys: Iterable[str]) -> Partitions:
    """A fixed list of partitions (regions, customers...), in the order given."""
    if isinstance(keys, str) or not isinstance(keys, Iterable):
        raise DefinitionError(f"static({keys!r}): give a list of keys", 'e.g. static(["eu", "us"])')
    listed = list(keys)
    if not listed:
        raise DefinitionError("static([]): give at least one key", 'e.g. static(["eu", "us"])')
    for key in listed:
        if (
            not isinstance(key, str)
            or len(key) > MAX_STATIC_KEY
            or not STATIC_KEY_RE.fullmatch(key)
        ):
            raise DefinitionError(
                f"static partition key {key!r} is not valid",
                "use letters, digits and _ . @ = + -, starting with a letter or digit, "
                f"at most {MAX_STATIC_KEY} characters",
            )
    duplicated = sorted({k for k in listed if listed.count(k) > 1})
    if duplicated:
        raise DefinitionError(
            f"static partition key {duplicated[0]!r} is listed twice", "list each key once"
        )
    return Partitions("static", static_keys=tuple(listed))


def _time(kind: str, start: Any, end: Any, tz: Any) -> Partitions:
    what = f"{kind}(start={start!r})"
    if not isinstance(tz, str) or not tz:
        raise DefinitionError(f"{what}: tz={tz!r} is not a time zone", 'e.g. tz="Europe/Berlin"')
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        from vibepiper.errors import did_you_mean

        raise DefinitionError(
            f"{what}: unknown time zone {tz!r}",
            "use an IANA name such as 'UTC', 'Europe/Berlin' or 'America/New_York'"
            + did_you_mean(tz, ["UTC", "Europe/Berlin", "America/New_York"]),
        ) from None
    first = _moment(what, "start", start)
    last = _moment(what, "end", end) if end is not None else ""
    if last and last <= first:
        raise DefinitionError(f"{what}: end={end!r} is not after start", "give a later end")
    return Partitions(kind, first, last, tz)


def _moment(what: str, option: str, value: Any) -> str:
    """A start or end as text: `YYYY-MM-DD` or `YYYY-MM-DD HH:MM`."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise DefinitionError(
                f"{what}: {option}= is an aware datetime",
                "give a naive date or datetime (read in the partitions' tz=)",
            )
        midnight = value.time() == datetime.min.time()
        return value.strftime("%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, str):
        for fmt in ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"):
            try:
                parsed = datetime.strptime(value, fmt)
            except ValueError:
                continue
            return _moment(what, option, parsed)
    raise DefinitionError(
        f"{what}: {option}={value!r} is not a date", 'give "YYYY-MM-DD" or "YYYY-MM-DD HH:MM"'
    )


# -- time arithmetic (wall clock of the zone) ------------------------------------------------


def _local(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M" if " " in text else "%Y-%m-%d")


def _ceil(kind: str, moment: datetime) -> datetime:
    """The first window start (naive wall clock) at or after `moment`."""
    if kind == "hourly":
        floor = moment.replace(minute=0, second=0, microsecond=0)
        return floor if floor == moment else floor + timedelta(hours=1)
    day = datetime(moment.year, moment.month, moment.day)
    if day != moment:
        day += timedelta(days=1)
    if kind == "daily":
        return day
    if kind == "weekly":
        return day + timedelta(days=(7 - day.weekday()) % 7)
    if day.day == 1:
        return day
    return _add_month(day.replace(day=1))


def _add_month(moment: datetime) -> datetime:
    year, month = divmod(moment.month, 12)
    return moment.replace(year=moment.year + year, month=month + 1, day=1)


def _step(kind: str, moment: datetime) -> datetime:
    if kind == "hourly":
        return moment + timedelta(hours=1)
    if kind == "daily":
        return moment + timedelta(days=1)
    if kind == "weekly":
        return moment + timedelta(days=7)
    return _add_month(moment)


def _first_key(kind: str, start: str, zone: ZoneInfo) -> str:
    return _ceil(kind, _local(start)).strftime(FORMATS[kind][0])


def _exists(local: datetime, zone: ZoneInfo) -> bool:
    """Whether the wall-clock time `local` happens in `zone` (not skipped by a change)."""
    aware = local.replace(tzinfo=zone)
    back = aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return back == local


def _start_of(kind: str, key: str, zone: ZoneInfo) -> datetime:
    """The (aware) start of the window of `key`: its wall-clock start, the first time it
    happens; a skipped start is where the clock lands."""
    return _resolved(datetime.strptime(key, FORMATS[kind][0]), zone)


def _resolved(local: datetime, zone: ZoneInfo) -> datetime:
    """The wall-clock time `local` in `zone` as an aware time: its first occurrence, or
    (skipped by the clocks) where they land."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC).astimezone(zone)


def _minute_floor(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


@functools.lru_cache(maxsize=64)
def _time_keys(
    kind: str, start: str, end: str, tz: str, until: datetime | None, upto: str = ""
) -> tuple[str, ...]:
    """Every key from `start` whose window ends by `until` (UTC; None: no limit), before
    `end`, up to `upto` (included) if given. Cached: a command asks for the same keys of
    many assets."""
    zone = ZoneInfo(tz)
    fmt = FORMATS[kind][0]
    local = _ceil(kind, _local(start))
    stop = _ceil(kind, _local(end)) if end else None
    if until is None and stop is None and not upto:
        raise ValueError("an open-ended partitioning has keys only up to a moment")
    if tz == "UTC" and kind in STEPS:
        return _fixed_keys(kind, local, stop, until, upto)
    keys: list[str] = []
    fixed = tz == "UTC"  # wall clock and UTC agree: no conversions
    limit = until.replace(tzinfo=None) if until is not None else None
    while stop is None or local < stop:
        key = local.strftime(fmt)
        if upto and key > upto:
            break
        nxt = _step(kind, local)
        if kind == "hourly" and not fixed:
            if not _exists(local, zone):
                local = nxt
                continue
            while not _exists(nxt, zone):
                nxt += timedelta(hours=1)
        if limit is not None:
            ends = nxt if fixed else _utc(nxt, zone)
            if ends > limit:
                break
        keys.append(key)
        local = nxt
    return tuple(keys)


STEPS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(days=7)}


def _fixed_keys(
    kind: str, first: datetime, stop: datetime | None, until: datetime | None, upto: str
) -> tuple[str, ...]:
    """The keys of fixed-length windows in UTC, counted rather than walked: thousands of
    hourly partitions are made at once (by numpy)."""
    step = STEPS[kind]
    last = stop if stop is not None else datetime.max
    if until is not None:  # windows must have ended by then
        last = min(last, until.replace(tzinfo=None) - step + timedelta(microseconds=1))
    if upto:
        last = min(last, datetime.strptime(upto, FORMATS[kind][0]) + timedelta(microseconds=1))
    if last <= first:
        return ()
    count = -(-(last - first) // step)  # windows starting before `last`
    if count < 1000:
        return tuple((first + i * step).strftime(FORMATS[kind][0]) for i in range(count))
    import numpy as np

    offsets = np.arange(count) * np.timedelta64(step)
    if kind == "hourly":
        starts = np.datetime64(first, "m") + offsets
        text = np.char.replace(np.datetime_as_string(starts, unit="m"), "T", "-")
    else:
        starts = np.datetime64(first.date(), "D") + offsets
        text = np.datetime_as_string(starts, unit="D")
    return tuple(text.tolist())


def _utc(local: datetime, zone: ZoneInfo) -> datetime:
    """The naive UTC time of the wall-clock time `local` in `zone` (its first occurrence)."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC).replace(tzinfo=None)


def parse_range(text: str) -> tuple[str, str]:
    """`FROM..TO` as (FROM, TO); a UsageError if it is not a range."""
    first, sep, last = text.partition(RANGE_SEP)
    if not sep or not first or not last:
        raise UsageError(
            f"--partitions {text!r} is not a range", "give FROM..TO, e.g. 2026-01-01..2026-01-31"
        )
    return first, last


def compress(items: Sequence[tuple[str, Any]]) -> list[tuple[str, str, Any]]:
    """Runs of consecutive keys with the same value: (first key, last key, value)."""
    runs: list[tuple[str, str, Any]] = []
    for key, value in items:
        if runs and runs[-1][2] == value:
            runs[-1] = (runs[-1][0], key, value)
        else:
            runs.append((key, key, value))
    return runs


def shown_range(first: str, last: str) -> str:
    return first if first == last else f"{first}{RANGE_SEP}{last}"
