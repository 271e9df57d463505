"""The rows of run.py's table: each benchmark's JSON report turned into figures, each with
its median, min-max, floor, ratio to the floor and goal; and the table itself.

A figure's ratio is always its median divided by its floor's median. A goal is judged
("met" / "NOT met") only on the configuration the issue sets it for (200 assets, 5,000,000
rows, the full executors graph, 365 days and 100,000 hourly partitions, 1,000,000 orders
and more for the SQL pipeline); on a smaller one (`--quick`) the goal is applied to the
largest configuration measured and its verdict is shown in parentheses: indicative only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GOAL_ASSETS = 200
GOAL_ROWS = 5_000_000
IMPORT_FLOOR = "import floor"  # python -c "import pandas, pyarrow.parquet, duckdb"
PASS_FLOOR = "python -c pass"


@dataclass(frozen=True)
class Goal:
    text: str
    test: Callable[[float, float], bool]  # (median, floor) -> met


# The goals of issue 8 (and of the scripts).
COLD = Goal("<= 1.3x floor", lambda m, f: m <= 1.3 * f)
NOOP = Goal("<= floor + 0.3 s", lambda m, f: m <= f + 0.3)
HELP = Goal("<= 0.3 s", lambda m, f: m <= 0.3)
STATUS = Goal("<= floor + 0.5 s", lambda m, f: m <= f + 0.5)
VALIDATION = Goal("<= 2x floor", lambda m, f: m <= 2 * f)
MEMORY = Goal("<= 2.5x frame", lambda m, f: m <= 2.5 * f)
DATA_VERSION = Goal("< 1x floor (well below)", lambda m, f: m < f)
PROCESSES = Goal("<= 0.625x floor (1.6x faster)", lambda m, f: f >= 1.6 * m)
COLD_SCALE = Goal("<= 1.1x floor", lambda m, f: m <= 1.1 * f)  # issue 17, at 4,000 assets


def _at_most(limit: float) -> Callable[[float, float], bool]:
    return lambda m, f: m <= limit


@dataclass(frozen=True)
class Row:
    """One figure of the table."""

    key: str  # the figure and its size, stable across runs: what --compare matches
    label: str
    unit: str  # "s", "MiB" or "%" (of a core)
    median: float
    low: float
    high: float
    floor_label: str = ""
    floor: float | None = None
    goal: str = ""
    met: bool | None = None
    judged: bool = True  # False: not the goal's configuration, the verdict is indicative

    @property
    def ratio(self) -> float | None:
        return self.median / self.floor if self.floor else None

    @property
    def verdict(self) -> str:
        if self.met is None:
            return ""
        word = "met" if self.met else "NOT met"
        return word if self.judged else f"({word.lower()})"

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ratio": self.ratio, "verdict": self.verdict}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def row(
    key: str,
    label: str,
    values: tuple[float, float, float],  # median, min, max
    floor: tuple[float, str],  # its median, what it is
    goal: Goal | None = None,
    judged: bool = True,
    unit: str = "s",
) -> Row:
    median, low, high = values
    if goal is None:
        return Row(key, label, unit, median, low, high, floor[1], floor[0])
    met = goal.test(median, floor[0])
    return Row(key, label, unit, median, low, high, floor[1], floor[0], goal.text, met, judged)


def timed(result: dict[str, Any]) -> tuple[float, float, float]:
    """A script's figure as (median, min, max) seconds."""
    return result["median_s"], result["min_s"], max(result["times_s"])


def size(n: int) -> str:
    """5000000 -> "5M", 500000 -> "500k"."""
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return f"{n:,}"


# -- one function per benchmark: its report -> its rows ---------------------------------

# figure, label, its floor's figure, the floor's label, the goal (at 200 assets)
GRAPH_FIGURES = (
    ("cold", "cold run, {n} assets", "floor", "plain script", COLD),
    ("noop", "no-op run, {n} assets", "import", IMPORT_FLOOR, NOOP),
    ("changed", "one root changed, {n} assets ({changed} recomputed)", "cold", "cold run", None),
    ("list", "`vibepiper list`, {n} assets", "python_pass", PASS_FLOOR, None),
    ("status", "`vibepiper status`, {n} assets", "import", IMPORT_FLOOR, STATUS),
)


