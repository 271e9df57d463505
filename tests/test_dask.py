"""The Dask executor against a cluster of its own (`--address`): the same data versions as
in-process, computed on that cluster's workers; and one-line errors for an address that is
closed, malformed, or given with another executor. (Dask's local cluster runs the executor
contract: test_executor_contract.py.)"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import catalog_rows, copy_example, run_cli
from tests.helpers.output import one_line_error
from tests.helpers.processes import kill_group
from tests.helpers.state import assert_store_matches_catalog, current_versions, home_of

HELPERS = Path(__file__).parent / "helpers"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def example_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """asset -> data version of the example project computed in-process."""
    root = copy_example(tmp_path_factory.mktemp("example_inprocess"))
    done = run_cli(root, "materialize", "--executor", "inprocess")
    assert done.returncode == 0, done.stdout + done.stderr
    return current_versions(home_of(root))


@pytest.mark.slow
def test_an_external_dask_cluster_makes_the_same_data_versions(
    tmp_path: Path, example_reference: set[tuple[str, str]]
) -> None:
    root = copy_example(tmp_path / "proj")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    started: list[subprocess.Popen[bytes]] = []

    def launch(name: str, *args: str) -> None:
        with (logs / f"{name}.log").open("wb") as out:
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", *args],
                    cwd=tmp_path,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    try:
        launch(
            "scheduler",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        )
        for n in range(2):
            launch(
                f"worker{n}",
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--no-dashboard",
                "--local-directory",
                str(tmp_path / f"worker{n}"),
            )
        ready = subprocess.run(
            [sys.executable, str(HELPERS / "exec_dask_client.py"), address, "wait", "2"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ready.returncode == 0, ready.stderr + "".join(p.read_text() for p in logs.iterdir())
        done = run_cli(root, "materialize", "--address", address)
        assert done.returncode == 0, done.stdout + done.stderr
        assert current_versions(home_of(root)) == example_reference
        assert_store_matches_catalog(root)
        # The assets were computed on that cluster: its workers imported the project.
        asked = subprocess.run(
            [
                sys.executable,
                str(HELPERS / "exec_dask_client.py"),
                address,
                "imported",
                "assets_example.marts",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert asked.returncode == 0, asked.stderr
        assert True in json.loads(asked.stdout)
    finally:
        for proc in reversed(started):
            kill_group(proc)


@pytest.mark.slow  # the Dask client tries to connect for 10 s before it gives up
def test_address_of_a_closed_port_is_a_one_line_error(shop: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    result = run_cli(shop, "materialize", "--address", address)
    one_line_error(result, "cannot reach the Dask scheduler", address)
    assert not (shop / ".vibepiper" / "catalog.duckdb").exists() or not catalog_rows(
        shop, "SELECT * FROM runs"
    )


def test_address_with_another_executor_is_a_usage_error(shop: Path) -> None:
    result = run_cli(shop, "materialize", "--executor", "processes", "--address", "tcp://1.2.3.4:1")
    one_line_error(result, "--address", "processes")


def test_a_malformed_address_is_a_one_line_error(shop: Path) -> None:
    result = run_cli(shop, "materialize", "--address", "tcp://127.0.0.1", timeout=60)
    one_line_error(result, "tcp://127.0.0.1")
