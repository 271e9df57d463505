"""Benchmark: `vibepiper serve` — how late a schedule's tick fires, and what the daemon
costs while it waits.

    .venv/bin/python bench/automation.py [--ticks 30] [--idle 30] [--json PATH] [--dir DIR]
    .venv/bin/python bench/automation.py --quick           # a smoke test, under a minute

One project: 1,000 source files, each `source_file(..., watch=True)` (a CSV of 3 rows),
and 100 schedules: 99 that fire once a day at 03:00 and one, `often`, that fires every
minute, selecting one small asset. Everything is materialized first, so the sensors have
nothing to do.

- **Tick latency**: `serve` runs on a fake clock going 10 times real time
  (VIBEPIPER_CLOCK=...*10), so `often` falls due every 6 real seconds; for `--ticks`
  ticks, latency = (the moment serve launched the tick's run - the tick's due time),
  converted to real seconds. The run's own start (`runs.started_at`: the child process
  has started, imported and loaded the project) is reported beside it. Goal: median
  <= 0.5 s, 99th percentile <= 2 s. Floor: a plain script that sleeps until each due time
  and reports how late it woke.
- **Idle CPU**: the same project with 100 daily schedules (no `often`), on a fake clock
  at real speed set to noon, so nothing is due for hours: the CPU time `serve` uses over
  `--idle` seconds (from /proc/PID/stat), once its start-up evaluation is over, as a
  share of one core. Goal: < 1%. Floor: a plain script that stats the same 1,000 files
  once per poll interval (what a watcher cannot avoid).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import PYTHON, VIBEPIPER, child_env, environment, git_state, package_dir, save_report

FILES = 1000
SCHEDULES = 100
RATE = 10.0  # fake seconds per real second, for the tick latency
POLL = 1.0  # serve's default poll interval (seconds)
PACKAGES = ("vibepiper", "duckdb", "cronsim")


def write_project(root: Path, files: int, schedules: int, often: bool = True) -> None:
    """The project; with `often`, one of its schedules fires every minute (else all fire
    daily at 03:00, and nothing is due for hours on the idle measure's clock)."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / "data" / f"f{i:04d}.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    module = [
        "import pandas as pd",
        "from vibepiper import asset, source_file",
        "",
        f"watched = [source_file(f'f{{i:04d}}', f'data/f{{i:04d}}.csv', watch=True) "
        f"for i in range({files})]",
        "",
        "@asset",
        "def small() -> pd.DataFrame:",
        "    return pd.DataFrame({'x': [1, 2, 3]})",
        "",
    ]
    (root / "watchers.py").write_text("\n".join(module))
    tool = ['[project]\nname = "b"\nversion = "0"\n\n[tool.vibepiper]\nmodules = ["watchers"]']
    # catchup = "none": the ticks that fall due between the idle measure (real clock) and
    # the latency measure (a fake clock a day ahead) are skipped, not run
    body = 'select = "small"\ncatchup = "none"'
    if often:
        tool.append(f'\n[tool.vibepiper.schedules.often]\ncron = "* * * * *"\n{body}')
    for i in range(schedules - 1 if often else schedules):
        tool.append(f'\n[tool.vibepiper.schedules.daily{i:02d}]\ncron = "0 3 * * *"\n{body}')
    (root / "pyproject.toml").write_text("\n".join(tool) + "\n")


def run(cmd: list[str], root: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        cmd, cwd=root, env={**child_env(), **(env or {})}, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr}")
    return done.stdout


