"""`vibepiper doctor`: it finds damaged, orphaned and temporary store files and unfinished
runs, repairs them without touching valid files, never races a run in progress, and copes
with reused pids and zombie writers; a damaged current file is stale and rebuilt.

Real parts only: real DuckDB catalogs, real Parquet files, the real CLI as subprocesses,
real SIGKILLs and SIGSTOPs.
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import EXECUTOR_ARGS, run_cli, start_cli, write_project
from tests.helpers.output import ok_json
from tests.helpers.processes import process_state, wait_for_group, wait_until
from tests.helpers.state import (
    current_file,
    current_versions,
    file_digests,
    last_run_states,
    stored_problem,
)
from vibepiper.catalog.catalog import Catalog
from vibepiper.versioning.data_version import table_version

HELPERS = Path(__file__).parent / "helpers"


def running_runs(home: Path) -> list[str]:
    if not (home / "catalog.duckdb").exists():
        return []
    rows = Catalog(home).fetch("SELECT run_id FROM runs WHERE status = 'running'")
    return [r["run_id"] for r in rows]


# -- doctor ------------------------------------------------------------------------------

DOCTOR_ASSETS = """
import os
import time

import numpy as np
import pandas as pd
from vibepiper import asset, source_file

raw = source_file("raw", "data/raw.csv")


def block(name, seed):
    @asset(name=name)
    def build() -> pd.DataFrame:
        rng = np.random.default_rng(seed)  # 3.2 MB: data pages of about 1 MB
        return pd.DataFrame({"a": rng.random(200_000), "b": rng.random(200_000)})

    return build


BLOCKS = [block(n, i) for i, n in enumerate(["t_trunc", "t_garbage", "t_flip", "t_ok"])]


