"""Benchmark: the web UI of `vibepiper serve` on a large catalog.

    .venv/bin/python bench/ui.py [--assets 2000] [--history 50] [--repeat 30] [--json PATH]
    .venv/bin/python bench/ui.py --quick        # 200 assets, 5 runs of history, 5 requests

A project of `--assets` assets (bench/scale.py's layered graph over 10 modules) is
materialized once; then `--history - 1` older runs of every asset are added to its catalog
(as rows: 2,000 assets x 50 runs = 100,000 materializations), so that each page reads a
catalog the size a busy project reaches. `vibepiper serve --no-schedules` serves it; each
page and API call is requested `--repeat` times after one warm-up request (the first
judgement of every asset), and its time (request to last byte, on loopback: the server's
time) and size are reported: median, 95th percentile, bytes. Goals: p95 <= 150 ms,
pages <= 200 KB (as sent: the server compresses with gzip for browsers that accept it, as
all do; both sizes are reported). With chromium and chromedriver installed, the lineage page of the
largest selection the UI draws (1,400 assets) is loaded in headless Chromium and the time
to its load event is reported. Goal: <= 1 s. Floor: `GET /healthz` (the server's own
overhead), and for the browser, an empty page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import scale
from common import VIBEPIPER, child_env, environment, git_state, package_dir, save_report

PACKAGES = ("vibepiper", "duckdb", "starlette", "uvicorn", "jinja2")


def build(root: Path, assets: int, history: int) -> list[str]:
    """The project, materialized, with its history; its asset names in graph order."""
    made = scale.write_project(root, assets)
    done = subprocess.run(
        [VIBEPIPER, "materialize"], cwd=root, env=child_env(), capture_output=True
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr.decode())
    import duckdb

    con = duckdb.connect(str(root / ".vibepiper" / "catalog.duckdb"))
    try:  # older runs of every asset, made of the current rows (history only: current stays)
        con.execute("BEGIN")
        con.execute(
            "INSERT INTO runs (run_id, started_at, finished_at, status, selection, pid, host, "
            "command, kind, trigger) SELECT printf('20250101T%06d.000-%06x', i, i), "
            "TIMESTAMP '2025-01-01' + INTERVAL (i) HOUR, TIMESTAMP '2025-01-01' + INTERVAL "
            "(i) HOUR + INTERVAL 5 MINUTE, 'succeeded', '', 1, 'bench', 'bench', "
            "'materialize', 'manual' FROM range(?) t(i)",
            [history - 1],
        )
        con.execute(
            "INSERT INTO materializations (materialization_id, run_id, asset, status, "
            "code_version, data_version, row_count, started_at, finished_at, attempts, reason, "
            "quarantined_rows) SELECT printf('20250101T%06d.000-%06x', r.i, r.i) || '-' || "
            "lpad(m.rn::VARCHAR, 5, '0'), printf('20250101T%06d.000-%06x', r.i, r.i), m.asset, "
            "'succeeded', m.code_version, m.data_version, m.row_count, TIMESTAMP '2025-01-01' "
            "+ INTERVAL (r.i) HOUR, TIMESTAMP '2025-01-01' + INTERVAL (r.i) HOUR + INTERVAL 1 "
            "MINUTE, 1, 'bench history', 0 FROM range(?) r(i), (SELECT *, row_number() OVER () "
            "AS rn FROM materializations) m",
            [history - 1],
        )
        con.execute("COMMIT")
    finally:
        con.close()
    return [node.name for node in made.nodes]


def wide_selection(names: list[str], limit: int = 1400) -> tuple[str, int]:
    """Whole layers (`l0_* l1_* ...`) up to `limit` assets: the selection, its size."""
    layers: dict[str, int] = {}
    for name in names:
        layers[name.split("_")[0]] = layers.get(name.split("_")[0], 0) + 1
    chosen, total = [], 0
    for layer, count in layers.items():
        if total + count > limit:
            break
        chosen.append(f"{layer}_*")
        total += count
    return " ".join(chosen), total


def fetch(url: str, gzip: bool = False) -> tuple[float, int]:
    """Seconds to the last byte, and bytes sent (compressed if `gzip` was accepted)."""
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    start = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=120) as r:
        body = r.read()
        assert r.status == 200, (url, r.status)
    return time.perf_counter() - start, len(body)


def measure(base: str, paths: dict[str, str], repeat: int) -> dict[str, Any]:
    results = {}
    for name, path in paths.items():
        fetch(base + path)  # warm-up
        times, size = [], 0
        for _ in range(repeat):
            seconds, size = fetch(base + path)
            times.append(seconds)
        ordered = sorted(times)
        results[name] = {
            "path": path,
            "median_s": statistics.median(times),
            "p95_s": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
            "min_s": ordered[0],
            "max_s": ordered[-1],
            "bytes": size,
            "gzip_bytes": fetch(base + path, gzip=True)[1],
        }
        r = results[name]
        print(
            f"  {name}: p95 {r['p95_s'] * 1000:.1f} ms, {size:,} B ({r['gzip_bytes']:,} B gzipped)",
            file=sys.stderr,
        )
    return results


def browser_lineage(base: str, path: str) -> dict[str, Any] | None:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    script = "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd;"
    try:
        loads, empty = [], []
        nodes = 0
        for _ in range(3):
            driver.get(base + path)
            loads.append(driver.execute_script(script) / 1000)
            nodes = driver.execute_script("return document.querySelectorAll('g.node').length")
            driver.get(base + "/healthz")
            empty.append(driver.execute_script(script) / 1000)
    finally:
        driver.quit()
    return {
        "load_s": statistics.median(loads),
        "loads_s": loads,
        "floor_s": statistics.median(empty),
        "nodes": nodes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=2000)
    parser.add_argument("--history", type=int, default=50, help="runs of every asset")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--dir", type=Path, help="where to build the project (kept)")
    args = parser.parse_args()
    if args.quick:
        args.assets, args.history, args.repeat = 200, 5, 5
    started = dt.datetime.now(dt.UTC)
    root = args.dir or Path(tempfile.mkdtemp(prefix="vp-bench-ui-")) / "project"
    print(f"project in {root}: {args.assets} assets, {args.history} runs each", file=sys.stderr)
    names = build(root, args.assets, args.history)
    wide, wide_n = wide_selection(names)
    deepest = names[-1]
    server = subprocess.Popen(
        [VIBEPIPER, "serve", "--no-schedules", "--port", "0"],
        cwd=root,
        env=child_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().removeprefix("UI: ").strip().rstrip("/")
        runs = json.loads(urllib.request.urlopen(base + "/api/runs?per_page=1").read())
        run_id, last = runs["runs"][0]["run_id"], deepest
        paths = {
            "floor /healthz": "/healthz",
            "overview": "/",
            "runs": "/runs",
            "run (all assets)": f"/runs/{run_id}",
            "assets": "/assets",
            "asset (deepest)": f"/assets/{last}",
            "lineage +asset": f"/lineage?select=%2B{last}",
            f"lineage, {wide_n:,} assets": "/lineage?select=" + urllib.parse.quote(wide),
            "checks": "/checks",
            "api overview": "/api/overview",
            "api assets": "/api/assets",
            "api asset": f"/api/assets/{last}",
            "api run": f"/api/runs/{run_id}",
        }
        results = measure(base, paths, args.repeat)
        lineage = browser_lineage(base, paths[f"lineage, {wide_n:,} assets"])
    finally:
        server.terminate()
        server.wait(timeout=60)
    report = {
        "benchmark": "ui",
        "quick": args.quick,
        "assets": args.assets,
        "materializations": args.assets * args.history,
        "repeat": args.repeat,
        "results": results,
        "browser_lineage": lineage,
        "environment": environment(PACKAGES, git=git_state(package_dir())),
        "started_at": started.isoformat(),
    }
    out = save_report(report, "ui", args.json, started)
    worst = max(
        (r for n, r in results.items() if not n.startswith("floor")), key=lambda r: r["p95_s"]
    )
    biggest = max(r["gzip_bytes"] for r in results.values())
    print(
        f"{args.assets:,} assets, {args.assets * args.history:,} materializations: slowest p95 "
        f"{worst['p95_s'] * 1000:.0f} ms ({worst['path']}), largest page "
        f"{biggest / 1024:.0f} KiB as sent (gzip)"
        + (
            f"; lineage of {lineage['nodes']:,} assets in Chromium: {lineage['load_s']:.2f} s"
            if lineage
            else "; no chromium: the browser figure is left out"
        )
        + f"\nreport: {out}"
    )


if __name__ == "__main__":
    main()
