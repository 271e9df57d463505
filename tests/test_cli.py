"""End to end: the real `vibepiper` CLI as a subprocess, asserting on files and catalog rows."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .conftest import SPEC_COLUMNS, catalog_rows, copy_example, invoke, run_cli
from .conftest import VIBEPIPER as VIBEPIPER_CMD

REPO = Path(__file__).resolve().parents[1]


def test_materialize_writes_parquet_and_catalog(shop: Path) -> None:
    proc = run_cli(shop, "materialize")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(
        # the counter counts finished assets: under load, lonely may finish before raw
        line.split("] ", 1)[-1].startswith("raw") and "succeeded" in line and "3 rows" in line
        for line in lines
    )
    assert "4 succeeded" in lines[-1]
    rows = catalog_rows(
        shop, "SELECT asset, status, data_version, row_count FROM materializations ORDER BY asset"
    )
    assert [r[:2] for r in rows] == [
        ("clean", "succeeded"),
        ("lonely", "succeeded"),
        ("raw", "succeeded"),
        ("totals", "succeeded"),
    ]
    for asset, _, version, count in rows:
        files = list((shop / ".vibepiper" / "store" / asset).glob("*.parquet"))
        assert [f.name for f in files] == [f"{version}.parquet"]
        assert count == 3
    assert not list((shop / ".vibepiper" / "store").rglob("*.tmp"))
    (run,) = catalog_rows(shop, "SELECT status, selection, finished_at IS NOT NULL FROM runs")
    assert run == ("succeeded", "", True)


def test_failing_asset_exits_1_with_summary(project_dir: Callable[..., Path]) -> None:
    root = project_dir(
        {
            "m": """
import pandas as pd
from vibepiper import asset

@asset
def good() -> pd.DataFrame:
    return pd.DataFrame({"a": [1]})

@asset
def bad(good: pd.DataFrame) -> pd.DataFrame:
    return good["missing_column"]

@asset
def later(bad: pd.DataFrame) -> pd.DataFrame:
    return bad
