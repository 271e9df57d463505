"""The store against tampering and odd files: a valid file copied over another, a catalog
whose data version leads out of the store, a FIFO or a folder in a stored file's place,
and symbolic links that lead out of the store. Real files, a real catalog, the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.conftest import catalog_rows, run_cli
from vibepiper.errors import StoreError
from vibepiper.processes import pid_alive
from vibepiper.storage.parquet_store import ParquetStore

TIMEOUT = 60  # seconds: far more than any of these commands takes; only proves no hang
DEAD_PID = 999_999


def vp(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(root, *args, timeout=TIMEOUT)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def materialized(root: Path) -> Path:
    ok(vp(root, "materialize"))
    return root


def version_of(root: Path, asset: str) -> str:
    ((version,),) = catalog_rows(
        root, "SELECT data_version FROM current_materializations WHERE asset = ?", [asset]
    )
    return str(version)


def current_file(root: Path, asset: str) -> Path:
    return root / ".vibepiper" / "store" / asset / f"{version_of(root, asset)}.parquet"


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def findings(proc: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    found: list[dict[str, str]] = json.loads(proc.stdout)["findings"]
    return found


def status(root: Path) -> dict[str, dict[str, object]]:
    return {s["name"]: s for s in json.loads(ok(vp(root, "status", "--json")).stdout)}


def set_current_version(root: Path, asset: str, value: str) -> None:
    """Edit the catalog by hand: the asset's current row records `value` as its version."""
    con = duckdb.connect(str(root / ".vibepiper" / "catalog.duckdb"))
    try:
        con.execute(
            "UPDATE materializations SET data_version = ? WHERE materialization_id = "
            "(SELECT materialization_id FROM current_materializations WHERE asset = ?)",
            [value, asset],
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()


# -- 1. a valid file copied over another is damage -----------------------------------------


@pytest.mark.parametrize("culprit", ["another asset's file", "another version's file"])
def test_a_valid_stored_file_copied_over_another_is_damaged_never_read(
    shop: Path, culprit: str
) -> None:
    root = materialized(shop)
    first_clean = current_file(root, "clean")
    (root / "data" / "raw.csv").write_text("n\n10\n20\n30\n40\n")
    ok(vp(root, "materialize"))
    victim = current_file(root, "clean")
    assert victim != first_clean
    other = current_file(root, "lonely") if culprit.startswith("another asset") else first_clean
    shutil.copyfile(other, victim)

    stale = status(root)["clean"]
    assert stale["fresh"] is False and "its stored file is damaged" in stale["reasons"]
    shown = vp(root, "show", "clean")
    line = one_error_line(shown)
    assert line.startswith("error: the stored data of asset 'clean' is corrupt"), line
    if culprit.startswith("another asset"):
        assert ": it holds the data of asset 'lonely');" in line, line
    else:
        was, named = first_clean.stem[:12], victim.stem[:12]
        said = f": it holds data version '{was}', not '{named}' (its name));"
        assert said in line, line
    assert line.endswith("re-create it with `vibepiper materialize clean --force`")
    downstream = vp(root, "materialize", "totals", "--force")
    assert downstream.returncode == 1
    assert "the stored data of asset 'clean' is corrupt" in downstream.stdout + downstream.stderr
    for mode in ([], ["--quick"]):
        doctor = vp(root, "doctor", "--json", *mode)
        assert doctor.returncode == 1
        assert [(f["kind"], f["path"]) for f in findings(doctor)] == [("corrupt", str(victim))]

    copied = victim.read_bytes()
    ok(vp(root, "materialize"))  # the damaged file is stale: rebuilt
    assert version_of(root, "clean") == victim.stem  # the same data, so the same version
    assert victim.read_bytes() != copied
    back = vp(root, "show", "clean", "--json")
    assert [row["n"] for row in json.loads(ok(back).stdout)] == [10, 20, 30, 40]


def test_a_source_file_copied_over_by_its_older_version_is_damaged(shop: Path) -> None:
    root = materialized(shop)
    old = current_file(root, "raw")
    (root / "data" / "raw.csv").write_text("n\n7\n8\n")
    ok(vp(root, "materialize"))
    shutil.copyfile(old, current_file(root, "raw"))
    line = one_error_line(vp(root, "show", "raw"))
    assert "the stored data of asset 'raw' is corrupt" in line and old.stem[:12] in line
    assert status(root)["raw"]["fresh"] is False
    ok(vp(root, "materialize"))
    assert [r["n"] for r in json.loads(ok(vp(root, "show", "raw", "--json")).stdout)] == [7, 8]


# -- 2. names from the catalog are checked before they become paths ------------------------


def test_a_catalog_data_version_leading_out_of_the_store_is_refused(
    shop: Path, tmp_path: Path
) -> None:
    root = materialized(shop)
    real = current_file(root, "clean")
    outside = tmp_path / "outside" / "x.parquet"
    outside.parent.mkdir()
    pd.DataFrame({"n": [666]}).to_parquet(outside)
    escape = os.path.relpath(outside.with_suffix(""), real.parent)
    assert escape.startswith("../")
    set_current_version(root, "clean", escape)

    for args in (["show", "clean"], ["query", "SELECT * FROM clean"]):
        proc = vp(root, *args)
        line = one_error_line(proc)
        assert line == (
            f"error: asset 'clean' has an invalid data version: '{escape}'; the catalog was "
            "edited by hand or is damaged; re-create the data with "
            "`vibepiper materialize clean --force`"
        ), line
        assert "666" not in proc.stdout
    assert "invalid data version" in status(root)["clean"]["reasons"][0]

    doctor = vp(root, "doctor", "--repair", "--json")
    assert outside.is_file() and real.is_file()  # neither deleted nor moved
    found = findings(doctor)
    assert ("missing", "clean") in [(f["kind"], f["asset"]) for f in found], found
    assert ("orphan", str(real), "") in [(f["kind"], f["path"], f["repaired"]) for f in found]
    assert "orphans of 'clean' were left alone" in json.loads(doctor.stdout)["note"]

    ok(vp(root, "materialize"))  # as the message says: a valid version is recorded again
    assert version_of(root, "clean") == real.stem
    assert [r["n"] for r in json.loads(ok(vp(root, "show", "clean", "--json")).stdout)] == [
        1,
        2,
        3,
    ]
    assert outside.is_file()


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", "", "V1\n", "/etc/passwd"])
def test_the_store_refuses_names_that_are_not_its_own(tmp_path: Path, bad: str) -> None:
    store = ParquetStore(tmp_path / "store")
    for make in (
        lambda: store.path_for("clean", bad),
        lambda: store.rejected_path("clean", bad),
        lambda: store.quarantine_path("clean", bad),
        lambda: store.path_for(bad, "0" * 32),
        lambda: store.rejected_path(bad, "20260101T000000.000-abcdef-0001"),
    ):
        with pytest.raises(StoreError) as caught:
            make()
        assert len(str(caught.value).splitlines()) == 1
        assert "edited by hand" in str(caught.value)
    with pytest.raises(StoreError):
        store.path_for("clean", "a.b")
    assert store.path_for("clean", "0" * 32) == tmp_path / "store" / "clean" / f"{'0' * 32}.parquet"


# -- 3. a FIFO or a folder in place of a stored file ---------------------------------------


@pytest.mark.parametrize("thing", ["fifo", "folder"])
def test_a_fifo_or_folder_in_place_of_a_current_file_is_damaged_and_rebuilt(
    shop: Path, thing: str
) -> None:
    root = materialized(shop)
    path = current_file(root, "clean")
    path.unlink()
    if thing == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
        (path / "inside.txt").write_text("not data")

    stale = status(root)["clean"]
    assert stale["fresh"] is False and "its stored file is damaged" in stale["reasons"]
    quick = vp(root, "doctor", "--quick", "--json")
    assert quick.returncode == 1
    assert [(f["kind"], f["path"]) for f in findings(quick)] == [("corrupt", str(path))]
    assert "not a regular file" in findings(quick)[0]["detail"]
    line = one_error_line(vp(root, "show", "clean"))
    assert f"the stored data of asset 'clean' is damaged ({path} is not a regular file)" in line

    ok(vp(root, "materialize"))
    assert path.is_file() and not path.is_symlink()
    assert status(root)["clean"]["fresh"] is True
    assert ok(vp(root, "doctor", "--json")).returncode == 0


def test_doctor_repair_moves_a_fifo_aside(shop: Path) -> None:
    root = materialized(shop)
    path = current_file(root, "clean")
    path.unlink()
    os.mkfifo(path)
    repaired = ok(vp(root, "doctor", "--repair", "--json"))
    assert [f["kind"] for f in findings(repaired)] == ["corrupt"]
    assert not os.path.lexists(path)
    assert (path.parent / "corrupt" / path.name).is_fifo()


# -- 4. symbolic links are never followed out of the store ---------------------------------


def elsewhere_with_sentinels(tmp_path: Path) -> list[Path]:
    """A folder outside the store holding what doctor would clean up in the store."""
    folder = tmp_path / "elsewhere"
    (folder / "rejected").mkdir(parents=True)
    assert not pid_alive(DEAD_PID), f"process {DEAD_PID} exists here: pick another dead pid"
    sentinels = [folder / "precious.parquet", folder / "rejected" / "precious.parquet"]
    for path in sentinels:
        pd.DataFrame({"keep": [1]}).to_parquet(path)
    sentinels.append(folder / f".x.{DEAD_PID}.tmp")
    sentinels[-1].write_bytes(b"someone else's")
    return sentinels


@pytest.mark.parametrize("link", ["an asset's folder", "a rejected folder", "the store"])
def test_doctor_repair_and_runs_never_clean_through_a_symbolic_link(
    shop: Path, tmp_path: Path, link: str
) -> None:
    root = materialized(shop)
    store = root / ".vibepiper" / "store"
    sentinels = elsewhere_with_sentinels(tmp_path)
    elsewhere = sentinels[0].parent
    if link == "an asset's folder":
        where = store / "ghost"
        where.symlink_to(elsewhere)
    elif link == "a rejected folder":
        where = store / "clean" / "rejected"
        where.symlink_to(elsewhere / "rejected")
        sentinels.pop()  # the temporary file is not in that folder
    else:
        where = store
        moved = Path(shutil.move(store, tmp_path / "real_store"))
        store.symlink_to(moved)
        (moved / "clean" / "rejected").mkdir()
        sentinels = [
            moved / "clean" / "precious.parquet",
            moved / "clean" / "rejected" / "p.parquet",
        ]
        for path in sentinels:  # what doctor --repair removes from a store that is no link
            shutil.copyfile(elsewhere / "precious.parquet", path)
    before = {p: p.read_bytes() for p in sentinels}

    ok(vp(root, "materialize", "--force"))  # a run removes dead writers' temporary files
    doctor = vp(root, "doctor", "--repair", "--json")
    assert {p: p.read_bytes() for p in sentinels if p.exists()} == before
    assert all(p.exists() for p in sentinels)
    report = json.loads(doctor.stdout)
    if link == "the store":
        assert "is a symbolic link" in report["note"], report
        assert report["healthy"] is False
    else:
        links = [(f["kind"], f["path"], f["repaired"]) for f in report["findings"]]
        assert ("link", str(where), "") in links, report
        assert doctor.returncode == 1
    assert os.path.islink(where)
    assert [r["n"] for r in json.loads(ok(vp(root, "show", "clean", "--json")).stdout)] == [
        1,
        2,
        3,
    ]