def query(root: Path, sql: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(run([VIBEPIPER, "query", "--json", sql], root))
    return rows


def tick_latency(root: Path, ticks: int) -> dict[str, Any]:
    """Start serve on a fast fake clock and wait for `ticks` ticks of `often` to run
    (those that fell due after it started: not the tick due when it started)."""
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    epoch = time.time()
    naive = start.replace(tzinfo=None).isoformat(sep=" ")
    env = {**child_env(), "VIBEPIPER_CLOCK": f"{start.isoformat()}*{RATE:g}@{epoch!r}"}
    server = subprocess.Popen(
        [VIBEPIPER, "serve"], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60 / RATE * (ticks + 3) + 60
        while time.monotonic() < deadline:
            time.sleep(2)
            done = query(
                root,
                "SELECT count(*) AS n FROM ticks WHERE schedule = 'often' AND status = 'succeeded'",
            )
            if done[0]["n"] >= ticks:
                break
    finally:
        server.terminate()
        server.wait(timeout=120)
    found = query(
        root,
        "SELECT epoch(t.launched_at) - epoch(t.scheduled_for) AS launched, "
        "epoch(r.started_at) - epoch(t.scheduled_for) AS started "
        "FROM ticks t JOIN runs r USING (run_id) WHERE t.schedule = 'often' "
        f"AND t.status = 'succeeded' AND t.scheduled_for > '{naive}' ORDER BY t.scheduled_for",
    )
    launched = [r["launched"] / RATE for r in found][:ticks]
    started = [r["started"] / RATE for r in found][:ticks]
    return {"launched_s": launched, "run_started_s": started, **_stats(launched)}


def _stats(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] if ordered else None
    return {
        "median_s": statistics.median(values) if values else None,
        "p99_s": p99,
        "min_s": min(values) if values else None,
        "max_s": max(values) if values else None,
        "n": len(values),
    }


FLOOR_SLEEPER = """
import sys, time
late = []
period = float(sys.argv[1])
due = time.time() + period
for _ in range(int(sys.argv[2])):
    time.sleep(max(0.0, due - time.time()))
    late.append(time.time() - due)
    due += period
print(" ".join(map(str, late)))
"""


def floor_latency(ticks: int) -> dict[str, Any]:
    """A plain script that sleeps until each due time: how late it wakes."""
    out = subprocess.run(
        [PYTHON, "-c", FLOOR_SLEEPER, "0.5", str(ticks)], capture_output=True, text=True
    ).stdout
    return _stats([float(x) for x in out.split()])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(root: Path, seconds: float) -> dict[str, Any]:
    """Serve's CPU while nothing is due: a fake clock at real speed, at noon, with every
    schedule firing at 03:00."""
    noon = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    env = {**child_env(), "VIBEPIPER_CLOCK": noon.isoformat()}
    server = subprocess.Popen(
        [VIBEPIPER, "serve"], cwd=root, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "serving ...": loaded
        settled_after = _wait_idle(server.pid)  # its first evaluation, then the waiting
        before, start = cpu_seconds(server.pid), time.monotonic()
        time.sleep(seconds)
        used, wall = cpu_seconds(server.pid) - before, time.monotonic() - start
    finally:
        server.terminate()
        server.wait(timeout=60)
    return {"cpu_s": used, "wall_s": wall, "share": used / wall, "settled_after_s": settled_after}


def _wait_idle(pid: int, limit: float = 120.0) -> float:
    """Wait until the process has used under 2% of a core in each of two 2-second
    windows in a row (its start-up evaluation is over); how long that took."""
    start = time.monotonic()
    quiet = 0
    while quiet < 2 and time.monotonic() - start < limit:
        before = cpu_seconds(pid)
        time.sleep(2.0)
        quiet = quiet + 1 if cpu_seconds(pid) - before < 0.04 else 0
    return time.monotonic() - start


FLOOR_WATCHER = """
import os, sys, time
paths = [os.path.join(sys.argv[1], n) for n in sorted(os.listdir(sys.argv[1]))]
end = time.monotonic() + float(sys.argv[2])
start = time.process_time()
seen = {}
while time.monotonic() < end:
    for p in paths:
        st = os.stat(p)
        seen[p] = (st.st_size, st.st_mtime_ns, st.st_ino)
    time.sleep(float(sys.argv[3]))
print(time.process_time() - start)
"""


def floor_idle(root: Path, seconds: float) -> dict[str, Any]:
    out = subprocess.run(
        [PYTHON, "-c", FLOOR_WATCHER, str(root / "data"), str(seconds), str(POLL)],
        capture_output=True,
        text=True,
    ).stdout
    used = float(out)
    return {"cpu_s": used, "wall_s": seconds, "share": used / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=30)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle measured")
    parser.add_argument("--files", type=int, default=FILES)
    parser.add_argument("--schedules", type=int, default=SCHEDULES)
    parser.add_argument("--quick", action="store_true", help="a smoke test: 5 ticks, 8 s idle")
    parser.add_argument("--json", type=Path, help="where to write the report")
    parser.add_argument("--dir", type=Path, help="where to build the project (kept)")
    args = parser.parse_args()
    if args.quick:
        args.ticks, args.idle = 5, 8.0
    started = dt.datetime.now(dt.UTC)
    root = args.dir or Path(tempfile.mkdtemp(prefix="vp-bench-automation-"))
    print(f"project in {root}", file=sys.stderr)
    write_project(root, args.files, args.schedules, often=False)
    run([VIBEPIPER, "materialize"], root)
    print("idle CPU ...", file=sys.stderr)
    idle = idle_cpu(root, args.idle)
    idle_floor = floor_idle(root, args.idle)
    print("tick latency ...", file=sys.stderr)
    write_project(root, args.files, args.schedules, often=True)
    latency = tick_latency(root, args.ticks)
    latency_floor = floor_latency(min(args.ticks, 20))
    report = {
        "benchmark": "automation",
        "quick": args.quick,
        "files": args.files,
        "schedules": args.schedules,
        "rate": RATE,
        "results": {
            "tick_latency": latency,
            "tick_latency_floor": latency_floor,
            "idle": idle,
            "idle_floor": idle_floor,
        },
        "environment": environment(PACKAGES, git=git_state(package_dir())),
        "started_at": started.isoformat(),
    }
    out = save_report(report, "automation", args.json, started)
    r = report["results"]
    run_started = _stats(latency["run_started_s"])
    print(
        f"tick latency (launch - due), {latency['n']} ticks: median "
        f"{latency['median_s']:.3f} s, p99 {latency['p99_s']:.3f} s (floor median "
        f"{latency_floor['median_s']:.4f} s); the run's own start: median "
        f"{run_started['median_s']:.3f} s, p99 {run_started['p99_s']:.3f} s\n"
        f"idle CPU, {args.schedules} schedules and {args.files} watched files: "
        f"{r['idle']['share']:.2%} of a core (floor, stat-ing the files every {POLL:g} s: "
        f"{r['idle_floor']['share']:.2%})\nreport: {out}"
    )


if __name__ == "__main__":
    main()
