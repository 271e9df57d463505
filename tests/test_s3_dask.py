"""The store on S3 (SeaweedFS) with a real Dask cluster whose workers share nothing with
the project's machine but the bucket: each worker runs in an empty folder of its own, with
a home, a temporary folder and a cache of its own and a copy of the project's modules on
its PYTHONPATH, and an audit hook (tests/helpers/s3_dask_sitecustomize.py) denies and logs
any access to the scheduler-side project folder (and so to its `.vibepiper/`), to the
scheduler's folder and to the other worker's. A 40-asset project materialized there has
the data versions an in-process run gives it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import catalog_rows, cli_env, run_cli, write_project
from tests.helpers.processes import kill_group
from tests.helpers.s3server import CREDENTIALS, S3Store

HELPERS = Path(__file__).parent / "helpers"
SANDBOX = HELPERS / "s3_dask_sitecustomize.py"

LAYERS, WIDTH = 4, 10  # 40 assets: 4 modules of 10, each layer reading the one before


def first_layer(width: int) -> str:
    """Module `layer0`: assets of deterministic frames (ints, floats, strings, times)."""
    parts = ["import pandas as pd\nfrom vibepiper import asset\n"]
    for j in range(width):
        parts.append(
            f"""
@asset(group="layer0")
def l0_a{j}() -> pd.DataFrame:
    n = {40 + 3 * j}
    return pd.DataFrame(
        {{
            "id": list(range(n)),
            "x": [i * 0.25 + {j} for i in range(n)],
            "label": [f"k{{(i * 7 + {j}) % 13}}" for i in range(n)],
            "seen_at": pd.date_range("2024-01-0{1 + j % 9}", periods=n, freq="h", tz="UTC"),
        }}
    )
"""
        )
    return "".join(parts)


def later_layer(k: int, width: int) -> str:
    """Module `layer{k}`: each asset joins two assets of layer k-1."""
    parts = ["import pandas as pd\nfrom vibepiper import asset\n"]
    for j in range(width):
        left, right = f"l{k - 1}_a{j}", f"l{k - 1}_a{(j + 1) % width}"
        parts.append(
            f"""
@asset(group="layer{k}")
def l{k}_a{j}({left}: pd.DataFrame, {right}: pd.DataFrame) -> pd.DataFrame:
    both = {left}.merge({right}[["id", "x"]], on="id", suffixes=("", "_other"))
    return (
        both.assign(
            x=both.x * {k + 1} + both.x_other / {j + 2},
            label=both.label + "-{k}.{j}",
            seen_at=both.seen_at + pd.Timedelta(minutes={k * 10 + j}),
        )
        .drop(columns="x_other")
        .sort_values("id")
        .reset_index(drop=True)
    )
