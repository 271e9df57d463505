"""Shared fixtures: tiny asset projects in temporary folders, and ways to run the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

from vibepiper.cli.main import cli

VIBEPIPER = [sys.executable, "-m", "vibepiper"]

# Tests rewrite modules many times a second: a cached .pyc with the same size and mtime
# second would be imported instead of the new source. Users edit at human speed.
sys.dont_write_bytecode = True
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"


def write_project(
    root: Path, modules: dict[str, str], data: dict[str, str] | None = None, tool: str = ""
) -> Path:
    """A project in `root`: pyproject.toml listing `modules` (name -> source), data files."""
    root.mkdir(parents=True, exist_ok=True)
    names = ", ".join(f'"{m}"' for m in modules if "." not in m and "/" not in m)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "t"\nversion = "0"\n\n[tool.vibepiper]\nmodules = [{names}]\n{tool}'
    )
    for name, source in modules.items():
        path = root / (name if name.endswith(".py") else f"{name}.py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    for rel, text in (data or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture
def project_dir(tmp_path: Path) -> Callable[..., Path]:
    """Call with (modules, data=None) to get a project folder."""

    def make(modules: dict[str, str], data: dict[str, str] | None = None, tool: str = "") -> Path:
        return write_project(tmp_path / "proj", modules, data, tool)

    return make


REPO = Path(__file__).resolve().parents[1]


def copy_example(root: Path) -> Path:
    """The bundled example project (assets_example/ and pyproject.toml) copied into `root`."""
    shutil.copytree(
        REPO / "assets_example",
        root / "assets_example",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def run_cli(
    root: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real `vibepiper` CLI, as a subprocess, in `root`."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("VIBEPIPER_HOME", None)
    return subprocess.run(
        [*VIBEPIPER, *args], cwd=root, capture_output=True, text=True, timeout=timeout, env=full_env
    )


def invoke(root: Path, *args: str) -> Result:
    """The CLI in-process through click's CliRunner (fast; for output and exit codes)."""
    return CliRunner().invoke(cli, ["--project", str(root), *args], catch_exceptions=False)


def catalog_rows(root: Path, sql: str, params: list[object] | None = None) -> list[tuple]:
    """Rows straight from the project's catalog file (read-only), bypassing VibePiper."""
    con = duckdb.connect(str(root / ".vibepiper" / "catalog.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


# The catalog columns SPEC §6 promises.
SPEC_COLUMNS = {
    "runs": {"run_id", "started_at", "finished_at", "status", "selection"},
    "materializations": {
        "materialization_id",
        "run_id",
        "asset",
        "status",
        "code_version",
        "data_version",
        "row_count",
        "started_at",
        "finished_at",
        "error",
    },
    "lineage": {"materialization_id", "upstream_asset", "upstream_data_version"},
    "check_results": {
        "materialization_id",
        "check_name",
        "severity",
        "passed",
        "failing_rows",
        "message",
        "sample",
    },
}


SHOP = """
import pandas as pd
from vibepiper import asset, source_file

raw = source_file("raw", "data/raw.csv")

@asset(tags=["core"], group="staging")
def clean(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.dropna().reset_index(drop=True)

@asset(group="marts")
def totals(clean: pd.DataFrame, factor: int = 2) -> pd.DataFrame:
    return clean.assign(total=clean.n * factor)

@asset(group="marts", tags=["core"])
def lonely() -> pd.DataFrame:
    return pd.DataFrame({"x": [1, 2, 3]})
"""

SHOP_DATA = {"data/raw.csv": "n\n1\n2\n3\n"}


@pytest.fixture
def shop(project_dir: Callable[..., Path]) -> Path:
    """A 4-asset project: raw (source) -> clean -> totals, and an independent lonely."""
    return project_dir({"shop": SHOP}, SHOP_DATA)
