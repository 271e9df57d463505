"""A full disk: a store write or a catalog write that fails with ENOSPC fails its asset (or
the run) with one line, loses nothing already published, and the next run completes once
there is room again.

A real 8 MiB tmpfs where the machine allows mounts, else an LD_PRELOAD shim
(tests/helpers/enospc_shim.c) that makes the real process's writes fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_project
from tests.helpers.output import ok_json
from tests.helpers.race_shim import build_enospc, preloading
from tests.helpers.state import current_versions, file_digests, stored_problem
from vibepiper.catalog.catalog import Catalog

DISK_ASSETS = """
import numpy as np
import pandas as pd
from vibepiper import asset

@asset
def a_small() -> pd.DataFrame:
    return pd.DataFrame({"x": range(1000)})

@asset
def b_small(a_small: pd.DataFrame) -> pd.DataFrame:
    return a_small.assign(y=a_small.x * 2)

@asset
def c_big(a_small: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(0)  # 16 MB of incompressible doubles
    return pd.DataFrame({"v": rng.random(2_000_000)})

@asset
def d_after(c_big: pd.DataFrame) -> pd.DataFrame:
    return c_big.head(10)

@asset
def e_small(b_small: pd.DataFrame) -> pd.DataFrame:
    return b_small.head(5)
"""


@dataclass
class FullDisk:
    """A project home on which the disk can be made full, and given back."""

    home: Path
    kind: str  # "tmpfs" or "preload"
    shim: Path | None = None
    filler: Path | None = None

    def env(self, full: str = "") -> dict[str, str]:
        """The environment of a command; with the preload shim, `full` says what fails:
        "big" (writes past 1 MB into a store temp file) or "all" (every store and WAL write)."""
        env = {"VIBEPIPER_HOME": str(self.home)}
        if self.kind == "preload" and full:
            assert self.shim is not None
            suffixes, after = {"big": (".tmp", "1000000"), "all": (".tmp:.wal", "0")}[full]
            env |= {
                "LD_PRELOAD": preloading(self.shim)["LD_PRELOAD"],
                "ENOSPC_UNDER": f"{self.home}/",
                "ENOSPC_SUFFIXES": suffixes,
                "ENOSPC_AFTER_BYTES": after,
            }
        return env

    def fill(self) -> None:
        """tmpfs: take every free byte (the preload shim fails writes itself, see env())."""
        if self.kind != "tmpfs":
            return
        self.filler = self.home / "filler"
        chunk = b"\0" * 65536
        with self.filler.open("wb", buffering=0) as out:
            try:
                while True:
                    out.write(chunk)
            except OSError as exc:
                assert exc.errno == 28, exc
        with self.filler.open("ab", buffering=0) as out:  # and the last partial chunk
            try:
                while True:
                    out.write(b"\0" * 512)
            except OSError:
                pass

    def give_back(self) -> None:
        if self.filler is not None:
            self.filler.unlink()
            self.filler = None
        if self.kind == "tmpfs":
            subprocess.run(["mount", "-o", "remount,size=64m", str(self.home)], check=True)


@pytest.fixture(params=["tmpfs", "preload"])
def full_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FullDisk]:
    """A real 8 MiB tmpfs as the project's home (root and a container that allows mounts),
    or the ENOSPC LD_PRELOAD shim (where a C compiler is installed)."""
    home = tmp_path / "home"
    home.mkdir()
    if request.param == "preload":
        yield FullDisk(home, "preload", shim=build_enospc(tmp_path))
        return
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(home)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"this machine refuses to mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield FullDisk(home, "tmpfs")
    finally:
        if subprocess.run(["umount", str(home)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(home)], capture_output=True)


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def small_assets_published(
    tmp_path: Path, full_disk: FullDisk
) -> tuple[Path, Path, dict[str, str]]:
    """The disk project with its three small assets published while there was room:
    (project, store, the store's file digests)."""
    root = write_project(tmp_path / "proj", {"disk_assets": DISK_ASSETS})
    first = run_cli(root, "materialize", "a_small", "b_small", "e_small", env=full_disk.env())
    assert first.returncode == 0, first.stdout + first.stderr
    store = full_disk.home / "store"
    return root, store, file_digests(store)


def test_a_full_disk_mid_run_fails_that_asset_cleanly_and_loses_nothing(
    tmp_path: Path, full_disk: FullDisk
) -> None:
    root, store, before = small_assets_published(tmp_path, full_disk)
    assert len(before) == 3

    full = run_cli(root, "materialize", env=full_disk.env("big"))

    assert full.returncode == 1, full.stdout + full.stderr
    no_traceback(full)
    assert file_digests(store) == before  # nothing published was lost or changed
    assert not list(store.glob("**/.*.tmp"))  # the failed writer removed its temp file
    errors = [line for line in full.stderr.splitlines() if line.strip()]
    if errors:  # on the tmpfs, a catalog write that came while c_big filled it: a run error
        assert full_disk.kind == "tmpfs", full.stderr
        assert len(errors) == 1 and errors[0].startswith("error:"), full.stderr
        assert "No space left on device" in errors[0]
        ok_json(
            run_cli(root, "query", "select count(*) as n from runs", "--json", env=full_disk.env())
        )
    else:  # a one-line error for the asset, recorded in the catalog
        failed = [
            line
            for line in full.stdout.splitlines()
            if line.strip().startswith("c_big") and " started " not in line
        ]
        assert len(failed) == 1 and "No space left on device" in failed[0], full.stdout
        assert "c_big failed: " in failed[0] and "blocked: d_after" in full.stdout
        check_failure_recorded(root, full_disk)

    full_disk.give_back()
    again = run_cli(root, "materialize", env=full_disk.env())
    assert again.returncode == 0, again.stdout + again.stderr
    assert {a for a, _ in current_versions(full_disk.home).items()} == {
        "a_small",
        "b_small",
        "c_big",
        "d_after",
        "e_small",
    }
    for name, version in current_versions(full_disk.home).items():
        assert stored_problem(store / name / f"{version}.parquet", version) == ""
    assert {k: v for k, v in file_digests(store).items() if k in before} == before


def check_failure_recorded(root: Path, full_disk: FullDisk) -> None:
    states = ok_json(
        run_cli(
            root,
            "query",
            "select asset, status, error from materializations "
            "where run_id = (select max(run_id) from runs)",
            "--json",
            env=full_disk.env(),
        )
    )
    by_asset = {r["asset"]: r for r in states}
    assert by_asset["c_big"]["status"] == "failed"
    assert "No space left on device" in by_asset["c_big"]["error"]
    assert by_asset["d_after"]["status"] == "blocked"


def test_a_disk_too_full_for_the_catalog_fails_the_run_cleanly_and_loses_nothing(
    tmp_path: Path, full_disk: FullDisk
) -> None:
    root, store, before = small_assets_published(tmp_path, full_disk)
    versions = current_versions(full_disk.home)

    full_disk.fill()
    full = run_cli(root, "materialize", "a_small", "b_small", "--force", env=full_disk.env("all"))

    assert full.returncode == 1, full.stdout + full.stderr
    no_traceback(full)
    errors = [line for line in full.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error:"), full.stderr
    assert "No space left on device" in errors[0]
    assert "free some disk space" in errors[0] and "by hand" not in errors[0]
    assert file_digests(store) == before

    full_disk.give_back()
    opened = run_cli(root, "query", "select count(*) as n from runs", "--json", env=full_disk.env())
    assert ok_json(opened)[0]["n"] >= 1
    assert current_versions(full_disk.home) == versions  # the catalog kept what it had
    again = run_cli(root, "materialize", env=full_disk.env())
    assert again.returncode == 0, again.stdout + again.stderr
    runs = Catalog(full_disk.home).fetch("SELECT status FROM runs ORDER BY run_id")
    assert [r["status"] for r in runs][-1] == "succeeded"
    assert "running" not in [r["status"] for r in runs]
    assert {k: v for k, v in file_digests(store).items() if k in before} == before