def graph_rows(report: dict[str, Any]) -> list[Row]:
    results, derived = report["results"], report["derived"]
    sizes = sorted(report["assets"])
    goal_n = GOAL_ASSETS if GOAL_ASSETS in sizes else max(sizes)
    rows = []
    for figure, label, floor, floor_label, goal in GRAPH_FIGURES:
        for n in sizes:
            changed = derived[str(n)]["changed_expected_succeeded"]
            rows.append(
                row(
                    f"graph:{figure}@{n}",
                    label.format(n=n, changed=changed),
                    timed(results[f"{figure}@{n}"]),
                    (results[f"{floor}@{n}"]["median_s"], floor_label),
                    goal if n == goal_n else None,
                    judged=n == GOAL_ASSETS,
                )
            )
    largest = max(sizes)  # --help does not depend on the project
    rows.append(
        row(
            "graph:help",
            "`vibepiper --help`",
            timed(results[f"help@{largest}"]),
            (results[f"python_pass@{largest}"]["median_s"], PASS_FLOOR),
            HELP,
        )
    )
    return rows


# scale.py (issue 17): figure, label, unit, its floor's figure, the floor's label, the goal
# at SCALE_ASSETS. Every figure is read from the report's derived[N]["figures"].
SCALE_ASSETS = 4_000
NOOP_SCALE = Goal("<= 0.6 s", _at_most(0.6))
STATUS_SCALE = Goal("<= 0.6 s", _at_most(0.6))
LIST_SCALE = Goal("<= 0.4 s", _at_most(0.4))
EDIT_SCALE = Goal("<= 1.0 s", _at_most(1.0))
RSS_NOOP_SCALE = Goal("<= 200 MiB", _at_most(200))
SCALE_FIGURES: tuple[tuple[str, str, str, str | None, str, Goal | None], ...] = (
    ("cold", "cold run, {n} assets", "s", "floor", "plain script", COLD_SCALE),
    ("noop", "no-op run, {n} assets", "s", "import", IMPORT_FLOOR, NOOP_SCALE),
    ("status", "`vibepiper status`, {n} assets, fresh", "s", "import", IMPORT_FLOOR, STATUS_SCALE),
    ("list", "`vibepiper list`, {n} assets", "s", "import", IMPORT_FLOOR, LIST_SCALE),
    ("edit", "1 asset edited, run, {n} assets", "s", "import", IMPORT_FLOOR, EDIT_SCALE),
    ("import", "import floor, {n} assets (a reference)", "s", None, "", None),
    (
        "rss_noop",
        "peak RSS, no-op run, {n} assets",
        "MiB",
        "rss_import",
        IMPORT_FLOOR,
        RSS_NOOP_SCALE,
    ),
    ("rss_cold", "peak RSS, cold run, {n} assets", "MiB", "rss_floor", "plain script", None),
)


def scale_rows(report: dict[str, Any]) -> list[Row]:
    derived = report["derived"]  # the sizes measured (a size whose command failed is not)
    sizes = sorted(int(n) for n in derived)
    goal_n = SCALE_ASSETS if SCALE_ASSETS in sizes else max(sizes)
    rows = []
    for figure, label, unit, floor, floor_label, goal in SCALE_FIGURES:
        for n in sizes:
            found = derived[str(n)]["figures"]
            if figure not in found:  # not measured (--only)
                continue
            key, text = f"scale:{figure}@{n}", label.format(n=f"{n:,}")
            values = found[figure]["median"], found[figure]["min"], found[figure]["max"]
            if floor is None:
                rows.append(Row(key, text, unit, *values))
                continue
            floor_of = (found[floor]["median"], floor_label)
            goal_here = goal if n == goal_n else None
            rows.append(row(key, text, values, floor_of, goal_here, n == SCALE_ASSETS, unit))
    return rows


