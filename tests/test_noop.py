"""What a run that has nothing to do does (issue "performance at scale"): it looks at each
stored file's identity (size, mtime, inode), not inside it, once the file was found sound;
a file that changed is looked at again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import catalog_rows, cli_env, run_cli, write_project

CHAIN = """
import pandas as pd
from vibepiper import asset

@asset
def first() -> pd.DataFrame:
    return pd.DataFrame({"x": range(100)})

@asset
def second(first: pd.DataFrame) -> pd.DataFrame:
    return first.assign(y=first.x * 2)
"""


def stored_file(root: Path, asset: str) -> Path:
    [(version,)] = catalog_rows(
        root, "SELECT data_version FROM current_materializations WHERE asset = ?", [asset]
    )
    return root / ".vibepiper" / "store" / asset / f"{version}.parquet"


def states(done_stdout: str) -> dict[str, str]:
    return {
        line.split()[1]: line.split()[2]
        for line in done_stdout.splitlines()
        if line.startswith("[")
    }


def rewrite_in_place(path: Path, data: bytes) -> None:
    """New bytes in the same file (same inode), the same size and mtime as before: what
    only a look inside can see."""
    before = os.stat(path)
    assert len(data) == before.st_size
    with path.open("r+b") as file:
        file.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )


def test_a_no_op_does_not_open_stored_files_found_sound(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"pipeline": CHAIN})
    assert run_cli(root, "materialize").returncode == 0
    assert run_cli(root, "materialize").returncode == 0  # looked at: remembered as sound
    path = stored_file(root, "first")
    rewrite_in_place(path, b"\0" * path.stat().st_size)

    noop = run_cli(root, "materialize", "-v")  # had it looked inside, it would recompute `first`
    assert noop.returncode == 0, noop.stdout + noop.stderr
    assert states(noop.stdout) == {"first": "skipped", "second": "skipped"}

    # What the look does not see, doctor does: it reads every file.
    doctor = run_cli(root, "doctor", "--json")
    assert doctor.returncode == 1
    assert not json.loads(doctor.stdout)["healthy"]


def test_a_stored_file_that_changed_is_looked_at_again(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"pipeline": CHAIN})
    assert run_cli(root, "materialize").returncode == 0
    assert states(run_cli(root, "materialize", "-v").stdout) == {
        "first": "skipped",
        "second": "skipped",
    }
    path = stored_file(root, "first")
    path.write_bytes(stored_file(root, "second").read_bytes())  # another file: a new size

    again = run_cli(root, "materialize")
    assert again.returncode == 0, again.stdout + again.stderr
    assert states(again.stdout)["first"] == "succeeded"  # damaged, so computed again


def test_what_the_store_remembers_is_input_too(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"pipeline": CHAIN})
    assert run_cli(root, "materialize").returncode == 0
    assert run_cli(root, "materialize").returncode == 0
    memo = root / ".vibepiper" / "sound-files.json"
    assert memo.exists()
    for garbage in ("[1, 2]", "{not json", json.dumps({"first/x.parquet": "yes", "../..": [1]})):
        memo.write_text(garbage)
        path = stored_file(root, "first")
        path.write_bytes(stored_file(root, "second").read_bytes())
        done = run_cli(root, "materialize")
        assert done.returncode == 0, done.stdout + done.stderr
        assert states(done.stdout)["first"] == "succeeded"


def test_a_file_with_an_empty_footer_is_damaged(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"pipeline": CHAIN})
    assert run_cli(root, "materialize").returncode == 0
    stored_file(root, "first").write_bytes(b"PAR1" + b"\0" * 50 + b"PAR1")
    again = run_cli(root, "materialize")
    assert again.returncode == 0, again.stdout + again.stderr
    assert states(again.stdout)["first"] == "succeeded"


def test_a_run_with_nothing_to_do_prints_its_summary_alone(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"pipeline": CHAIN})
    assert run_cli(root, "materialize").returncode == 0
    quiet = run_cli(root, "materialize")
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stdout.splitlines()
    assert len(lines) == 3 and lines[0].endswith(": 2 assets")
    assert lines[1].endswith("succeeded: 2 skipped")
    assert lines[2] == "nothing to do: 2 assets fresh (-v lists them)"
    listed = run_cli(root, "materialize", "-v").stdout
    assert states(listed) == {"first": "skipped", "second": "skipped"}
    assert "nothing to do" not in listed
    # Once something happens, the skipped assets before it are shown too, in order.
    (root / "pipeline.py").write_text(CHAIN.replace("x * 2", "x * 3"))
    partly = run_cli(root, "materialize").stdout
    assert [ln.split()[1:3] for ln in partly.splitlines() if ln.startswith("[")] == [
        ["first", "skipped"],
        ["second", "succeeded"],
    ]
    assert "nothing to do" not in partly


def many_assets(n: int) -> str:
    return "import pandas as pd\nfrom vibepiper import asset\n" + "".join(
        f"\n\n@asset\ndef a{i}() -> pd.DataFrame:\n    return pd.DataFrame({{'x': [{i}]}})\n"
        for i in range(n)
    )


def noop_catalog_work(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """(connections, INSERT statements) of a no-op materialize, in this process."""
    from vibepiper import Project
    from vibepiper.catalog import catalog

    counts = {"connect": 0, "insert": 0}
    connect, insert = catalog.Catalog.connect, catalog._insert

    def counting_connect(self: catalog.Catalog, **kwargs: Any) -> Any:
        counts["connect"] += 1
        return connect(self, **kwargs)

    def counting_insert(con: Any, table: str, rows: list[dict[str, Any]]) -> None:
        counts["insert"] += bool(rows)
        insert(con, table, rows)

    with monkeypatch.context() as patch:
        patch.setattr(catalog.Catalog, "connect", counting_connect)
        patch.setattr(catalog, "_insert", counting_insert)
        result = Project(root).materialize()
    assert set(result.states.values()) == {"skipped"}
    return counts["connect"], counts["insert"]


def test_a_no_op_writes_the_catalog_in_as_many_statements_at_any_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = []
    for n in (2, 40):
        root = write_project(tmp_path / f"p{n}", {"pipeline": many_assets(n)})
        assert run_cli(root, "materialize").returncode == 0
        work.append(noop_catalog_work(root, monkeypatch))

    assert work[0] == work[1]
    assert work[0][1] > 0  # the run and its skipped assets are recorded


# What a no-op touches, seen from inside the real CLI process: every file it opens (an
# audit hook) and every module it imported (sys.modules at its end).
WATCHED_CLI = """
import sys

