"""The definitions snapshot: commands that only judge or read skip importing the project's
modules while its files are unchanged, and never give a different answer for it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from vibepiper import snapshot

from .conftest import run_cli

MODULE = """
from pathlib import Path
Path(__file__).with_name("imported.txt").write_text("yes")  # marks each import

import pandas as pd
from vibepiper import asset, source_file

raw = source_file("raw", "data/raw.csv")


@asset(tags=["core"])
def doubled(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.assign(d=raw.n * 2)
"""


@pytest.fixture
def proj(project_dir: Callable[..., Path]) -> Path:
    root = project_dir({"snap": MODULE}, {"data/raw.csv": "n\n1\n2\n"})
    assert run_cli(root, "materialize").returncode == 0
    return root


def imported(root: Path) -> bool:
    marker = root / "imported.txt"
    found = marker.exists()
    marker.unlink(missing_ok=True)
    return found


def test_fresh_commands_do_not_import_the_project(proj: Path) -> None:
    imported(proj)
    proc = run_cli(proj, "materialize")
    assert proc.returncode == 0 and "2 skipped" in proc.stdout
    assert not imported(proj)
    assert json.loads(run_cli(proj, "status", "--json").stdout)[1]["fresh"] is True
    listing = json.loads(run_cli(proj, "list", "--json").stdout)
    assert [r["name"] for r in listing] == ["raw", "doubled"] and listing[1]["tags"] == ["core"]
    assert "d" in run_cli(proj, "show", "doubled").stdout
    assert run_cli(proj, "materialize", "--dry-run").returncode == 0
    assert not imported(proj)


def test_a_changed_source_loads_the_code_to_recompute(proj: Path) -> None:
    imported(proj)
    (proj / "data" / "raw.csv").write_text("n\n5\n")
    proc = run_cli(proj, "materialize")
    assert proc.returncode == 0 and "2 succeeded" in proc.stdout
    assert imported(proj)


def test_an_edited_module_is_imported_again(proj: Path) -> None:
    imported(proj)
    module = proj / "snap.py"
    module.write_text(module.read_text().replace("raw.n * 2", "raw.n * 3"))
    status = json.loads(run_cli(proj, "status", "--json").stdout)
    assert status[1]["reasons"] == ["code changed"]
    assert imported(proj)


def test_a_touched_but_unchanged_module_keeps_the_snapshot(proj: Path) -> None:
    imported(proj)
    module = proj / "snap.py"
    module.write_text(module.read_text())
    assert run_cli(proj, "materialize").returncode == 0
    assert not imported(proj)


def test_a_changed_library_version_or_opt_out_imports(proj: Path) -> None:
    imported(proj)
    snapshot = proj / ".vibepiper" / "snapshot.json"
    data = json.loads(snapshot.read_text())
    data["libraries"]["pandas"] = data["libraries"]["pandas"].replace("pandas-", "pandas-0.0.1-")
    snapshot.write_text(json.dumps(data))
    assert run_cli(proj, "materialize").returncode == 0
    assert imported(proj)
    proc = run_cli(proj, "materialize", env={"VIBEPIPER_NO_SNAPSHOT": "1"})
    assert proc.returncode == 0 and imported(proj)


def test_a_new_module_in_a_package_is_found(project_dir: Callable[..., Path]) -> None:
    root = project_dir(
        {
            "pkg/__init__.py": "",
            "pkg/first.py": MODULE.replace(
                'with_name("imported.txt")', 'parent.parent.joinpath("imported.txt")'
            ),
        },
        {"data/raw.csv": "n\n1\n"},
        tool="",
    )
    (root / "pyproject.toml").write_text('[tool.vibepiper]\nmodules = ["pkg"]\n')
    assert run_cli(root, "materialize").returncode == 0
    (root / "pkg" / "second.py").write_text(
        "import pandas as pd\nfrom vibepiper import asset\n\n\n@asset\n"
        "def extra() -> pd.DataFrame:\n    return pd.DataFrame({'x': [1]})\n"
    )
    proc = run_cli(root, "materialize")
    assert proc.returncode == 0 and "extra" in proc.stdout and "1 succeeded" in proc.stdout


def test_a_corrupt_snapshot_is_ignored(proj: Path) -> None:
    (proj / ".vibepiper" / "snapshot.json").write_text("{not json")
    proc = run_cli(proj, "materialize")
    assert proc.returncode == 0 and "2 skipped" in proc.stdout
    saved = json.loads((proj / ".vibepiper" / "snapshot.json").read_text())
    assert saved["format"] == snapshot.FORMAT