def scale_notes(report: dict[str, Any]) -> list[str]:
    """How each figure grows with N, which sizes timed fewer cold runs, what went wrong."""
    found = []
    for figure, g in report["growth"].items():
        per = g["unit"]
        steps = ", ".join(f"{i['slope']:.3f} from {i['from']:,}" for i in g["intervals"])
        exponent = "" if g["exponent"] is None else f"exponent {g['exponent']:.2f}, "
        line = (
            f"scale, {figure}: {g['slope_per_asset']:.3f} {per}/asset over "
            f"{', '.join(f'{n:,}' for n in g['sizes'])} ({steps}); {exponent}{g['verdict']}"
        )
        if per == "ms":
            line += f"; per asset {g['per_asset_smallest']:.2f} -> {g['per_asset_largest']:.2f} ms"
        found.append(line)
    for n, d in report["derived"].items():
        if d["cold_repeat"] is not None and d["cold_repeat"] != report["repeat"]:
            found.append(
                f"scale, {int(n):,} assets: cold run and plain script timed {d['cold_repeat']} "
                f"time(s), not {report['repeat']}"
            )
        found += [f"scale: WARNING: {problem}" for problem in d["problems"]]
    found += [f"scale: FAILED at {int(n):,} assets" for n in report.get("failed", {})]
    return found


def validation_rows(report: dict[str, Any]) -> list[Row]:
    results, rows = report["results"], report["rows"]
    floor = (results["duckdb_pandas"]["median_s"], "one DuckDB query")
    found = [
        row(
            f"validation:vibepiper@{size(rows)}",
            f"validation, {size(rows)} rows, 5 checks",
            timed(results["vibepiper"]),
            floor,
            VALIDATION,
            judged=rows == GOAL_ROWS,
        )
    ]
    if "pandera" in results:
        label = f"pandera (a reference), {size(rows)} rows, 5 checks"
        key = f"validation:pandera@{size(rows)}"
        found.append(row(key, label, timed(results["pandera"]), floor))
    return found


def data_version_rows(report: dict[str, Any]) -> list[Row]:
    times = report["data_version_times_s"]
    return [
        row(
            f"data_version@{size(report['rows'])}",
            f"data version, {size(report['rows'])} rows",
            (report["data_version_s"], min(times), max(times)),
            (report["parquet_write_s"], "Parquet write"),
            DATA_VERSION,
            judged=report["rows"] == GOAL_ROWS,
        )
    ]


def memory_rows(report: dict[str, Any]) -> list[Row]:
    d, rows = report["derived"], report["rows"]
    frame = (d["frame_mib"], "the frame")
    found = []
    for name, label, goal in (
        ("materialize", "`materialize`", MEMORY),
        ("floor", "plain script", None),
    ):
        m = d[name]
        found.append(
            row(
                f"memory:{name}@{size(rows)}",
                f"peak RSS - import, {label}, {size(rows)} rows",
                (m["extra_mib"], m["extra_min_mib"], m["extra_max_mib"]),
                frame,
                goal,
                judged=rows == GOAL_ROWS,
                unit="MiB",
            )
        )
    return found


def executors_rows(report: dict[str, Any]) -> list[Row]:
    results, n = report["results"], report["cpu_assets"]
    goal_executor = f"processes/{report['workers']}" if report["workers"] == 2 else None
    found = []
    for name in report["derived"]:
        floor = "cpu:floor" if name == "inprocess" else "cpu:inprocess"
        floor_label = "plain script" if name == "inprocess" else "inprocess"
        found.append(
            row(
                f"executors:{name}@{n}",
                f"{name}, {n} CPU-bound assets",
                timed(results[f"cpu:{name}"]),
                (results[floor]["median_s"], floor_label),
                PROCESSES if name == goal_executor else None,
                judged=not report["quick"],
            )
        )
    return found


TICK_LATENCY = Goal("median <= 0.5 s", _at_most(0.5))
TICK_P99 = Goal("<= 2 s", _at_most(2.0))
IDLE_CPU = Goal("< 1% of a core", lambda m, f: m < 1.0)


