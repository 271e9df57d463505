"""Schedules (SPEC §8): a cron expression in a time zone, and what to run when it fires,
declared in `[tool.vibepiper.schedules.NAME]` or in Python with `schedule(...)`.

Fire times come from cronsim, which follows cron's rules on daylight-saving days: a time
in an hour that is skipped fires at the first minute after the jump, a time in an hour
that repeats fires once (jobs whose hour is `*` fire in both copies of the hour, as
every-hour jobs do in cron).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from vibepiper.errors import DefinitionError, UsageError, did_you_mean
from vibepiper.text import quoted

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

CATCHUPS = ("latest", "all", "none")
COUNT_LIMIT = 10_000  # missed ticks counted one by one up to this many
KEYS = ("cron", "timezone", "select", "exclude", "catchup", "max_catchup", "description")
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
# cron's nicknames, in the five fields cronsim reads
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class Schedule:
    name: str
    cron: str
    timezone: str
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    catchup: str = "latest"
    max_catchup: int = 10
    description: str = ""
    module: str = ""  # the module that declared it ("": pyproject.toml)

    @property
    def trigger(self) -> str:
        return f"schedule:{self.name}"

    @property
    def expression(self) -> str:
        """The five fields cronsim reads (a nickname such as @daily spelled out)."""
        return ALIASES.get(self.cron, self.cron)

    @property
    def signature(self) -> str:
        """What the fire times depend on: when it changes, no earlier tick is replayed."""
        return f"{self.cron} {self.timezone}"

    @property
    def selection(self) -> str:
        return " ".join([*self.select, *(f"--exclude {e}" for e in self.exclude)])

    def zone(self) -> ZoneInfo:
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)

    def times(self, after: datetime) -> Iterator[datetime]:
        """The fire times after `after` (aware), in order, as aware UTC instants."""
        from cronsim import CronSim

        start = after.astimezone(self.zone())
        for moment in CronSim(self.expression, start):
            if moment > after:  # (in a repeated hour, cron's next time can be an earlier one)
                yield moment.astimezone(UTC)

    def due(self, after: datetime, until: datetime, limit: int) -> tuple[list[datetime], int]:
        """The last `limit` fire times in (after, until], oldest first, and how many there
        are in all (counted up to COUNT_LIMIT: a daemon down for a year on a
        minutely schedule is not walked minute by minute)."""
        from cronsim import CronSim

        # Start the walk a few fire times before `until` (found backwards), then walk
        # forwards: the forward walk is what decides each fire time (cron's DST rules).
        start = after
        back = CronSim(self.expression, until.astimezone(self.zone()), True)
        for _ in range(limit + 2):
            moment = next(back, None)
            if moment is None or moment <= after:
                break
            start = moment
        if start != after:  # (in UTC: a zone's wall clock may jump just before `start`)
            start = start.astimezone(UTC) - timedelta(seconds=1)
        found = [m for m in _until(self.times(max(start, after)), until) if m > after][-limit:]
        if not found:
            return [], 0
        count = len(found)
        for moment in self.times(after):
            if moment >= found[0] or count >= COUNT_LIMIT:
                break
            count += 1
        return found, count

    def before(self, moment: datetime, after: datetime) -> datetime | None:
        """The latest fire time in (after, moment), if any (found backwards: no walk)."""
        from cronsim import CronSim

        back = CronSim(self.expression, moment.astimezone(self.zone()), True)
        for found in back:
            if found <= after:
                return None
            if found < moment:
                return found.astimezone(UTC)
        return None

    def next(self, after: datetime, n: int = 3) -> list[datetime]:
        times = self.times(after)
        return [next(times) for _ in range(n)]


def _until(times: Iterator[datetime], until: datetime) -> Iterator[datetime]:
    for moment in times:
        if moment > until:
            return
        yield moment


def schedule(
    name: str,
    cron: str,
    *,
    timezone: str = "UTC",
    select: str | list[str] | None = None,
    exclude: str | list[str] | None = None,
    catchup: str = "latest",
    max_catchup: int = 10,
    description: str = "",
) -> Schedule:
    """A schedule declared in Python (as `[tool.vibepiper.schedules.NAME]` declares one):
    assign it to a name in an asset module, as assets are, and `vibepiper serve` runs
    `select` (default: everything) each time `cron` fires in `timezone`."""
    import sys

    module = sys._getframe(1).f_globals.get("__name__", "?")
    if not isinstance(name, str):
        raise DefinitionError(f"schedule {name!r} (module {module}): the name is not a string")
    body: dict[str, Any] = {
        "cron": cron,
        "timezone": timezone,
        "catchup": catchup,
        "max_catchup": max_catchup,
        "description": description,
    }
    body.update({k: v for k, v in (("select", select), ("exclude", exclude)) if v is not None})
    found = _schedule(name, body, f"module {module}")
    return replace(found, module=module)


def from_dicts(entries: Any, listed: list[str]) -> list[Schedule]:
    """The Python schedules a snapshot saved (`as_dict` of each), checked again as they
    were when declared (a snapshot is read from disk: it is input like any other)."""
    found = []
    for entry in entries:
        module = entry["module"]
        if not isinstance(module, str) or not any(
            module == m or module.startswith(f"{m}.") for m in listed
        ):
            raise ValueError(f"module {module!r} is not of the project's tree")
        body = {k: entry[k] for k in KEYS if entry.get(k) is not None}
        found.append(replace(_schedule(entry["name"], body, f"module {module}"), module=module))
    return found


def as_dict(s: Schedule) -> dict[str, Any]:
    return {
        "name": s.name,
        "cron": s.cron,
        "timezone": s.timezone,
        "select": list(s.select),
        "exclude": list(s.exclude),
        "catchup": s.catchup,
        "max_catchup": s.max_catchup,
        "description": s.description,
        "module": s.module,
    }


def combined(pyproject: list[Schedule], declared: list[Schedule], where: str) -> list[Schedule]:
    """The schedules of pyproject.toml and of the modules; a DefinitionError names a
    name declared twice."""
    seen: dict[str, Schedule] = {}
    for found in [*pyproject, *declared]:
        other = seen.setdefault(found.name, found)
        if other is not found:
            places = [f"module {s.module}" if s.module else where for s in (other, found)]
            raise DefinitionError(
                f"schedule {quoted(found.name)} is declared twice: in {places[0]} and in "
                f"{places[1]}",
                "give one of them another name",
            )
    return list(seen.values())


def parse(table: Any, where: str) -> list[Schedule]:
    """The schedules of `[tool.vibepiper.schedules]`; a DefinitionError names the first
    one at fault and what is wrong with it."""
    if not isinstance(table, dict):
        raise DefinitionError(f"{where}: [tool.vibepiper.schedules] is not a table", _HOW)
    return [_schedule(name, body, where) for name, body in table.items()]


_HOW = (
    'write each as [tool.vibepiper.schedules.NAME] with cron = "0 6 * * *" (and optionally '
    'timezone, select, exclude, catchup = "latest" | "all" | "none", max_catchup)'
)


def _schedule(name: str, body: Any, where: str) -> Schedule:
    at = f"schedule {quoted(name)} ({where})"
    if not NAME.match(name):
        raise DefinitionError(
            f"{at}: the name is not valid", "use letters, digits, '_', '-' and '.'"
        )
    if not isinstance(body, dict):
        raise DefinitionError(f"{at} is not a table", _HOW)
    for key in body:
        if key not in KEYS:
            raise DefinitionError(
                f"{at}: unknown key {quoted(key)}{did_you_mean(key, KEYS)}",
                f"the keys are {', '.join(KEYS)}",
            )
    cron = body.get("cron")
    if not isinstance(cron, str) or not cron.strip():
        raise DefinitionError(f"{at}: no cron expression", 'add cron = "0 6 * * *"')
    cron = " ".join(cron.split())
    timezone = body.get("timezone", "UTC")
    _check_timezone(at, timezone)
    _check_cron(at, cron, timezone)
    catchup = body.get("catchup", "latest")
    if catchup not in CATCHUPS:
        hint = did_you_mean(catchup, CATCHUPS) if isinstance(catchup, str) else ""
        raise DefinitionError(
            f"{at}: catchup = {catchup!r} is not valid{hint}",
            'use "latest" (one run for the ticks missed), "all" (one each, up to '
            'max_catchup) or "none"',
        )
    max_catchup = body.get("max_catchup", 10)
    if (
        not isinstance(max_catchup, int)
        or isinstance(max_catchup, bool)
        or not (1 <= max_catchup <= 1000)
    ):
        raise DefinitionError(
            f"{at}: max_catchup = {max_catchup!r} is not valid", "give a number from 1 to 1000"
        )
    description = body.get("description", "")
    if not isinstance(description, str):
        raise DefinitionError(f"{at}: description is not a string", "write it in quotes")
    return Schedule(
        name,
        cron,
        timezone,
        _words(at, "select", body.get("select")),
        _words(at, "exclude", body.get("exclude")),
        catchup,
        max_catchup,
        description,
    )


def _words(at: str, key: str, value: Any) -> tuple[str, ...]:
    """A selection written as a string or a list of strings, as its words."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise DefinitionError(
            f"{at}: {key} = {value!r} is not a selection", f'write {key} = "tag:daily orders+"'
        )
    words = tuple(w for item in items for w in item.split())
    if any(w.startswith("-") for w in words):
        raise DefinitionError(
            f"{at}: {key} = {value!r} is not a selection",
            "give asset names, globs, tag:T or group:G (exclusions go in exclude =)",
        )
    return words