"""
        }
    )
    proc = run_cli(root, "materialize")
    assert proc.returncode == 1
    assert "bad failed: KeyError: 'missing_column'" in proc.stdout
    assert "blocked: later" in proc.stdout
    assert "vibepiper materialize 'bad+'" in proc.stdout
    states = dict(catalog_rows(root, "SELECT asset, status FROM materializations"))
    assert states == {"good": "succeeded", "bad": "failed", "later": "blocked"}
    assert not (root / ".vibepiper" / "store" / "bad").exists()


def test_usage_errors_exit_2_with_one_line(shop: Path) -> None:
    proc = run_cli(shop, "materialize", "totls")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: unknown asset 'totls' in selector 'totls' "
        "(did you mean 'totals'?); run `vibepiper list` to see the "
        "assets"
    )
    proc = run_cli(shop, "materialize", "x/../y")
    assert proc.returncode == 2 and "not valid" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli(shop, "materialize", "--no-such-option")
    assert proc.returncode == 2


def test_history_show_status_list_after_a_run(shop: Path) -> None:
    assert run_cli(shop, "materialize").returncode == 0
    (shop / "data" / "raw.csv").write_text("n\n5\n6\n")
    assert run_cli(shop, "materialize").returncode == 0

    history = json.loads(run_cli(shop, "history", "totals", "--json").stdout)
    assert [h["status"] for h in history] == ["succeeded", "succeeded"]
    assert history[0]["row_count"] == 2 and history[1]["row_count"] == 3
    assert history[0]["inputs"][0]["asset"] == "clean"
    assert SPEC_COLUMNS["materializations"] | {"inputs", "checks"} <= set(history[0])
    text = invoke(shop, "history", "totals").output
    assert "succeeded" in text and history[0]["data_version"][:12] in text

    shown = run_cli(shop, "show", "totals")
    assert shown.returncode == 0 and "total" in shown.stdout and "12" in shown.stdout
    older = run_cli(shop, "show", "totals", "--version", history[1]["data_version"][:12])
    assert "6" in older.stdout and "(3 of 3 rows" in older.stderr
    assert json.loads(invoke(shop, "show", "clean", "--json").output) == [{"n": 5}, {"n": 6}]

    status = json.loads(run_cli(shop, "status", "--json").stdout)
    assert sorted(status, key=lambda s: s["name"]) == [
        {"name": n, "fresh": True, "reasons": []} for n in ("clean", "lonely", "raw", "totals")
    ]
    listing = json.loads(invoke(shop, "list", "--json").output)
    assert next(r for r in listing if r["name"] == "totals") == {
        "name": "totals",
        "deps": ["clean"],
        "tags": [],
        "group": "marts",
        "description": "",
        "checks": [],
        "schema": None,
        "source": None,
        "partitions": None,
    }
    core = json.loads(invoke(shop, "list", "tag:core", "--json").output)
    assert sorted(r["name"] for r in core) == ["clean", "lonely"]


def test_status_and_dry_run_explain_staleness_without_running(shop: Path) -> None:
    status = json.loads(invoke(shop, "status", "--json").output)
    assert all(s["reasons"] == ["never materialized"] for s in status)
    assert run_cli(shop, "materialize").returncode == 0
    (shop / "data" / "raw.csv").write_text("n\n9\n")
    plan = invoke(shop, "materialize", "--dry-run")
    assert plan.exit_code == 0
    assert "run  raw     source data/raw.csv changed" in plan.output
    assert "run  clean   upstream raw will be recomputed" in plan.output
    assert "skip lonely  fresh" in plan.output
    assert len(catalog_rows(shop, "SELECT * FROM runs")) == 1  # a dry run records nothing


def test_query_outputs_and_read_only(shop: Path) -> None:
    assert run_cli(shop, "materialize").returncode == 0
    proc = run_cli(
        shop,
        "query",
        "--json",
        "SELECT t.total, m.status FROM totals t, materializations m "
        "WHERE m.asset = 'totals' ORDER BY t.total",
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert rows == [
        {"total": 2, "status": "succeeded"},
        {"total": 4, "status": "succeeded"},
        {"total": 6, "status": "succeeded"},
    ]
    runs = json.loads(invoke(shop, "query", "--json", "SELECT started_at FROM runs").output)
    assert "T" in runs[0]["started_at"]  # ISO 8601
    out = invoke(shop, "query", "--csv", "SELECT n FROM clean ORDER BY n").output
    assert list(csv.reader(io.StringIO(out))) == [["n"], ["1"], ["2"], ["3"]]
    before = sorted(p.name for p in (shop / ".vibepiper").rglob("*"))
    for sql in (
        "DROP TABLE runs",
        "DELETE FROM catalog.runs",
        f"COPY runs TO '{shop / 'leak.csv'}'",
    ):
        proc = run_cli(shop, "query", sql)
        assert proc.returncode == 2 and proc.stderr.startswith("error: query failed"), sql
    assert not (shop / "leak.csv").exists()
    assert sorted(p.name for p in (shop / ".vibepiper").rglob("*")) == before
    assert len(catalog_rows(shop, "SELECT * FROM runs")) == 1


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from vibepiper.cli.main import cli\n"
        "try:\n"
        "    cli(['--help'], prog_name='vibepiper')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('pandas', 'pandera', 'pyarrow', 'duckdb', 'numpy', 'rich')\n"
        "         if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stderr
    assert "materialize" in proc.stdout
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import vibepiper, sys; "
            "print(sorted(m for m in ('pandas','pyarrow','duckdb','pandera') "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip() == "[]"


def test_init_creates_a_project_that_materializes(tmp_path: Path) -> None:
    target = tmp_path / "new"
    proc = run_cli(tmp_path, "init", str(target))
    assert proc.returncode == 0, proc.stderr
    proc = run_cli(target, "materialize")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 succeeded" in proc.stdout
    assert "countries | 6 of 6 cities kept" in proc.stderr  # context.log reaches the user
    again = run_cli(tmp_path, "init", str(target))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_example_project_materializes(tmp_path: Path) -> None:
    """The README's first command: `vibepiper materialize` on the bundled example."""
    copy_example(tmp_path)
    proc = run_cli(tmp_path, "materialize")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    states = dict(catalog_rows(tmp_path, "SELECT asset, status FROM materializations"))
    assert len(states) >= 8 and set(states.values()) == {"succeeded"}
    history = run_cli(tmp_path, "history", "customers")
    assert history.returncode == 0 and "succeeded" in history.stdout
    shown = run_cli(tmp_path, "show", "customers", "--limit", "3")
    assert shown.returncode == 0 and "customer_lifetime_value" in shown.stdout


def test_readme_first_command_runs_the_example_from_the_repository_root(tmp_path: Path) -> None:
    """`vibepiper materialize` in the repository itself (home elsewhere, to leave it clean)."""
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("vibepiper")),
            "--home",
            str(tmp_path / "home"),
            "materialize",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every_customer_ordered [warn]" in proc.stdout  # the example's warning shows
    assert (tmp_path / "home" / "catalog.duckdb").is_file()


def test_progress_on_a_terminal_has_a_bar_and_a_line_per_asset(shop: Path) -> None:
    """On a real terminal (a pty), rich draws a live bar and one coloured line per asset."""
    import os
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*VIBEPIPER_CMD, "materialize"],
        cwd=shop,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "COLUMNS": "100"},
    )
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = output.decode()
    assert "━━━━" in text  # the bar
    assert "✓ totals" in text and "4 rows" not in text and "3 rows" in text
    assert "run " in text and "4 succeeded" in text
