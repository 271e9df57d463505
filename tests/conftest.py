"""Shared fixtures: tiny asset projects in temporary folders, and ways to run the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner, Result

from vibepiper.cli.main import cli

pytest_plugins = [
    "tests.helpers.cancel",  # the `cancellable` and `materializing` fixtures
    "tests.helpers.s3server",  # `s3_server` and `s3_store`: a real S3-compatible server
]

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


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without VIBEPIPER_HOME, plus `extra` (which may set it)."""
    env = {k: v for k, v in os.environ.items() if k != "VIBEPIPER_HOME"}
    return {**env, **(extra or {})}


def run_cli(
    root: Path, *args: str, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real `vibepiper` CLI, as a subprocess, in `root` (`env` added to a clean one)."""
    return subprocess.run(
        [*VIBEPIPER, *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(env),
    )


def start_cli(
    root: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdout: Any = subprocess.PIPE,
    stderr: Any = subprocess.PIPE,
    new_session: bool = False,
) -> subprocess.Popen[str]:
    """The real `vibepiper` CLI started in `root` and left running (text pipes by default;
    `new_session` puts it in a process group of its own, to signal or kill as a whole)."""
    return subprocess.Popen(
        [*VIBEPIPER, *args],
        cwd=root,
        stdout=stdout,
        stderr=stderr,
        text=True,
        env=cli_env(env),
        start_new_session=new_session,
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

# The command-line flags that choose each executor (two workers where it has workers).
EXECUTOR_ARGS = {
    "inprocess": ["--executor", "inprocess"],
    "threads": ["--executor", "threads", "--workers", "2"],
    "processes": ["--executor", "processes", "--workers", "2"],
    "dask": ["--executor", "dask", "--workers", "2"],
}


@pytest.fixture
def shop(project_dir: Callable[..., Path]) -> Path:
    """A 4-asset project: raw (source) -> clean -> totals, and an independent lonely."""
    return project_dir({"shop": SHOP}, SHOP_DATA)


def make_shop(root: Path) -> Path:
    """The shop project in `root`, materialized (in-process)."""
    write_project(root, {"shop": SHOP}, SHOP_DATA)
    result = invoke(root, "materialize")
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def shared_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop, materialized once per test module; tests only read it."""
    return make_shop(tmp_path_factory.mktemp("shared") / "shop")


@pytest.fixture
def built_shop(shared_shop: Path, tmp_path: Path) -> Path:
    """A copy of the materialized shop, for a test to damage."""
    return Path(shutil.copytree(shared_shop, tmp_path / "shop"))


@pytest.fixture
def forget_project_modules() -> Iterator[None]:
    """In-process loads import project modules and put project folders on sys.path: undo."""
    path = list(sys.path)
    before = set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - before:
        file = getattr(sys.modules[name], "__file__", None) or ""
        if "/pytest-" in file or "/tmp" in file:
            del sys.modules[name]