def automation_rows(report: dict[str, Any]) -> list[Row]:
    """`vibepiper serve`: tick latency (median and 99th percentile) and idle CPU (%)."""
    r, judged = report["results"], not report["quick"]
    late, floor = r["tick_latency"], r["tick_latency_floor"]
    spread = (late["median_s"], late["min_s"], late["max_s"])
    where = f"{report['schedules']} schedules, {report['files']:,} watched files"
    idle = r["idle"]["share"] * 100
    return [
        row(
            "automation:tick_latency",
            f"tick latency (launch - due), median of {late['n']}, {where}",
            spread,
            (floor["median_s"], "sleep until due"),
            TICK_LATENCY,
            judged,
        ),
        row(
            "automation:tick_latency_p99",
            f"tick latency, 99th percentile of {late['n']}",
            (late["p99_s"], late["p99_s"], late["p99_s"]),
            (floor["p99_s"], "sleep until due"),
            TICK_P99,
            judged,
        ),
        row(
            "automation:idle_cpu",
            f"idle CPU of serve, {where}",
            (idle, idle, idle),
            (r["idle_floor"]["share"] * 100, "stat the files"),
            IDLE_CPU,
            judged,
            unit="%",
        ),
    ]


UI_P95 = Goal("p95 <= 150 ms", _at_most(0.150))
UI_LINEAGE = Goal("<= 1 s", _at_most(1.0))


def ui_rows(report: dict[str, Any]) -> list[Row]:
    """The web UI: each page's and API call's 95th percentile; the lineage in Chromium."""
    results, judged = report["results"], not report["quick"]
    floor = results["floor /healthz"]["p95_s"]
    size = f"{report['assets']:,} assets, {report['materializations']:,} materializations"
    found = [
        row(
            f"ui:{name}",
            f"UI {name} ({r.get('gzip_bytes', r['bytes']) / 1024:.0f} KiB sent), p95, {size}",
            (r["p95_s"], r["min_s"], r["max_s"]),
            (floor, "GET /healthz"),
            UI_P95,
            judged,
        )
        for name, r in results.items()
        if not name.startswith("floor")
    ]
    lineage = report.get("browser_lineage")
    if lineage:
        found.append(
            row(
                "ui:lineage_browser",
                f"lineage of {lineage['nodes']:,} assets loaded in Chromium",
                (lineage["load_s"], min(lineage["loads_s"]), max(lineage["loads_s"])),
                (lineage["floor_s"], "an empty page"),
                UI_LINEAGE,
                judged,
            )
        )
    return found


# partitions.py (SPEC §7): the backfill's figures at PARTITION_DAYS days, the hourly ones at
# PARTITION_HOURS partitions: figure, label, unit, its floor's figure, the floor's label, goal.
PARTITION_DAYS = 365
PARTITION_HOURS = 100_000
LIST_PARTITIONS = Goal("<= 1 s", _at_most(1.0))
PLAN_PARTITIONS = Goal("<= 2 s", _at_most(2.0))
RSS_PLAN_PARTITIONS = Goal("<= 200 MiB", _at_most(200))
Figure = tuple[str, str, str, str, str, Goal | None]


def _against_import(figure: str, label: str, goal: Goal | None, unit: str = "s") -> Figure:
    return (figure, label, unit, "import" if unit == "s" else "rss_import", IMPORT_FLOOR, goal)