@asset
def clean(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.dropna().reset_index(drop=True)


@asset
def combined(
    t_trunc: pd.DataFrame, t_garbage: pd.DataFrame, t_flip: pd.DataFrame, t_ok: pd.DataFrame
) -> pd.DataFrame:
    parts = [t_trunc, t_garbage, t_flip, t_ok]
    return pd.DataFrame({"rows": [len(p) for p in parts], "sum": [p.a.sum() for p in parts]})


@asset
def z_sleeper() -> pd.DataFrame:
    if os.environ.get("SLEEPER_MARK"):  # say when it has begun
        open(os.environ["SLEEPER_MARK"], "w").close()
    time.sleep(float(os.environ.get("SLEEPER_SECONDS", "0")))
    return pd.DataFrame({"x": [1]})
"""
DAMAGED = ("t_trunc", "t_garbage", "t_flip")
DEAD_PID = 999_999


@pytest.fixture(scope="module")
def doctor_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A materialized project (all but `z_sleeper`), to copy."""
    root = write_project(
        tmp_path_factory.mktemp("doctor") / "proj",
        {"doctor_assets": DOCTOR_ASSETS},
        {"data/raw.csv": "n\n1\n2\n\n3\n"},
    )
    done = run_cli(root, "materialize", "--exclude", "z_sleeper")
    assert done.returncode == 0, done.stdout + done.stderr
    return root


@pytest.fixture
def doctor_project(doctor_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(doctor_template, tmp_path / "proj"))


def flip_bytes_mid_page(path: Path) -> None:
    """Invert 64 bytes in the middle of the first column chunk's data pages."""
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(0)
    start = chunk.data_page_offset
    if chunk.has_dictionary_page and chunk.dictionary_page_offset is not None:
        start = min(start, chunk.dictionary_page_offset)
    end = start + chunk.total_compressed_size
    assert end - chunk.data_page_offset > 100_000, "the test wants big data pages"
    offset = (chunk.data_page_offset + end) // 2 - 32
    data = bytearray(path.read_bytes())
    data[offset : offset + 64] = bytes(b ^ 0xFF for b in data[offset : offset + 64])
    path.write_bytes(bytes(data))


def damage(root: Path) -> dict[str, Path]:
    """Truncate one current file, overwrite one with garbage, flip bytes inside one."""
    paths = {name: current_file(root, name) for name in DAMAGED}
    data = paths["t_trunc"].read_bytes()
    paths["t_trunc"].write_bytes(data[: len(data) // 2])
    size = paths["t_garbage"].stat().st_size
    paths["t_garbage"].write_bytes(random.Random(3).randbytes(size))
    flip_bytes_mid_page(paths["t_flip"])
    return paths


def orphan_in(store: Path, asset: str) -> Path:
    """A whole, valid Parquet file that no catalog row refers to."""
    import pyarrow as pa

    table = pa.table({"a": [0.5], "b": [0.25]})
    path = store / asset / f"{table_version(table)}.parquet"
    pq.write_table(table, path)
    return path


def dead_writers_temp(store: Path, asset: str) -> Path:
    from vibepiper.processes import pid_alive

    assert not pid_alive(DEAD_PID), f"process {DEAD_PID} exists here: pick another dead pid"
    path = store / asset / f".x.{DEAD_PID}.tmp"
    path.write_bytes(b"half a parquet file")
    return path


def start_sleeper(root: Path, seconds: float) -> subprocess.Popen[str]:
    """`materialize z_sleeper` computing for `seconds`, once its run row is in the catalog."""
    proc = start_cli(
        root,
        "materialize",
        "z_sleeper",
        env={"SLEEPER_SECONDS": str(seconds)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: running_runs(root / ".vibepiper"), 60, "the z_sleeper's run row")
    return proc


def test_doctor_on_a_healthy_project_exits_0(doctor_project: Path) -> None:
    proc = run_cli(doctor_project, "doctor", "--json")
    report = ok_json(proc)
    assert report["healthy"] is True and report["findings"] == [], report
    published = len(list((doctor_project / ".vibepiper" / "store").glob("*/*.parquet")))
    assert report["files_checked"] == published == 7


def test_doctor_finds_every_kind_of_damage_and_repairs_it_without_touching_valid_files(
    doctor_project: Path,
) -> None:
    root = doctor_project
    home = root / ".vibepiper"
    store = home / "store"
    versions = dict(current_versions(home))
    damaged = damage(root)
    killed = start_sleeper(root, 120)
    (run_id,) = running_runs(home)
    killed.kill()
    killed.wait(timeout=30)
    orphan = orphan_in(store, "t_ok")
    temp = dead_writers_temp(store, "clean")
    bad_bytes = {name: path.read_bytes() for name, path in damaged.items()}
    untouchable = set(file_digests(store)) - {
        str(p.relative_to(store)) for p in [*damaged.values(), orphan, temp]
    }
    before = file_digests(store)

    found = run_cli(root, "doctor", "--json")
    assert found.returncode == 1, found.stdout + found.stderr
    report = json.loads(found.stdout)
    assert report["healthy"] is False
    kinds = sorted((f["kind"], f["asset"], f["path"]) for f in report["findings"])
    assert kinds == sorted(
        [("corrupt", name, str(path)) for name, path in damaged.items()]
        + [("orphan", "t_ok", str(orphan)), ("temporary", "clean", str(temp))]
        + [("unfinished", None, None)]
    ), report
    (unfinished,) = [f for f in report["findings"] if f["kind"] == "unfinished"]
    assert run_id in unfinished["detail"]
    assert not any(f["repaired"] for f in report["findings"])
    assert file_digests(store) == before  # looking changes nothing

    quick = run_cli(root, "doctor", "--quick", "--json")
    assert quick.returncode == 1
    quick_corrupt = {
        f["asset"] for f in json.loads(quick.stdout)["findings"] if f["kind"] == "corrupt"
    }
    assert {"t_trunc", "t_garbage"} <= quick_corrupt  # a footer read catches these two

    repaired = run_cli(root, "doctor", "--repair", "--json")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr  # nothing left
    report = json.loads(repaired.stdout)
    assert report["healthy"] is True
    assert len(report["findings"]) == 6 and all(f["repaired"] for f in report["findings"])
    for name, path in damaged.items():
        assert not path.exists()
        aside = store / name / "corrupt" / path.name
        assert aside.read_bytes() == bad_bytes[name]  # kept to look at
    assert not orphan.exists() and not temp.exists()
    status = Catalog(home).fetch("SELECT status, finished_at FROM runs WHERE run_id = ?", [run_id])
    assert status[0]["status"] == "abandoned" and status[0]["finished_at"] is not None
    after = file_digests(store)
    assert {k: after[k] for k in untouchable} == {k: before[k] for k in untouchable}
    assert set(after) == untouchable | {f"{n}/corrupt/{p.name}" for n, p in damaged.items()}

    left = run_cli(root, "doctor", "--json")  # what is left: the three assets have no data now
    assert left.returncode == 1
    missing = json.loads(left.stdout)["findings"]
    assert sorted((f["kind"], f["asset"]) for f in missing) == [
        ("missing", n) for n in sorted(DAMAGED)
    ]
    stale = {s["name"]: s for s in ok_json(run_cli(root, "status", "--json"))}
    for name in DAMAGED:
        assert stale[name]["fresh"] is False

    rebuilt = run_cli(root, "materialize", "--exclude", "z_sleeper")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    states = last_run_states(home)
    assert {n for n, s in states.items() if s == "succeeded"} == set(DAMAGED)
    assert states["combined"] == "skipped"  # same data again: early cutoff
    assert dict(current_versions(home)) == versions
    for name in DAMAGED:
        assert stored_problem(damaged[name], versions[name]) == ""
    final = ok_json(run_cli(root, "doctor", "--json"))
    assert final["healthy"] and final["findings"] == [], final
    after_run = file_digests(store)
    assert {k: after_run[k] for k in untouchable} == {k: before[k] for k in untouchable}


def test_doctor_repair_waits_for_a_run_in_progress_and_changes_nothing_meanwhile(
    doctor_project: Path,
) -> None:
    """`doctor --repair` takes the project's run turn: while a run goes on it waits (here
    at most 2 s, then a one-line error naming the run's process) and removes nothing, since
    the run may have published files it has not recorded yet."""
    root = doctor_project
    home = root / ".vibepiper"
    store = home / "store"
    orphan = orphan_in(store, "t_ok")
    run = start_sleeper(root, 60)
    try:
        temp = dead_writers_temp(store, "clean")  # after the run's own clean-up at its start
        (run_id,) = running_runs(home)
        proc = run_cli(root, "doctor", "--repair", "--json", env={"VIBEPIPER_RUN_TIMEOUT": "2"})
        assert run.poll() is None, "the run ended before doctor looked: the test proves nothing"
        looked = run_cli(root, "doctor", "--json")  # without --repair it does not wait
    finally:
        run.kill()
        run.wait(timeout=30)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    waiting, line = proc.stderr.strip().splitlines()
    assert waiting.startswith("waiting for the run of process"), waiting
    assert line.startswith("error: the project's runs is locked by process"), line
    assert "materialize" in line
    assert orphan.exists() and temp.exists()  # nothing removed while the run went on
    assert looked.returncode == 1
    assert {f["kind"] for f in json.loads(looked.stdout)["findings"]} >= {"orphan", "temporary"}

    later = run_cli(root, "doctor", "--repair", "--json")  # the run is gone (killed) now
    assert later.returncode == 0, later.stdout
    assert not orphan.exists() and not temp.exists()
    status = Catalog(home).fetch("SELECT status FROM runs WHERE run_id = ?", [run_id])
    assert status == [{"status": "abandoned"}]  # and marked so by the repair


# -- a damaged current file is stale, and rebuilt -----------------------------------------


def test_a_truncated_or_garbage_current_file_is_stale_and_rebuilt(doctor_project: Path) -> None:
    root = doctor_project
    home = root / ".vibepiper"
    versions = dict(current_versions(home))
    paths = {name: current_file(root, name) for name in ("t_trunc", "t_garbage")}
    data = paths["t_trunc"].read_bytes()
    paths["t_trunc"].write_bytes(data[: len(data) // 2])
    paths["t_garbage"].write_bytes(random.Random(9).randbytes(paths["t_garbage"].stat().st_size))
    inodes = {name: path.stat().st_ino for name, path in paths.items()}

    status = {s["name"]: s for s in ok_json(run_cli(root, "status", "--json"))}
    for name in paths:
        assert status[name]["fresh"] is False
        assert "its stored file is damaged" in status[name]["reasons"], status[name]
    assert status["t_ok"]["fresh"] is True

    done = run_cli(root, "materialize", "--exclude", "z_sleeper")
    assert done.returncode == 0, done.stdout + done.stderr
    states = last_run_states(home)
    assert {n for n, s in states.items() if s == "succeeded"} == set(paths), states
    assert states["combined"] == "skipped"  # the same data again: downstream stays fresh
    assert dict(current_versions(home)) == versions
    for name, path in paths.items():
        assert path.stat().st_ino != inodes[name]  # a new file took the damaged one's place
        assert stored_problem(path, versions[name]) == ""
    status = ok_json(run_cli(root, "status", "--json"))
    assert [s["name"] for s in status if not s["fresh"] and s["name"] != "z_sleeper"] == []


# -- bugs found by these tests ---------------------------------------------------------------


def test_force_rebuilds_a_current_file_with_flipped_bytes(doctor_project: Path) -> None:
    root = doctor_project
    path = current_file(root, "t_flip")
    version = path.stem
    flip_bytes_mid_page(path)
    broken = run_cli(root, "materialize", "combined", "--force")
    assert broken.returncode == 1
    assert "re-create it with `vibepiper materialize t_flip --force`" in broken.stdout

    fixed = run_cli(root, "materialize", "t_flip", "--force")  # as the message says
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert stored_problem(path, version) == ""
    again = run_cli(root, "materialize", "combined", "--force")
    assert again.returncode == 0, again.stdout


def test_doctor_repair_never_deletes_a_file_a_run_publishes_while_it_scans(
    doctor_project: Path,
) -> None:
    """Deterministic: doctor is stopped (SIGSTOP) inside its scan, as soon as it opens the
    first big file (t_*, scanned before z_sleeper); meanwhile a run that was waiting for the
    project's run lock publishes a new version of z_sleeper and records it; then doctor
    goes on (SIGCONT)."""
    root = doctor_project
    home = root / ".vibepiper"
    assert run_cli(root, "materialize", "z_sleeper").returncode == 0  # z_sleeper/ holds version 1
    module = root / "doctor_assets.py"
    module.write_text(module.read_text().replace('{"x": [1]}', '{"x": [2]}'))
    big_files = {str(current_file(root, name)) for name in ("t_flip", "t_garbage", "t_ok")}

    holder = subprocess.Popen(
        [sys.executable, str(HELPERS / "hold_lock.py"), str(home / "run.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    procs: list[subprocess.Popen[str]] = [holder]
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        run = start_cli(root, "materialize", "z_sleeper")
        procs.append(run)
        assert run.stderr is not None
        assert "waiting for the run of" in run.stderr.readline()  # loaded, waiting its turn
        doctor = start_cli(root, "doctor", "--repair", "--json")
        procs.append(doctor)
        stopped = stop_when_it_opens(doctor, big_files, timeout=20)
        if not stopped and doctor.poll() is not None:
            pytest.skip("doctor ended before it could be paused inside its scan")
        assert holder.stdin is not None
        holder.stdin.close()  # the run goes: it publishes z_sleeper's new version and ends
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, out + err
        if stopped:
            os.kill(doctor.pid, signal.SIGCONT)
        doctor.communicate(timeout=120)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    sleeper_file = current_file(root, "z_sleeper")
    assert stored_problem(sleeper_file, sleeper_file.stem) == ""


def stop_when_it_opens(proc: subprocess.Popen[str], paths: set[str], timeout: float) -> bool:
    """SIGSTOP `proc` as soon as it has one of `paths` open; False if it never did, or if it
    says it waits for the run in progress (then it cannot be scanning)."""
    deadline = time.monotonic() + timeout
    folder = Path(f"/proc/{proc.pid}/fd")
    while time.monotonic() < deadline and proc.poll() is None:
        assert proc.stderr is not None
        said = select.select([proc.stderr], [], [], 0)[0] and proc.stderr.readline()
        if said and "waiting for the run of" in said:
            return False
        try:
            links = {os.readlink(fd) for fd in folder.iterdir()}
        except OSError:
            links = set()
        if links & paths:
            os.kill(proc.pid, signal.SIGSTOP)
            return True
        time.sleep(0.0005)
    return False


def test_doctor_repair_removes_a_dead_writers_temp_whose_pid_was_reused(
    doctor_project: Path, tmp_path: Path
) -> None:
    store = doctor_project / ".vibepiper" / "store"
    written = store / "clean" / ".x.0.tmp"
    written.write_bytes(b"half a parquet file")  # its writer died a minute ago; then...
    os.utime(written, (time.time() - 60, time.time() - 60))
    other = subprocess.Popen(["sleep", "60"])  # ...another process was given its pid
    try:
        temp = written.rename(store / "clean" / f".x.{other.pid}.tmp")  # (mtime kept)
        report = ok_json(run_cli(doctor_project, "doctor", "--repair", "--json"))
    finally:
        other.kill()
        other.wait()
    assert report["healthy"]
    assert not temp.exists(), f"left in place, and reported as {report['findings']}"


def test_doctor_repair_abandons_a_dead_run_whose_pid_was_reused(doctor_project: Path) -> None:
    import duckdb

    home = doctor_project / ".vibepiper"
    killed = start_sleeper(doctor_project, 120)
    (run_id,) = running_runs(home)
    killed.kill()
    killed.wait(timeout=30)
    other = subprocess.Popen(["sleep", "60"])  # a process given the dead run's pid, later
    try:
        with duckdb.connect(str(home / "catalog.duckdb")) as con:
            con.execute(
                "UPDATE runs SET pid = ?, started_at = started_at - INTERVAL 60 SECOND "
                "WHERE run_id = ?",
                [other.pid, run_id],
            )
        found = json.loads(run_cli(doctor_project, "doctor", "--json").stdout)["findings"]
        report = ok_json(run_cli(doctor_project, "doctor", "--repair", "--json"))
    finally:
        other.kill()
        other.wait()
    assert [(f["kind"], run_id in f["detail"]) for f in found] == [("unfinished", True)]
    assert report["healthy"] and len(report["findings"]) == 1
    status = Catalog(home).fetch("SELECT status FROM runs WHERE run_id = ?", [run_id])
    assert status == [{"status": "abandoned"}]


def test_a_live_writer_is_alive_however_long_ago_it_started() -> None:
    """The other side of pid reuse: a process that started before the moment it is known
    to have existed (its file written, its run started) is the same process."""
    from vibepiper.processes import pid_alive

    other = subprocess.Popen(["sleep", "60"])
    try:
        time.sleep(0.05)
        assert pid_alive(other.pid, since=time.time())
        assert pid_alive(other.pid, since=time.time() - 1)  # within the clocks' margin
        assert not pid_alive(other.pid, since=time.time() - 60)  # started after: reused
        assert pid_alive(other.pid)
    finally:
        other.kill()
        other.wait()
    assert not pid_alive(other.pid, since=time.time())


ZOMBIE_MAKER = """
import os, sys
child = os.fork()
if child == 0:
    os._exit(0)  # the writer dies...
print(child, flush=True)  # ...and its parent does not reap it (like a PID 1 that never does)
sys.stdin.read()
"""


def test_doctor_repair_removes_the_temp_of_a_writer_that_is_a_zombie(
    doctor_project: Path,
) -> None:
    store = doctor_project / ".vibepiper" / "store"
    parent = subprocess.Popen(
        [sys.executable, "-c", ZOMBIE_MAKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert parent.stdout is not None
        zombie = int(parent.stdout.readline())
        wait_until(lambda: process_state(zombie) == "Z", 30, "the dead writer to be a zombie")
        temp = store / "clean" / f".x.{zombie}.tmp"
        temp.write_bytes(b"half a parquet file")
        report = ok_json(run_cli(doctor_project, "doctor", "--repair", "--json"))
        assert process_state(zombie) == "Z"  # still dead, still not reaped
    finally:
        assert parent.stdin is not None
        parent.stdin.close()
        parent.wait(timeout=30)
    assert report["healthy"]
    assert not temp.exists(), f"left in place, and reported as {report['findings']}"


def test_workers_of_a_killed_run_end_without_a_traceback(doctor_project: Path) -> None:
    mark = doctor_project / "began"
    log = doctor_project / "run.log"
    with log.open("w") as out:
        proc = start_cli(
            doctor_project,
            "materialize",
            "z_sleeper",
            *EXECUTOR_ARGS["processes"],
            env={"SLEEPER_SECONDS": "1", "SLEEPER_MARK": str(mark)},
            stdout=out,
            stderr=subprocess.STDOUT,
            new_session=True,
        )
    try:
        wait_until(mark.exists, 120, "the worker to begin computing z_sleeper")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    wait_for_group(proc.pid)  # the worker goes on with its asset, alone
    assert "Traceback" not in log.read_text(), log.read_text()
