"""What the benchmarks of a series of sizes share (scale.py: assets; partitions.py:
partitions): what each run attempted, each figure's spread over its runs, and how a figure
grows with the size."""

from __future__ import annotations

import itertools
import math
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import PYTHON, VIBEPIPER, Measure, query_catalog

# -- what runs attempted, and each figure's spread ---------------------------------------

ATTEMPTED_SQL = (
    "select status, count(*) n from materializations "
    "where status in ('succeeded', 'failed', 'check_failed') group by status"
)


@dataclass
class Attempts:
    """What each run attempted (succeeded, failed, check_failed), read from the catalog as
    the change in the counts of those states since the previous reading; however a run
    records its skipped assets, a no-op attempts nothing."""

    root: Path
    seen: dict[str, int] = field(default_factory=dict)

    def read(self) -> dict[str, int]:
        return {r["status"]: int(r["n"]) for r in query_catalog(self.root, ATTEMPTED_SQL)}

    def since_last(self) -> dict[str, int]:
        now = self.read()
        delta = {k: now.get(k, 0) - self.seen.get(k, 0) for k in now.keys() | self.seen.keys()}
        self.seen = now
        return {k: v for k, v in sorted(delta.items()) if v}

    def from_scratch(self) -> dict[str, int]:
        self.seen = {}
        return self.since_last()


def cold_and_floor(
    root: Path, label: str, attempts: Attempts, timeout_s: float
) -> tuple[Measure, Measure]:
    """The plain script (`floor.py floor-out`) and a cold `vibepiper materialize` doing the
    same work in `root`, each from nothing (its output removed before each run), as
    `floor@<label>` and `cold@<label>`; the cold runs' attempts are kept."""

    def clear_floor() -> None:
        shutil.rmtree(root / "floor-out", ignore_errors=True)

    def clear_home() -> None:
        shutil.rmtree(root / ".vibepiper", ignore_errors=True)

    floor = Measure(
        f"floor@{label}", [PYTHON, "floor.py", "floor-out"], root, clear_floor, timeout_s=timeout_s
    )
    cold = Measure(
        f"cold@{label}",
        [VIBEPIPER, "materialize"],
        root,
        clear_home,
        attempts.from_scratch,
        timeout_s=timeout_s,
    )
    return floor, cold


def summaries(measures: list[Measure]) -> dict[str, dict[str, Any]]:
    """Each measure's summary by its name, with what each run `attempted` (the values of its
    `after`, an Attempts reading) where it has one."""
    found = {m.name: m.summary() for m in measures}
    for m in measures:
        if m.after is not None:
            found[m.name]["attempted"] = m.extras
    return found


def attempted_problems(
    results: dict[str, Any], expected: dict[str, dict[str, int]], label: str, what: str
) -> list[str]:
    """Where the runs of `<figure>@<label>` attempted other than `expected[figure]`."""
    problems = []
    for figure, want in expected.items():
        got = results.get(f"{figure}@{label}", {}).get("attempted", [])
        if any(a != want for a in got):
            problems.append(
                f"{what}: {figure} runs attempted {got}, expected {want or 'nothing'} each"
            )
    return problems


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def figures_of(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each figure's median, min and max (the figure: a measure's name before its "@"), in
    seconds and, as `rss_<figure>`, in MiB of peak RSS."""
    figures = {}
    for name, r in results.items():
        figure = name.split("@")[0]
        figures[figure] = spread(r["times_s"])
        figures[f"rss_{figure}"] = spread(r["peak_rss_mib_runs"])
    return figures


def disturbed(results: dict[str, dict[str, Any]]) -> list[str]:
    """The measures with a disturbed run, by name."""
    return sorted(name for name, r in results.items() if r["disturbed_runs"])


# -- growth with size --------------------------------------------------------------------

SUPERLINEAR_EXCESS = 0.15  # above the first interval's line by more than this share ...
SUPERLINEAR_MIN = {"s": 0.05, "MiB": 5.0}  # ... and more than this much: faster than linear
PER_UNIT = {"ms": 1000, "µs": 1e6, "KiB": 1024}  # of a slope, from seconds or MiB


@dataclass(frozen=True)
class Growth:
    """How a figure grows with a size (assets, partitions), in `unit` per unit of size."""

    unit: str  # "ms" or "µs" for a figure in seconds, "KiB" for one in MiB
    sizes: list[int]
    slope: float  # least-squares
    intercept: float  # in the figure's own unit
    intervals: list[dict[str, float]]  # the slope between each two sizes
    per_smallest: float  # the cost per unit of size at the smallest size
    per_largest: float  # ... and at the largest
    exponent: float | None  # of a power law through those two
    line: float | None  # the first interval's line at the largest size (three sizes or more)
    excess: float | None  # the largest size's figure above that line
    faster: bool

    @property
    def verdict(self) -> str:
        return "faster than linear" if self.faster else "linear or better"


def growth(points: list[tuple[int, float]], unit: str, time_unit: str) -> Growth:
    """How a figure (in `unit`: "s" or "MiB") grows with size, its slopes in `time_unit`
    ("ms" or "µs") or KiB: the least-squares slope, the slope of each interval between sizes,
    the cost per unit of size at the smallest and largest, the exponent of a power law
    through those two, and a verdict.

    Faster than linear: the largest size's figure lies above the line through the first
    interval (flat if that falls) by more than SUPERLINEAR_EXCESS of it (and more than
    SUPERLINEAR_MIN), or, with two sizes only, the cost per unit of size grows by more than
    5%. Else linear or better.
    """
    points = sorted(points)
    per = time_unit if unit == "s" else "KiB"
    scale = PER_UNIT[per]
    ns = [p[0] for p in points]
    vs = [p[1] for p in points]
    mean_n, mean_v = statistics.fmean(ns), statistics.fmean(vs)
    var = sum((x - mean_n) ** 2 for x in ns)
    slope = sum((x - mean_n) * (v - mean_v) for x, v in points) / var
    intervals = [
        {"from": a, "to": b, "slope": (vb - va) / (b - a) * scale}
        for (a, va), (b, vb) in itertools.pairwise(points)
    ]
    (n0, v0), (n1, v1) = points[0], points[-1]
    exponent = math.log(v1 / v0) / math.log(n1 / n0) if v0 > 0 and v1 > 0 else None
    if len(points) >= 3:
        line = v0 + max(0.0, intervals[0]["slope"]) / scale * (n1 - n0)
        excess = v1 - line
        faster = excess > SUPERLINEAR_EXCESS * line and excess > SUPERLINEAR_MIN[unit]
    else:
        line, excess = None, None
        faster = v1 / n1 > 1.05 * v0 / n0
    return Growth(
        unit=per,
        sizes=ns,
        slope=slope * scale,
        intercept=mean_v - slope * mean_n,
        intervals=intervals,
        per_smallest=v0 / n0 * scale,
        per_largest=v1 / n1 * scale,
        exponent=exponent,
        line=line,
        excess=excess,
        faster=faster,
    )


def growths(
    derived: list[dict[str, Any]], size: str, figures: dict[str, str], time_unit: str
) -> dict[str, Growth]:
    """The growth of each of `figures` (name -> unit) with `size` (a key of each of
    `derived`, one per size), from the figure's medians; where it was measured at two
    sizes or more."""
    found = {}
    for figure, unit in figures.items():
        points = [
            (d[size], d["figures"][figure]["median"]) for d in derived if figure in d["figures"]
        ]
        if len(points) >= 2:
            found[figure] = growth(points, unit, time_unit)
    return found
