"""The time VibePiper reads: the machine's, or a fake clock for tests.

`VIBEPIPER_CLOCK` sets a fake clock, for testing schedules and freshness policies (it is
not meant for production): `START[*RATE][@EPOCH]`, where START is an ISO 8601 instant
with its UTC offset (`2026-03-29T00:30:00+01:00`), RATE how many fake seconds pass per
real second (default 1), and EPOCH the real Unix time at which the fake clock read START
(default: when the process first read the clock). `vibepiper serve` hands its children
the pinned form (with @EPOCH), so the runs it launches read the same time it does.

Everything recorded in the catalog (runs, materializations, ticks) and everything judged
(max_age, schedules) uses this clock; the age of a process (is a run still alive?) is
compared in real time, through `to_real`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ENV = "VIBEPIPER_CLOCK"


@dataclass(frozen=True)
class Fake:
    start: datetime  # aware
    rate: float
    epoch: float  # real Unix time at which the clock read `start`

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.time() - self.epoch) * self.rate)

    def pinned(self) -> str:
        return f"{self.start.isoformat()}*{self.rate:g}@{self.epoch!r}"


_fake: Fake | None = None
_read_env: str | None = None


def parse(text: str, epoch: float | None = None) -> Fake:
    """The fake clock `text` describes; a ValueError says what is wrong with it."""
    rest, _, pinned = text.strip().partition("@")
    start_text, _, rate_text = rest.partition("*")
    try:
        start = datetime.fromisoformat(start_text.strip())
    except ValueError:
        raise ValueError(f"{start_text.strip()!r} is not an ISO 8601 instant") from None
    if start.tzinfo is None:
        raise ValueError(f"{start_text.strip()!r} has no UTC offset (add +00:00 or Z)")
    try:
        rate = float(rate_text) if rate_text.strip() else 1.0
        at = float(pinned) if pinned.strip() else (time.time() if epoch is None else epoch)
    except ValueError:
        raise ValueError(f"{text!r}: RATE and EPOCH must be numbers") from None
    if not (0 < rate < 1e9):
        raise ValueError(f"{text!r}: RATE must be a positive number")
    if not (0 <= at < 1e11):  # (not NaN, not infinite)
        raise ValueError(f"{text!r}: EPOCH must be a Unix time")
    return Fake(start.astimezone(UTC), rate, at)


def fake() -> Fake | None:
    """The fake clock in effect, if any (read from the environment, pinned on first use)."""
    global _fake, _read_env
    text = os.environ.get(ENV) or None
    if text != _read_env:
        _read_env = text
        if text is None:
            _fake = None
        else:
            try:
                _fake = parse(text)
            except ValueError as exc:
                from vibepiper.errors import UsageError

                raise UsageError(
                    f"{ENV}={text!r} is not a valid fake clock: {exc}",
                    "write START[*RATE][@EPOCH], e.g. 2026-03-29T00:30:00+01:00*60",
                ) from None
    return _fake


def now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    clock = fake()
    return datetime.now(UTC) if clock is None else clock.now()


def utcnow() -> datetime:
    """The current time as the catalog records it: naive UTC."""
    return now().replace(tzinfo=None)


def to_real(moment: datetime) -> float:
    """The real Unix time at which the clock read `moment` (naive: UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    clock = fake()
    if clock is None:
        return aware.timestamp()
    return clock.epoch + (aware - clock.start).total_seconds() / clock.rate


def from_real(timestamp: float) -> datetime:
    """What the clock read at the real Unix time `timestamp`, naive UTC (as recorded)."""
    clock = fake()
    if clock is None:
        return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)
    moment = clock.start + timedelta(seconds=(timestamp - clock.epoch) * clock.rate)
    return moment.replace(tzinfo=None)


def real_seconds(fake_seconds: float) -> float:
    """How long `fake_seconds` of the clock's time take in real time."""
    clock = fake()
    return fake_seconds if clock is None else fake_seconds / clock.rate


def pin() -> None:
    """Write the pinned form of a fake clock into this process's environment, so that the
    processes it starts read the same time."""
    clock = fake()
    if clock is not None:
        global _read_env
        os.environ[ENV] = _read_env = clock.pinned()


def sleep(seconds: float) -> None:
    """Sleep `seconds` of real time (a helper for loops that must not spin)."""
    if seconds > 0:
        time.sleep(seconds)
