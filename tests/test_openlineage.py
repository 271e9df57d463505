"""OpenLineage events: START and COMPLETE/FAIL per computed asset, to a file and to a real
local HTTP server, with schema, version, row count and data-quality facets."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import pytest

from .conftest import catalog_rows, run_cli

ASSETS = """
import pandas as pd
from vibepiper import asset, expect

@asset(checks=[expect.not_null("n")])
def numbers() -> pd.DataFrame:
    return pd.DataFrame({"n": [1, 2, 3]})

@asset
def doubled(numbers: pd.DataFrame) -> pd.DataFrame:
    return numbers.assign(d=numbers.n * 2)

@asset
def broken(numbers: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("no luck")
"""


def check_event(event: dict) -> None:
    """The fields the OpenLineage RunEvent spec requires, with their formats."""
    assert event["eventType"] in ("START", "COMPLETE", "FAIL")
    datetime.fromisoformat(event["eventTime"])
    uuid.UUID(event["run"]["runId"])
    assert event["producer"].startswith("https://")
    assert event["schemaURL"].startswith("https://openlineage.io/spec/")
    assert event["job"]["namespace"] == "vibepiper://proj" and event["job"]["name"]
    for dataset in event["inputs"] + event["outputs"]:
        assert dataset["namespace"] and dataset["name"]
        for facet in dataset["facets"].values():
            assert facet["_producer"] and facet["_schemaURL"].startswith("https://openlineage")
    for facet in event["run"]["facets"].values():
        assert facet["_producer"] and facet["_schemaURL"]


def by_job(events: list[dict]) -> dict[str, list[dict]]:
    jobs: dict[str, list[dict]] = {}
    for event in events:
        jobs.setdefault(event["job"]["name"], []).append(event)
    return jobs


def test_file_transport(project_dir: Callable[..., Path]) -> None:
    root = project_dir(
        {"assets": ASSETS},
        tool='[tool.vibepiper.openlineage]\ntransport = "file"\npath = "events.jsonl"\n',
    )
    assert run_cli(root, "materialize").returncode == 1  # broken fails
    events = [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines()]
    for event in events:
        check_event(event)
    jobs = by_job(events)
    assert [e["eventType"] for e in jobs["numbers"]] == ["START", "COMPLETE"]
    assert [e["eventType"] for e in jobs["broken"]] == ["START", "FAIL"]
    assert jobs["broken"][1]["run"]["facets"]["errorMessage"]["message"].startswith(
        "ValueError: no luck"
    )
    start, done = jobs["doubled"]
    assert start["run"]["runId"] == done["run"]["runId"]
    (parent,) = jobs.pop("vibepiper_run")[:1]  # the run itself: START, then FAIL
    assert [e["eventType"] for e in by_job(events)["vibepiper_run"]] == ["START", "FAIL"]
    assert {
        e["run"]["facets"]["parent"]["run"]["runId"] for jobs_ in jobs.values() for e in jobs_
    } == {parent["run"]["runId"]}
    (output,) = done["outputs"]
    assert [f["name"] for f in output["facets"]["schema"]["fields"]] == ["n", "d"]
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 3
    versions = dict(catalog_rows(root, "SELECT asset, data_version FROM materializations"))
    assert output["facets"]["version"]["datasetVersion"] == versions["doubled"]
    (read,) = done["inputs"]
    assert read["name"] == "numbers"
    assert read["facets"]["version"]["datasetVersion"] == versions["numbers"]
    checks = jobs["numbers"][1]["outputs"][0]["facets"]["dataQualityAssertions"]["assertions"]
    assert checks == [
        {
            "assertion": "not_null",
            "name": "not_null_n",
            "column": "n",
            "description": "not_null('n')",
            "success": True,
            "severity": "error",
            "params": {},
        }
    ]
    # A second run computes only the failed asset: nothing is emitted for skipped ones.
    (root / "events.jsonl").unlink()
    run_cli(root, "materialize")
    again = by_job([json.loads(x) for x in (root / "events.jsonl").read_text().splitlines()])
    assert set(again) == {"broken", "vibepiper_run"}


class Recorder(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Recorder.received.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.received = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_http_transport(project_dir: Callable[..., Path], server: str) -> None:
    root = project_dir(
        {"assets": ASSETS},
        tool=f'[tool.vibepiper.openlineage]\ntransport = "http"\nurl = "{server}"\n',
    )
    assert run_cli(root, "materialize", "numbers+,doubled numbers").returncode == 0
    assert {r["path"] for r in Recorder.received} == {"/api/v1/lineage"}
    events = [r["body"] for r in Recorder.received]
    for event in events:
        check_event(event)
    assert sorted((e["job"]["name"], e["eventType"]) for e in events) == [
        ("doubled", "COMPLETE"),
        ("doubled", "START"),
        ("numbers", "COMPLETE"),
        ("numbers", "START"),
        ("vibepiper_run", "COMPLETE"),
        ("vibepiper_run", "START"),
    ]


def test_an_unreachable_server_does_not_fail_the_run(project_dir: Callable[..., Path]) -> None:
    root = project_dir(
        {"assets": ASSETS},
        tool="[tool.vibepiper.openlineage]\n"
        'transport = "http"\nurl = "http://127.0.0.1:9"\ntimeout = 1\n',
    )
    proc = run_cli(root, "materialize", "numbers")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("warning: OpenLineage events could not be sent") == 1


def test_a_bad_configuration_is_a_usage_error(project_dir: Callable[..., Path]) -> None:
    root = project_dir(
        {"assets": ASSETS}, tool='[tool.vibepiper.openlineage]\ntransport = "kafka"\n'
    )
    proc = run_cli(root, "materialize")
    assert proc.returncode == 2
    assert "[tool.vibepiper] openlineage" in proc.stderr and "Traceback" not in proc.stderr