BACKFILL_FIGURES: tuple[Figure, ...] = (
    ("cold", "backfill, {n} days x 3 assets + rollup, cold", "s", "floor", "plain script", COLD),
    _against_import("noop", "no-op run, {n} days x 3 assets + rollup", None),
    ("rss_cold", "peak RSS, backfill cold run, {n} days", "MiB", "rss_floor", "plain script", None),
)
HOURLY_FIGURES: tuple[Figure, ...] = (
    _against_import("partitions", "`partitions readings`, {n} hourly, fresh", LIST_PARTITIONS),
    _against_import("status", "`status`, {n} hourly partitions, fresh", LIST_PARTITIONS),
    _against_import("dryrun", "`materialize --dry-run`, {n} hourly, fresh", PLAN_PARTITIONS),
    _against_import("noop", "no-op `materialize readings`, {n} hourly", None),
    _against_import(
        "partitions_missing", "`partitions readings`, {n} hourly, missing", LIST_PARTITIONS
    ),
    _against_import(
        "dryrun_missing", "`materialize --dry-run`, {n} hourly, missing", PLAN_PARTITIONS
    ),
    _against_import(
        "rss_dryrun", "peak RSS, `--dry-run`, {n} hourly, fresh", RSS_PLAN_PARTITIONS, "MiB"
    ),
    _against_import(
        "rss_dryrun_missing",
        "peak RSS, `--dry-run`, {n} hourly, missing",
        RSS_PLAN_PARTITIONS,
        "MiB",
    ),
    _against_import("rss_noop", "peak RSS, no-op run, {n} hourly", None, "MiB"),
)


def _partition_rows(
    suffix: str, n: int, found: dict[str, Any], figures: tuple[Figure, ...], goal_n: int, at: int
) -> list[Row]:
    """The rows of one size `n` (keys end in n and `suffix`): goals shown at `goal_n`, judged
    only at `at` (the size the goals are set for)."""
    return [
        row(
            f"partitions:{figure}@{n}{suffix}",
            label.format(n=f"{n:,}"),
            (found[figure]["median"], found[figure]["min"], found[figure]["max"]),
            (found[floor]["median"], floor_label),
            goal if n == goal_n else None,
            n == at,
            unit,
        )
        for figure, label, unit, floor, floor_label, goal in figures
    ]


def partitions_rows(report: dict[str, Any]) -> list[Row]:
    """The backfill against its plain script; `partitions`, `status` and planning at each
    number of hourly partitions (goals at 365 days and at 100,000 partitions; as in
    scale_rows, at a smaller largest size an indicative verdict)."""
    rows = []
    backfill = report["derived"]["backfill"]
    if backfill is not None:  # None: not measured (--only hourly), or its command failed
        n, found = backfill["days"], backfill["figures"]
        rows += _partition_rows("d", n, found, BACKFILL_FIGURES, n, PARTITION_DAYS)
    hourly = report["derived"]["hourly"]
    sizes = sorted(int(n) for n in hourly)
    goal_n = PARTITION_HOURS if PARTITION_HOURS in sizes else max(sizes, default=0)
    for figure in HOURLY_FIGURES:
        for n in sizes:
            found = hourly[str(n)]["figures"]
            rows += _partition_rows("h", n, found, (figure,), goal_n, PARTITION_HOURS)
    return rows


def partitions_notes(report: dict[str, Any]) -> list[str]:
    """The backfill's overhead per partition; how each hourly figure grows (µs or KiB per
    partition); what went wrong."""
    found = []
    backfill = report["derived"]["backfill"]
    if backfill is not None:
        f = backfill["figures"]
        found.append(
            f"partitions, backfill of {backfill['days']} days ({backfill['partitions']:,} "
            f"partitions + rollup): (cold - floor) / {backfill['partitions']:,} "
            f"{backfill['overhead_ms_per_partition']:.2f} ms per partition; cold / floor "
            f"{backfill['cold_over_floor']:.2f}; no-op {f['noop']['median']:.3f} s, "
            f"{backfill['noop_minus_import_s']:+.3f} s over the import floor"
        )
    for figure, g in report["growth"].items():
        steps = ", ".join(f"{i['slope']:.2f} from {i['from']:,}" for i in g["intervals"])
        exponent = "" if g["exponent"] is None else f"exponent {g['exponent']:.2f}, "
        found.append(
            f"partitions, {figure}: {g['slope_per_partition']:.2f} {g['unit']}/partition over "
            f"{', '.join(f'{n:,}' for n in g['sizes'])} hourly ({steps}); {exponent}"
            f"{g['verdict']}"
        )
    if report["derived"]["hourly"]:
        found.append(
            "partitions: the hourly partitions share one stored file (copied catalog rows)"
        )
    parts = [backfill, *report["derived"]["hourly"].values()]
    found += [f"partitions: WARNING: {p}" for d in parts if d for p in d["problems"]]
    found += [f"partitions: FAILED at {what}" for what in report.get("failed", {})]
    return found