"""
        )
    return "".join(parts)


MODULES = {
    f"layer{k}": first_layer(WIDTH) if k == 0 else later_layer(k, WIDTH) for k in range(LAYERS)
}
ASSETS = {f"l{k}_a{j}" for k in range(LAYERS) for j in range(WIDTH)}


def worker_env(folder: Path, code: Path, forbidden: list[Path]) -> dict[str, str]:
    """A worker's environment: this one's tools, but a home, temporary folder, cache and
    PYTHONPATH of its own, the S3 credentials, and the folders its sandbox denies."""
    env = {
        k: v
        for k, v in cli_env().items()
        if not k.startswith(("VIBEPIPER", "DASK_", "XDG_", "AWS_", "PYTHON"))
        and k not in ("PWD", "OLDPWD")
    }
    env.update(CREDENTIALS)
    tmp = folder / "tmp"
    env.update(
        {
            "HOME": str(folder / "home"),
            "TMPDIR": str(tmp),
            "TEMP": str(tmp),
            "TMP": str(tmp),
            "VIBEPIPER_CACHE": str(folder / "cache"),
            "PYTHONPATH": str(code),
            "PYTHONDONTWRITEBYTECODE": "1",
            "S3_DASK_FORBIDDEN": os.pathsep.join(str(p) for p in forbidden),
            "S3_DASK_AUDIT_LOG": str(folder / "audit.log"),
            "S3_DASK_TOLERATED_LOG": str(folder / "tolerated.log"),
            "S3_DASK_ARMED": str(folder / "armed"),
        }
    )
    return env


class Cluster:
    """A Dask scheduler and workers started as subprocesses, each in a session of its own."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def launch(self, name: str, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        log = self.base / f"{name}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.started.append(
                subprocess.Popen(
                    [sys.executable, "-m", *args],
                    cwd=cwd,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def output(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.logs if p.exists())

    def stop(self) -> None:
        for proc in reversed(self.started):
            kill_group(proc)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    base = tmp_path / "cluster-logs"
    base.mkdir()
    found = Cluster(base)
    try:
        yield found
    finally:
        found.stop()


def scheduler_address(scheduler_file: Path, cluster: Cluster, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return str(json.loads(scheduler_file.read_text())["address"])
        except (OSError, ValueError, KeyError):
            pass
        if any(p.poll() is not None for p in cluster.started) or time.monotonic() > deadline:
            raise AssertionError(f"the Dask scheduler did not start\n{cluster.output()}")
        time.sleep(0.2)


def parquet_versions(folder: Path) -> set[tuple[str, str]]:
    """(asset, data version) of every whole Parquet file under `folder` (not temporary)."""
    return {
        (p.parent.name, p.stem)
        for p in folder.rglob("*.parquet")
        if not p.name.startswith(".") and p.stem.isalnum()
    }


def violations(workers: list[Path]) -> str:
    """What the workers' sandboxes denied and logged (each with its stack)."""
    logs = [w / "audit.log" for w in workers]
    return "".join(f"--- {p.parent.name}\n{p.read_text()}" for p in logs if p.exists())


def wait_for_workers(address: str, count: int, cluster: Cluster, timeout: float = 300) -> None:
    """Return once `count` workers are connected to the scheduler at `address`."""
    deadline = time.monotonic() + timeout
    while True:
        asked = subprocess.run(
            [sys.executable, str(HELPERS / "exec_dask_client.py"), address, "wait", str(count)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if asked.returncode == 0:
            return
        if any(p.poll() is not None for p in cluster.started) or time.monotonic() > deadline:
            raise AssertionError(f"no {count} Dask workers\n{asked.stderr}\n{cluster.output()}")


@pytest.mark.slow
def test_a_sandboxed_dask_cluster_on_s3_makes_the_in_process_data_versions(
    tmp_path: Path, s3_store: S3Store, cluster: Cluster
) -> None:
    project = write_project(tmp_path / "project", MODULES, tool=s3_store.toml)
    reference = write_project(tmp_path / "reference", MODULES)  # in-process, local store

    scheduler = tmp_path / "scheduler"
    scheduler.mkdir()
    scheduler_file = scheduler / "scheduler.json"
    cluster.launch(
        "scheduler",
        [
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--dashboard-address",
            "127.0.0.1:0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        ],
        cwd=scheduler,
        env={**cli_env(), "HOME": str(scheduler), "TMPDIR": str(scheduler)},
    )
    address = scheduler_address(scheduler_file, cluster)

    workers = [tmp_path / f"worker{n}" for n in range(2)]
    for folder in workers:
        for sub in ("cwd", "home", "tmp", "cache", "code"):
            (folder / sub).mkdir(parents=True)
    for folder in workers:
        for name in MODULES:  # the project's code, copied: not the scheduler's folder
            shutil.copy(project / f"{name}.py", folder / "code" / f"{name}.py")
        shutil.copy(SANDBOX, folder / "code" / "sitecustomize.py")
        others = [w for w in workers if w != folder]
        cluster.launch(
            folder.name,
            [
                "distributed.cli.dask_worker",
                address,  # not the scheduler file: that is in the scheduler's folder
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
                "--local-directory",
                str(folder / "tmp"),
            ],
            cwd=folder / "cwd",
            env=worker_env(folder, folder / "code", [project, reference, scheduler, *others]),
        )
    wait_for_workers(address, len(workers), cluster)
    for folder in workers:  # its processes found their sandbox denies the project folder
        assert (folder / "armed").is_file(), cluster.output()

    done = run_cli(project, "materialize", "--executor", "dask", "--address", address, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr + violations(workers) + cluster.output()
    assert f"succeeded: {len(ASSETS)} succeeded" in done.stdout, done.stdout
    local = run_cli(reference, "materialize", "--executor", "inprocess", timeout=900)
    assert local.returncode == 0, local.stdout + local.stderr

    # No worker touched the scheduler-side project and its .vibepiper/ (nor the reference
    # project, the scheduler's folder, the other worker's): each access is denied, logged.
    assert not violations(workers), violations(workers)

    assert catalog_rows(project, "SELECT status FROM runs") == [("succeeded",)]
    assert catalog_rows(
        project, "SELECT status, count(*) FROM materializations GROUP BY status"
    ) == [("succeeded", len(ASSETS))]
    sql = "SELECT asset, data_version, code_version FROM current_materializations"
    on_dask = {a: (d, c) for a, d, c in catalog_rows(project, sql)}
    in_process = {a: (d, c) for a, d, c in catalog_rows(reference, sql)}
    assert set(on_dask) == ASSETS
    assert on_dask == in_process

    # Each worker read and wrote the bucket through a cache of its own: every asset that
    # another one reads (layers 0 to 2) is in a worker's cache, and each worker has some.
    cached: set[tuple[str, str]] = set()
    for folder in workers:
        own = parquet_versions(folder / "cache")
        assert own, f"{folder.name} cached nothing\n{done.stdout}"
        cached |= own
    read = {(a, d) for a, (d, _) in on_dask.items() if not a.startswith(f"l{LAYERS - 1}_")}
    assert read <= cached, sorted(read - cached)
    # Every version is published in the bucket, where the workers put it.
    versions = {(a, d) for a, (d, _) in on_dask.items()}
    published = {
        tuple(key.removeprefix(s3_store.prefix).removesuffix(".parquet").split("/"))
        for key in s3_store.objects()
    }
    assert versions <= published, sorted(versions - published)
