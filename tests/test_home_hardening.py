"""The home folder under hostile conditions: a home the user may only read, a catalog the
user may not write, two projects pointed at one home, and which folder a relative home is
relative to.

The real CLI as a subprocess on real files. Tests run as root, for whom permission bits do
not apply: the "reader" runs as root without the capabilities that override them
(CAP_DAC_OVERRIDE and friends, dropped from its bounding set before it starts), on files
given to user `nobody` with modes 755/644 — another user's project, as far as the kernel
is concerned. Run as anyone else, the files are made read-only instead.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from .conftest import SHOP, SHOP_DATA, VIBEPIPER, run_cli, write_project

NOBODY = 65534
_PR_CAPBSET_DROP = 24
# CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID: what lets root ignore modes
_OVERRIDES = (1, 2, 3, 4)


def _drop_overrides() -> None:
    """In the child, before exec: give up what lets root write files it may not."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _OVERRIDES:
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def as_reader(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in `root`, as a user bound by the files' permission bits."""
    env = {k: v for k, v in os.environ.items() if k != "VIBEPIPER_HOME"}
    return subprocess.run(
        [*VIBEPIPER, *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        preexec_fn=_drop_overrides if os.geteuid() == 0 else None,
    )


def give_away(*paths: Path) -> None:
    """Make `paths` (and what is under them) another user's: readable, not writable."""
    for top in paths:
        for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
            if os.geteuid() == 0:
                os.chown(path, NOBODY, NOBODY)
                path.chmod(0o755 if path.is_dir() else 0o644)
            else:
                path.chmod(0o555 if path.is_dir() else 0o444)


def take_back(*paths: Path) -> None:
    for top in paths:
        for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
            path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.fixture(scope="module")
def permissions_apply(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip, saying why, where a reader cannot be kept from writing another's file."""
    probe = tmp_path_factory.mktemp("probe") / "file"
    probe.write_text("")
    give_away(probe)
    try:
        result = subprocess.run(
            [VIBEPIPER[0], "-c", f"open({str(probe)!r}, 'a')"],
            capture_output=True,
            preexec_fn=_drop_overrides if os.geteuid() == 0 else None,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot start a process bound by permission bits here: {exc}")
    finally:
        take_back(probe)
    if result.returncode == 0:
        pytest.skip("this user writes files whatever their permission bits say")


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def built_shop(shop: Path) -> Iterator[Path]:
    result = run_cli(shop, "materialize")
    assert result.returncode == 0, result.stderr
    yield shop
    take_back(shop / ".vibepiper")  # so that the temporary folder can be removed


# == 1. a home the user may only read =========================================================


@pytest.mark.parametrize("lock_file", [True, False], ids=["lock-file", "no-lock-file"])
@pytest.mark.usefixtures("permissions_apply")
def test_reading_commands_work_on_a_home_the_user_may_only_read(
    built_shop: Path, lock_file: bool
) -> None:
    home = built_shop / ".vibepiper"
    if not lock_file:  # a home copied without it: no one who may write has locked it here
        (home / "catalog.lock").unlink()
    give_away(home)
    before = file_hashes(home)

    status = as_reader(built_shop, "status")
    assert status.returncode == 0, status.stderr
    assert "4 fresh, 0 stale" in status.stderr
    query = as_reader(built_shop, "query", "--json", "select count(*) as n from totals")
    assert query.returncode == 0, query.stderr
    assert '"n": 3' in query.stdout
    show = as_reader(built_shop, "show", "totals")
    assert show.returncode == 0, show.stderr
    assert "total" in show.stdout
    history = as_reader(built_shop, "history", "clean")
    assert history.returncode == 0, history.stderr
    assert "succeeded" in history.stdout

    assert file_hashes(home) == before


@pytest.mark.usefixtures("permissions_apply")
def test_materialize_on_a_home_the_user_may_only_read_fails_in_one_line(
    built_shop: Path,
) -> None:
    home = built_shop / ".vibepiper"
    give_away(home)
    before = file_hashes(home)

    result = as_reader(built_shop, "materialize", "--force")

    assert result.returncode == 1
    line = error_line(result.stderr)
    assert line.startswith(f"error: cannot write to the home {home}: permission denied on ")
    assert "owned by " in line and "--home DIR" in line
    assert "reading commands (status, history, show, query) work without it" in line
    assert file_hashes(home) == before


# == 2. a catalog the user may not write ======================================================


@pytest.mark.usefixtures("permissions_apply")
def test_an_unwritable_catalog_says_whose_it_is_and_to_keep_it(built_shop: Path) -> None:
    """Say what is wrong (whose the file is, that the command writes), never to move the
    catalog away: a new one would start without the project's history."""
    catalog = built_shop / ".vibepiper" / "catalog.duckdb"
    give_away(catalog)  # say, after a `sudo vibepiper materialize`
    before = catalog.read_bytes()

    result = as_reader(built_shop, "materialize", "--force")

    assert result.returncode == 1
    line = error_line(result.stderr)
    assert line.startswith(f"error: cannot open the catalog {catalog} for writing: ")
    assert "permission denied (owned by " in line
    assert "this command needs write access to the catalog and its folder" in line
    assert "keep the file, it holds the project's history" in line
    assert "move it away" not in line
    assert catalog.read_bytes() == before
    assert as_reader(built_shop, "status").returncode == 0  # reading still works


# == 4. two projects, one home ================================================================


def owner_of(home: Path) -> str | None:
    con = duckdb.connect(str(home / "catalog.duckdb"), read_only=True)
    try:
        row = con.execute("SELECT value FROM vibepiper_meta WHERE key = 'project'").fetchone()
    finally:
        con.close()
    return None if row is None else str(row[0])


def run_count(home: Path) -> int:
    con = duckdb.connect(str(home / "catalog.duckdb"), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM runs").fetchone()[0])
    finally:
        con.close()


@pytest.fixture
def two_shops(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two projects with the same asset names, and a home the first one has used."""
    first = write_project(tmp_path / "first", {"shop": SHOP}, SHOP_DATA)
    second = write_project(tmp_path / "second", {"shop": SHOP}, SHOP_DATA)
    home = tmp_path / "shared-home"
    result = run_cli(first, "--home", str(home), "materialize")
    assert result.returncode == 0, result.stderr
    return first, second, home


def test_the_catalog_records_the_project_it_belongs_to(
    two_shops: tuple[Path, Path, Path],
) -> None:
    first, _, home = two_shops
    assert owner_of(home) == str(first.resolve())


@pytest.mark.parametrize(
    "args",
    [["materialize"], ["status"], ["query", "select 1"], ["show", "totals"], ["history", "clean"]],
    ids=["materialize", "status", "query", "show", "history"],
)
def test_a_home_that_is_another_projects_is_refused(
    two_shops: tuple[Path, Path, Path], args: list[str]
) -> None:
    first, second, home = two_shops

    result = run_cli(second, "--home", str(home), *args)

    assert result.returncode == 2
    assert error_line(result.stderr) == (
        f"error: the home {home} belongs to the project in {first}, not to this one in "
        f"{second}; give each project its own home (--home DIR, VIBEPIPER_HOME or "
        "[tool.vibepiper] home), or move the project back; if this project was moved or "
        "copied from there, the home passes to it once that folder is gone"
    )
    assert owner_of(home) == str(first) and run_count(home) == 1


def test_a_moved_project_takes_its_home_over(two_shops: tuple[Path, Path, Path]) -> None:
    first, _, home = two_shops
    moved = first.rename(first.with_name("renamed"))

    status = run_cli(moved, "--home", str(home), "status")
    assert status.returncode == 0, status.stderr
    assert "4 fresh, 0 stale" in status.stderr  # its history came along
    result = run_cli(moved, "--home", str(home), "materialize")
    assert result.returncode == 0, result.stderr

    assert owner_of(home) == str(moved)


def test_a_copied_project_adopts_the_home_inside_it(shop: Path, tmp_path: Path) -> None:
    assert run_cli(shop, "materialize").returncode == 0
    copy = Path(shutil.copytree(shop, tmp_path / "copy"))

    status = run_cli(copy, "status")
    assert status.returncode == 0, status.stderr
    assert "4 fresh, 0 stale" in status.stderr
    assert run_cli(copy, "materialize").returncode == 0

    assert owner_of(copy / ".vibepiper") == str(copy)
    assert owner_of(shop / ".vibepiper") == str(shop)


def test_an_older_catalog_goes_to_the_first_project_that_writes(
    two_shops: tuple[Path, Path, Path],
) -> None:
    first, second, home = two_shops
    con = duckdb.connect(str(home / "catalog.duckdb"))
    con.execute("DELETE FROM vibepiper_meta WHERE key = 'project'")  # as before the key
    con.close()

    reading = run_cli(second, "--home", str(home), "status")
    assert reading.returncode == 0, reading.stderr
    assert owner_of(home) is None  # reading claims nothing
    writing = run_cli(second, "--home", str(home), "materialize")
    assert writing.returncode == 0, writing.stderr
    assert owner_of(home) == str(second)

    assert run_cli(first, "--home", str(home), "status").returncode == 2


# == 3. which folder a relative home is relative to ===========================================


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_relative_home_is_relative_to_the_current_folder(
    shop: Path, tmp_path: Path, how: str
) -> None:
    """Like --project: a path typed on the command line is relative to where it is typed."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    project = os.path.relpath(shop, elsewhere)
    option = ["--home", "data/home"] if how == "option" else []
    env = {"VIBEPIPER_HOME": "data/home"} if how == "environment" else {}

    result = run_cli(elsewhere, "--project", project, *option, "materialize", env=env)

    assert result.returncode == 0, result.stderr
    assert (elsewhere / "data" / "home" / "catalog.duckdb").is_file()
    assert not (shop / "data" / "home").exists()


def test_tool_home_is_relative_to_the_project_folder(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"shop": SHOP}, SHOP_DATA, tool='home = "state/vp"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = run_cli(elsewhere, "--project", "../proj", "materialize")

    assert result.returncode == 0, result.stderr
    assert (root / "state" / "vp" / "catalog.duckdb").is_file()
    assert not (elsewhere / "state").exists()


@pytest.mark.parametrize(
    ("value", "shown"),
    [("3", "3"), ('["a"]', "['a']"), ('""', "''")],
    ids=["number", "list", "empty"],
)
def test_tool_home_that_is_not_a_folder_name_is_one_line(
    tmp_path: Path, value: str, shown: str
) -> None:
    root = write_project(tmp_path / "proj", {"shop": SHOP}, SHOP_DATA, tool=f"home = {value}\n")

    result = run_cli(root, "status")

    assert result.returncode == 2
    assert error_line(result.stderr) == (
        f"error: [tool.vibepiper] home = {shown} is not valid; give a folder as a string, "
        'relative to the project folder: home = ".vibepiper"'
    )