seen = []

def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)):
        seen.append(("open", str(args[0])))

sys.addaudithook(hook)
from vibepiper.cli.main import main

try:
    main()
finally:
    seen += [("import", name) for name in list(sys.modules)]
    with open(sys.argv[0] + ".seen", "w") as out:
        out.write("\\n".join(f"{kind} {what}" for kind, what in seen))
"""


def watched_run(root: Path, *args: str) -> tuple[set[str], set[str]]:
    """(files opened, modules imported) by `vibepiper ARGS` in `root`."""
    script = root.parent / "watched_cli.py"
    script.write_text(WATCHED_CLI)
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
        env=cli_env(None),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    seen = Path(f"{script}.seen").read_text().splitlines()
    opened = {line.split(" ", 1)[1] for line in seen if line.startswith("open ")}
    imported = {line.split(" ", 1)[1] for line in seen if line.startswith("import ")}
    return opened, imported


@pytest.mark.parametrize("command", [("materialize",), ("status",)])
def test_a_no_op_opens_no_stored_file_and_imports_no_project_module(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    root = write_project(tmp_path / "proj", {"pipeline": CHAIN, "more": many_assets(30)})
    assert run_cli(root, "materialize").returncode == 0
    assert run_cli(root, "materialize").returncode == 0  # every stored file found sound

    opened, imported = watched_run(root, *command)

    store = root / ".vibepiper" / "store"
    assert not [path for path in opened if Path(path).is_relative_to(store)]
    assert not imported & {"pipeline", "more", "pandas"}
    # The check sees what it should: a run that computes opens and imports them.
    (root / "pipeline.py").write_text(CHAIN.replace("x * 2", "x * 3"))
    opened, imported = watched_run(root, "materialize")
    assert {"pipeline", "pandas"} <= imported and "more" not in imported
    assert [path for path in opened if Path(path).is_relative_to(store)]