def _check_timezone(at: str, timezone: Any) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    if isinstance(timezone, str) and timezone.strip() and "\0" not in timezone:
        try:
            ZoneInfo(timezone)
            return
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    hint = did_you_mean(timezone, available_timezones()) if isinstance(timezone, str) else ""
    raise DefinitionError(
        f"{at}: unknown time zone {timezone!r}{hint}",
        'give an IANA time zone name, such as "Europe/Berlin" or "UTC"',
    )


def _check_cron(at: str, cron: str, timezone: str) -> None:
    from zoneinfo import ZoneInfo

    from cronsim import CronSim, CronSimError

    try:
        times = CronSim(ALIASES.get(cron, cron), datetime.now(ZoneInfo(timezone)))
        next(times)
    except (CronSimError, StopIteration) as exc:
        why = str(exc) or "it never fires"
        raise DefinitionError(
            f"{at}: invalid cron expression {cron!r}: {why}",
            'write five fields, minute hour day-of-month month day-of-week, e.g. "0 6 * * *"'
            ", or @hourly, @daily, @weekly, @monthly, @yearly",
        ) from None


def check_selections(schedules: list[Schedule], select: Any, where: str) -> None:
    """A UsageError naming the first schedule whose selection is unknown or selects no
    asset; `select(select, exclude)` resolves a selection."""
    for schedule in schedules:
        place = f"module {schedule.module}" if schedule.module else where
        at = f"schedule {quoted(schedule.name)} ({place})"
        try:
            names = select(list(schedule.select) or None, list(schedule.exclude))
        except UsageError as exc:
            raise UsageError(f"{at}: {exc.message}", exc.hint) from None
        if not names:
            raise DefinitionError(
                f"{at}: select = {' '.join(schedule.select)!r} selects no asset",
                "run `vibepiper list SELECT` to see what a selection picks",
            )