# sql.py (SPEC §10): the pipeline's goals apply from SQL_ROWS orders up (1M and 10M in the
# full run); the lineage goal to its one configuration.
SQL_ROWS = 1_000_000
SQL_PIPELINE = Goal("<= 1.2x floor", lambda m, f: m <= 1.2 * f)
SQL_CHECKS_SHARE = Goal("<= 15%", _at_most(15.0))  # of the checked assets' own time
SQL_LINEAGE = Goal("<= 200 ms", _at_most(0.200))


def sql_rows(report: dict[str, Any]) -> list[Row]:
    """Per size: the pipeline without checks against the plain DuckDB script; with checks
    against the script with the same checks by hand; the checks' share of the checked
    assets' time (against the hand-written checks' share of the script's steps); peak RSS.
    Then the column lineage of a 200-column SELECT against sqlglot's parse."""
    rows = []
    pipeline = report["derived"]["pipeline"]
    for n in sorted(int(k) for k in pipeline):
        d, judged = pipeline[str(n)], n >= SQL_ROWS
        f, steps = d["figures"], f"{report['assets']} assets"
        values = {name: (f[name]["median"], f[name]["min"], f[name]["max"]) for name in f}
        rows += [
            row(
                f"sql:pipeline@{n}",
                f"SQL pipeline, cold, {size(n)} orders, {steps}, no checks",
                values["plain"],
                (f["floor"]["median"], "plain DuckDB script"),
                SQL_PIPELINE,
                judged,
            ),
            row(
                f"sql:checked@{n}",
                f"the same with {report['checks']} checks, {size(n)} orders",
                values["checked"],
                (f["floor_checked"]["median"], "the script + the checks by hand"),
            ),
        ]
        share, floor_share = d["checks_share"], d["floor_checks_share"]
        rows.append(
            row(
                f"sql:checks_share@{n}",
                f"checks' share of the checked assets' time, {size(n)} orders",
                (share["median"] * 100, share["min"] * 100, share["max"] * 100),
                (floor_share["median"] * 100, "the checks by hand, of the script's steps"),
                SQL_CHECKS_SHARE,
                judged,
                unit="%",
            )
        )
        rows.append(
            row(
                f"sql:rss@{n}",
                f"peak RSS, SQL pipeline, cold, {size(n)} orders, no checks",
                values["rss_plain"],
                (f["rss_floor"]["median"], "plain DuckDB script"),
                unit="MiB",
            )
        )
    lineage = report["derived"]["lineage"]
    if lineage is not None:
        spread = lineage["lineage"]
        rows.append(
            row(
                "sql:lineage@200",
                f"column lineage of a {lineage['output_columns']}-column SELECT, in process",
                (spread["median"], spread["min"], spread["max"]),
                (lineage["parse"]["median"], "sqlglot's parse"),
                SQL_LINEAGE,
            )
        )
    return rows


def sql_notes(report: dict[str, Any]) -> list[str]:
    """Per size: the overhead per million orders, the checks' whole-process cost, and where
    the time goes, step by step; how the ratio to the plain script grows; what went wrong."""
    found = []
    pipeline = report["derived"]["pipeline"]
    sizes = sorted(int(k) for k in pipeline)
    for n in sizes:
        d = pipeline[str(n)]
        steps = ", ".join(
            f"{step} {s['plain']:.2f}/{s['floor']:.2f}" for step, s in d["steps_s"].items()
        )
        checks = ", ".join(
            f"{step} {s['checked'] - s['plain']:+.2f}/{s['floor_checks']:.2f}"
            for step, s in d["steps_s"].items()
            if s["floor_checks"]
        )
        found += [
            f"sql, {size(n)} orders: (cold - floor) {d['overhead_s_per_million_rows']:.2f} s per "
            f"million orders; per step, VibePiper/plain script (s): {steps}",
            f"sql, {size(n)} orders: with checks / without {d['checked_over_plain']:.2f} (whole "
            f"process); per step, what the checks add, VibePiper/by hand (s): {checks}",
        ]
    if len(sizes) >= 2:
        ratios = ", ".join(
            f"{pipeline[str(n)]['plain_over_floor']:.2f} at {size(n)}" for n in sizes
        )
        found.append(f"sql: the pipeline's ratio to the plain DuckDB script: {ratios}")
    found += [f"sql: FAILED at {what}" for what in report.get("failed", {})]
    return found


