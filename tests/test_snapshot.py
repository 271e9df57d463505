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


# -- an edit imports only the modules it touches ----------------------------------------

MARK = 'from pathlib import Path\nPath(__file__).with_name("imported-{name}").write_text("")\n'

PARTS = {
    "alpha": MARK.format(name="alpha")
    + """
import pandas as pd
from vibepiper import asset


@asset
def a1() -> pd.DataFrame:
    return pd.DataFrame({"n": [1, 2, 3]})


@asset
def a2() -> pd.DataFrame:
    return pd.DataFrame({"n": [10, 20]})
""",
    "helpers.py": MARK.format(name="helpers") + "RATE = 2\n",
    "beta": MARK.format(name="beta")
    + """
import pandas as pd
from vibepiper import asset
from helpers import RATE


@asset
def b1(a1: pd.DataFrame) -> pd.DataFrame:
    return a1.assign(n=a1.n * RATE)
""",
    "gamma": MARK.format(name="gamma")
    + """
import pandas as pd
from vibepiper import check


@check(asset="b1")
def b1_positive(b1: pd.DataFrame) -> bool:
    return bool((b1.n > 0).all())
""",
    "delta": MARK.format(name="delta")
    + """
import pandas as pd
from vibepiper import asset


@asset
def d1(a2: pd.DataFrame) -> pd.DataFrame:
    return a2.assign(m=a2.n + 1)
""",
}


@pytest.fixture
def parts(project_dir: Callable[..., Path]) -> Path:
    root = project_dir(PARTS)
    assert run_cli(root, "materialize").returncode == 0
    return root


def imported_now(root: Path) -> set[str]:
    found = {p.name.removeprefix("imported-") for p in root.glob("imported-*")}
    for marker in root.glob("imported-*"):
        marker.unlink()
    return found


def edit_file(root: Path, name: str, old: str, new: str) -> None:
    path = root / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def stale(root: Path) -> list[str]:
    proc = run_cli(root, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    return sorted(row["name"] for row in json.loads(proc.stdout) if not row["fresh"])


def agrees_with_a_full_import(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The code versions the partly imported project has are those a full import gives."""
    from vibepiper import Project

    partly = Project(root)
    with monkeypatch.context() as env:
        env.setenv("VIBEPIPER_NO_SNAPSHOT", "1")
        fully = Project(root)
    assert {n: c.version for n, c in partly.codes.items()} == {
        n: c.version for n, c in fully.codes.items()
    }
    assert partly.graph.order == fully.graph.order
    assert partly.list_rows(partly.assets) == fully.list_rows(fully.assets)


def test_an_edit_imports_only_its_module(parts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    imported_now(parts)
    edit_file(parts, "alpha.py", "[10, 20]", "[10, 30]")
    assert stale(parts) == ["a2", "d1"]
    assert imported_now(parts) == {"alpha"}
    agrees_with_a_full_import(parts, monkeypatch)
    imported_now(parts)
    proc = run_cli(parts, "materialize")
    assert proc.returncode == 0, proc.stderr
    # a2's new data makes d1 compute: delta's code is imported for it
    assert "2 succeeded" in proc.stdout and imported_now(parts) >= {"alpha", "delta"}
    assert stale(parts) == []


def test_an_edit_whose_asset_alone_computes_imports_nothing_more(parts: Path) -> None:
    """The edited asset's data comes out the same: nothing downstream computes, and no
    other module is imported (the run takes the edited module's code as it was loaded)."""
    edit_file(parts, "alpha.py", "[10, 20]})", "[10, 20]}).copy()")  # the same data
    imported_now(parts)
    proc = run_cli(parts, "materialize")
    assert proc.returncode == 0 and "1 succeeded" in proc.stdout, proc.stdout
    assert imported_now(parts) == {"alpha"}


def test_an_edited_helper_imports_the_modules_that_import_it(
    parts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported_now(parts)
    edit_file(parts, "helpers.py", "RATE = 2", "RATE = 3")
    assert stale(parts) == ["b1"]
    # beta imports helpers; gamma holds a check on beta's asset: its code version covers it
    assert imported_now(parts) == {"helpers", "beta", "gamma"}
    agrees_with_a_full_import(parts, monkeypatch)


def test_an_edited_check_makes_its_asset_stale(
    parts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported_now(parts)
    edit_file(parts, "gamma.py", "b1.n > 0", "b1.n >= 0")
    assert stale(parts) == ["b1"]
    assert imported_now(parts) == {"helpers", "beta", "gamma"}
    agrees_with_a_full_import(parts, monkeypatch)
    assert run_cli(parts, "materialize").returncode == 0
    assert stale(parts) == []


def test_an_asset_removed_or_added_by_an_edit(parts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit_file(parts, "alpha.py", "@asset\ndef a2()", "def a2()")  # no longer an asset
    proc = run_cli(parts, "status")
    assert proc.returncode != 0 and "a2" in proc.stderr  # d1 reads an asset that is gone
    edit_file(parts, "alpha.py", "def a2()", "@asset\ndef a2()")
    edit_file(parts, "delta.py", "def d1(", "def d1_new(")
    listing = json.loads(run_cli(parts, "list", "--json").stdout)
    assert sorted(r["name"] for r in listing) == ["a1", "a2", "b1", "d1_new"]
    agrees_with_a_full_import(parts, monkeypatch)


def test_an_edit_that_defines_an_asset_twice_is_refused(parts: Path) -> None:
    edit_file(parts, "delta.py", "def d1(", "def b1(")
    proc = run_cli(parts, "status")
    assert proc.returncode != 0 and "'b1' is defined twice" in proc.stderr


def test_an_edited_pyproject_imports_everything(parts: Path) -> None:
    imported_now(parts)
    (parts / "pyproject.toml").write_text((parts / "pyproject.toml").read_text() + "\n")
    assert stale(parts) == []
    assert imported_now(parts) == {"alpha", "beta", "gamma", "delta", "helpers"}


def test_a_snapshot_naming_a_module_outside_the_tree_imports_everything(parts: Path) -> None:
    """Names read from the snapshot are imported when their files change: a forged one
    (an installed module, say) makes the snapshot unusable, never an import of it."""
    path = parts / ".vibepiper" / snapshot.FILENAME
    data = json.loads(path.read_text())
    data["tree"].append("antigravity")
    data["modules"]["antigravity"] = str(parts / "alpha.py")
    path.write_text(json.dumps(data))
    imported_now(parts)
    edit_file(parts, "alpha.py", "[10, 20]", "[10, 30]")
    assert stale(parts) == ["a2", "d1"]
    assert imported_now(parts) == {"alpha", "beta", "gamma", "delta", "helpers"}


# -- entries leave out what most assets have ---------------------------------------------

VARIED = """
from datetime import timedelta

import pandas as pd
import pandera.pandas as pa
from vibepiper import asset, expect, source_file

raw = source_file("raw", "data/raw.csv")


class Doubled(pa.DataFrameModel):
    n: int


@asset
def plain(raw: pd.DataFrame) -> pd.DataFrame:
    return raw


@asset(
    tags=["core", "daily"],
    group="marts",
    schema=Doubled,
    checks=[expect.not_null("n")],
    max_age=timedelta(hours=2),
)
def doubled(plain: pd.DataFrame, factor: int = 2) -> pd.DataFrame:
    '''Twice the raw numbers.'''
    return plain.assign(n=plain.n * factor)
"""


def test_a_snapshot_answers_as_a_full_import_does(project_dir: Callable[..., Path]) -> None:
    root = project_dir({"varied": VARIED}, {"data/raw.csv": "n\n1\n2\n"})
    assert run_cli(root, "materialize").returncode == 0
    saved = json.loads((root / ".vibepiper" / "snapshot.json").read_text())
    entries = {entry["name"]: entry for entry in saved["assets"]}
    assert "tags" not in entries["plain"] and entries["doubled"]["tags"] == ["core", "daily"]

    for command in (["list", "--json"], ["status", "--json"], ["explain", "doubled"]):
        from_snapshot = run_cli(root, *command)
        imported = run_cli(root, *command, env={"VIBEPIPER_NO_SNAPSHOT": "1"})
        assert from_snapshot.returncode == imported.returncode == 0, from_snapshot.stderr
        assert from_snapshot.stdout == imported.stdout


@pytest.mark.parametrize("entry", [["plain"], {"name": "plain", 1: "x"}, "plain", None])
def test_a_snapshot_entry_that_is_not_one_is_not_used(proj: Path, entry: object) -> None:
    path = proj / ".vibepiper" / "snapshot.json"
    saved = json.loads(path.read_text())
    saved["assets"][0] = entry
    path.write_text(json.dumps(saved))
    imported(proj)

    proc = run_cli(proj, "status")

    assert proc.returncode == 0, proc.stderr
    assert imported(proj)  # the snapshot was not used: the project was imported


def test_list_from_a_snapshot_sees_an_asset_added_since(proj: Path) -> None:
    """`list` of every asset reads the snapshot's rows alone while no file changed, and
    imports again the module an edit added an asset to."""
    assert [r["name"] for r in json.loads(run_cli(proj, "list", "--json").stdout)] == [
        "raw",
        "doubled",
    ]
    module = proj / "snap.py"
    module.write_text(
        module.read_text()
        + "\n\n@asset\ndef added(doubled: pd.DataFrame) -> pd.DataFrame:\n    return doubled\n"
    )
    imported(proj)
    listing = json.loads(run_cli(proj, "list", "--json").stdout)
    assert [r["name"] for r in listing] == ["raw", "doubled", "added"]
    assert listing[2]["deps"] == ["doubled"]
    assert imported(proj)


@pytest.mark.parametrize("forged", ["../x", 3, None])
def test_list_refuses_a_snapshot_row_with_a_forged_name(proj: Path, forged: object) -> None:
    path = proj / ".vibepiper" / "snapshot.json"
    saved = json.loads(path.read_text())
    saved["listing"][0]["name"] = forged
    path.write_text(json.dumps(saved))
    imported(proj)

    listing = json.loads(run_cli(proj, "list", "--json").stdout)

    assert [r["name"] for r in listing] == ["raw", "doubled"]
    assert imported(proj)  # the snapshot was not used: the project was imported