ROWS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "graph": graph_rows,
    "validation": validation_rows,
    "data_version": data_version_rows,
    "memory": memory_rows,
    "executors": executors_rows,
    "scale": scale_rows,
    "automation": automation_rows,
    "ui": ui_rows,
    "partitions": partitions_rows,
    "sql": sql_rows,
}


def notes(name: str, report: dict[str, Any]) -> list[str]:
    """A line or two of derived figures the table has no column for."""
    if name == "graph":
        return [
            f"graph, {n} assets: (cold - floor) / N {d['per_asset_overhead_s'] * 1000:.1f} ms; "
            f"no-op - import floor {d['noop_minus_import_s']:+.3f} s; "
            f"no-op / cold {d['noop_over_cold']:.2f}"
            for n, d in report["derived"].items()
        ]
    if name == "memory":
        d = report["derived"]
        return [
            f"memory: import floor {d['baseline_mib']:.0f} MiB peak RSS; `materialize` "
            f"{d['materialize']['peak_rss_mib']:.0f} MiB in {d['materialize']['wall_s']:.2f} s,"
            f" plain script {d['floor']['peak_rss_mib']:.0f} MiB in {d['floor']['wall_s']:.2f} s"
        ]
    if name == "executors":
        overheads = ", ".join(
            f"{e} {d['overhead_per_asset_ms']:.1f}" for e, d in report["derived"].items()
        )
        return [f"executors: overhead ms/asset ({report['trivial_assets']} trivial) {overheads}"]
    if name == "scale":
        return scale_notes(report)
    if name == "partitions":
        return partitions_notes(report)
    if name == "sql":
        return sql_notes(report)
    return []


# -- the table ---------------------------------------------------------------------------


def _value(value: float, unit: str) -> str:
    if unit == "MiB":
        return f"{value:.0f} MiB"
    if unit == "%":
        return f"{value:.2f}%"
    return f"{value:.3f} s" if value < 10 else f"{value:.2f} s"


def _range(r: Row) -> str:
    if r.unit == "MiB":
        return f"{r.low:.0f}-{r.high:.0f}"
    if r.unit == "%":
        return f"{r.low:.2f}-{r.high:.2f}"
    digits = 3 if r.high < 10 else 2
    return f"{r.low:.{digits}f}-{r.high:.{digits}f}"


def _cells(r: Row, old: dict[str, Row] | None) -> list[str]:
    floor = f"{_value(r.floor, r.unit)} {r.floor_label}" if r.floor is not None else ""
    ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
    cells = [r.label, _value(r.median, r.unit), _range(r), floor, ratio, r.goal, r.verdict]
    if old is not None:
        before = old.get(r.key)
        cells.append(_value(before.median, before.unit) if before else "")
        cells.append(f"{r.median / before.median:.2f}" if before else "")
    return cells


def render(rows: list[Row], old: dict[str, Row] | None = None) -> str:
    """The table as text; with `old` (an earlier run's rows by key), its medians and new/old."""
    head = ["figure", "median", "min-max", "floor", "ratio", "goal", "verdict"]
    if old is not None:
        head += ["old median", "new/old"]
    lines = [head, *(_cells(r, old) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    numbers = {1, 2, 4, 7, 8}
    return "\n".join(
        "  ".join(
            cell.rjust(width) if i in numbers else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )
