"""Every OpenLineage event a run emits, checked against the specification's own JSON schemas
(`../shared/specs/openlineage/`, spec 2-0-2 and its facets), offline: the run event against
`RunEvent`, and each facet against the schema its `_schemaURL` names, in the place that
schema is for (run, job, dataset, input or output facets). A facet whose schema is not
among those files fails the test, so a facet added later is validated too."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable

from vibepiper.version import __version__

from .conftest import run_cli, write_project
from .helpers.cancel import CANCELLABLE, start_materializing

# Next to the repository, as CI lays it out: a clone of main with ../shared beside it.
SPEC_DIR = Path(__file__).resolve().parents[2] / "shared" / "specs" / "openlineage"

ASSETS = """
import pandas as pd
import pandera.pandas as pa
from vibepiper import CheckResult, asset, check, expect, source_file

raw = source_file("raw", "data/raw.csv")

@asset(checks=[expect.not_null("n"), expect.in_range("n", min=0, max=2, severity="warn")])
def numbers(raw: pd.DataFrame) -> pd.DataFrame:
    return raw

@asset
def doubled(numbers: pd.DataFrame) -> pd.DataFrame:
    return numbers.assign(d=numbers.n * 2, label=numbers.n.astype(str))

@check(asset="doubled")
def positive(doubled: pd.DataFrame) -> CheckResult:
    return CheckResult(passed=bool((doubled.d > 0).all()))

@asset(checks=[expect.unique("n")])
def dupes(numbers: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([numbers, numbers])

@asset(schema=pa.DataFrameSchema({"n": pa.Column(int, pa.Check.le(2))}))
def typed(numbers: pd.DataFrame) -> pd.DataFrame:
    return numbers

@asset
def broken(numbers: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("no luck")

@asset
def after_broken(broken: pd.DataFrame) -> pd.DataFrame:
    return broken
"""

# Where each kind of facet goes, by the suffix of its definition's name (Input and Output
# before Dataset, which they end with).
PLACES = {
    "InputDatasetFacet": "input",
    "OutputDatasetFacet": "output",
    "DatasetFacet": "dataset",
    "RunFacet": "run",
    "JobFacet": "job",
}

# RFC 3339 (what JSON Schema's "date-time" means): a full date, time and offset.
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", re.IGNORECASE)
URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+")  # RFC 3986, absolute


class Spec:
    """The specification's schemas, each under its `$id`, and a validator for any of them."""

    def __init__(self, folder: Path) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}
        for path in [folder / "OpenLineage.json", *sorted((folder / "facets").glob("*.json"))]:
            contents = json.loads(path.read_text())
            self.schemas[contents["$id"]] = contents
        # No `retrieve`: a $ref outside these files is an error, never a download.
        self.registry = Registry().with_resources(
            (uri, Resource.from_contents(contents)) for uri, contents in self.schemas.items()
        )
        self.run_event = self.schemas_id("OpenLineage.json") + "#/$defs/RunEvent"

    def schemas_id(self, file: str) -> str:
        (uri,) = (uri for uri in self.schemas if uri.endswith("/" + file))
        return uri

    def errors(self, instance: Any, url: str) -> list[str]:
        """Why `instance` does not match the schema at `url` (none: it does)."""
        validator = Draft202012Validator(
            {"$ref": url}, registry=self.registry, format_checker=format_checker()
        )
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in validator.iter_errors(instance)
        ]

    def knows(self, url: str) -> bool:
        try:
            self.registry.resolver().lookup(url)
        except Unresolvable:
            return False
        return True


def format_checker() -> FormatChecker:
    """Draft 2020-12's format checks, with "date-time" and "uri" checked here: jsonschema
    checks them only when optional packages are installed, and would pass them silently."""
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not RFC3339.fullmatch(value):
            raise ValueError(f"{value!r} is not an RFC 3339 date-time")
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        return True

    @checker.checks("uri")
    def uri(value: object) -> bool:
        return not isinstance(value, str) or bool(URI.fullmatch(value))

    return checker


@pytest.fixture(scope="module")
def spec() -> Spec:
    if not (SPEC_DIR / "OpenLineage.json").is_file() or not (SPEC_DIR / "facets").is_dir():
        pytest.fail(
            f"the OpenLineage schemas are missing: {SPEC_DIR} has no OpenLineage.json and "
            "facets/; these tests need the shared/ folder next to the repository "
            "(../shared/specs/openlineage/), as CI lays it out",
            pytrace=False,
        )
    return Spec(SPEC_DIR)


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The events of one real run: succeeded, failed, check-failed (an expectation, a
    pandera schema) and blocked assets."""
    root = write_project(
        tmp_path_factory.mktemp("openlineage") / "proj",
        {"assets": ASSETS},
        {"data/raw.csv": "n\n1\n2\n3\n"},
        tool='[tool.vibepiper.openlineage]\ntransport = "file"\npath = "events.jsonl"\n',
    )
    proc = run_cli(root, "materialize")
    assert proc.returncode == 1, proc.stderr  # broken fails, dupes' and typed's checks fail
    lines = (root / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def facets_of(event: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(place, key, facet) for every facet of `event`."""
    for key, facet in event["run"].get("facets", {}).items():
        yield "run", key, facet
    for key, facet in event["job"].get("facets", {}).items():
        yield "job", key, facet
    for dataset in event.get("inputs", []) + event.get("outputs", []):
        for key, facet in dataset.get("facets", {}).items():
            yield "dataset", key, facet
    for dataset in event.get("inputs", []):
        for key, facet in dataset.get("inputFacets", {}).items():
            yield "input", key, facet
    for dataset in event.get("outputs", []):
        for key, facet in dataset.get("outputFacets", {}).items():
            yield "output", key, facet


def facet_problems(spec: Spec, place: str, key: str, facet: dict[str, Any]) -> list[str]:
    """What is wrong with one facet: a schema the specification does not have, a key or a
    place that schema is not for, or content it does not accept."""
    url = facet.get("_schemaURL")
    where = f"{place} facet {key!r}"
    if not isinstance(url, str) or "#/$defs/" not in url:
        return [f"{where}: _schemaURL {url!r} does not point to a facet's definition"]
    file_id, definition = url.split("#/$defs/", 1)
    if file_id not in spec.schemas or not spec.knows(url):
        return [
            f"{where}: _schemaURL {url} is none of the schemas in {SPEC_DIR} "
            "(a custom facet needs its own schema there to be validated)"
        ]
    expected = next(p for suffix, p in PLACES.items() if definition.endswith(suffix))
    problems = []
    if place != expected:
        problems.append(f"{where}: a {definition} belongs in the {expected} facets")
    declared = spec.schemas[file_id].get("properties", {}).get(key, {})
    if declared.get("$ref") != f"#/$defs/{definition}":
        problems.append(f"{where}: {file_id} names this facet otherwise")
    problems += [f"{where}: {error}" for error in spec.errors(facet, url)]
    return problems


def test_every_event_is_a_valid_run_event(spec: Spec, events: list[dict[str, Any]]) -> None:
    assert {e["eventType"] for e in events} == {"START", "COMPLETE", "FAIL"}
    assert events[0]["job"]["name"] == events[-1]["job"]["name"] == "vibepiper_run"
    for event in events:
        assert event["schemaURL"] == spec.run_event
        problems = spec.errors(event, event["schemaURL"])
        assert not problems, f"{event['job']['name']} {event['eventType']}: {problems}"
    jobs: dict[str, list[str]] = {}
    for event in events:
        jobs.setdefault(event["job"]["name"], []).append(event["eventType"])
    assert jobs == {
        "raw": ["START", "COMPLETE"],
        "numbers": ["START", "COMPLETE"],
        "doubled": ["START", "COMPLETE"],
        "dupes": ["START", "FAIL"],  # check_failed
        "typed": ["START", "FAIL"],  # check_failed: its pandera schema
        "broken": ["START", "FAIL"],
        "vibepiper_run": ["START", "FAIL"],  # the run itself, the parent of the others
    }  # after_broken was blocked: it did not run, so it has no events
    (parent,) = {e["run"]["runId"] for e in events if e["job"]["name"] == "vibepiper_run"}
    children = [e for e in events if e["job"]["name"] != "vibepiper_run"]
    assert {e["run"]["facets"]["parent"]["run"]["runId"] for e in children} == {parent}


def test_a_cancelled_run_aborts_its_running_asset_and_itself(spec: Spec, tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "proj",
        {"exec_assets": CANCELLABLE},
        tool='[tool.vibepiper.openlineage]\ntransport = "file"\npath = "events.jsonl"\n',
    )
    proc = start_materializing(root, "inprocess")
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, out + err
    events = [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines()]
    for event in events:
        assert not spec.errors(event, event["schemaURL"])
        for place, key, facet in facets_of(event):
            assert not facet_problems(spec, place, key, facet)
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("vibepiper_run", "START"),
        ("first", "START"),
        ("first", "COMPLETE"),
        ("slow", "START"),
        ("slow", "ABORT"),
        ("vibepiper_run", "ABORT"),
    ]


def test_every_facet_matches_its_own_schema(spec: Spec, events: list[dict[str, Any]]) -> None:
    seen = set()
    for event in events:
        for place, key, facet in facets_of(event):
            seen.add((place, key))
            problems = facet_problems(spec, place, key, facet)
            assert not problems, f"{event['job']['name']} {event['eventType']}: {problems}"
    # The run above produces every facet VibePiper emits (a new one must be added here).
    assert seen >= {
        ("run", "parent"),
        ("run", "errorMessage"),
        ("job", "jobType"),
        ("dataset", "schema"),
        ("dataset", "version"),
        ("dataset", "dataQualityAssertions"),
        ("output", "outputStatistics"),
    }


def test_vibepiper_is_the_producer_of_its_facets(events: list[dict[str, Any]]) -> None:
    for event in events:
        assert event["producer"] == f"https://pypi.org/project/vibepiper/{__version__}/"
        for place, key, facet in facets_of(event):
            if (place, key) == ("run", "tags"):  # added by openlineage-python itself
                continue
            assert facet["_producer"] == event["producer"], (place, key)


def test_assertions_name_the_kind_of_test_and_its_column(events: list[dict[str, Any]]) -> None:
    """`assertion` is the spec's classification of the test (not_null, unique, ...), `name`
    the check's own name, `column` the column it judges (none: the whole dataset)."""

    def assertions(job: str, kind: str) -> list[dict[str, Any]]:
        (event,) = (e for e in events if e["job"]["name"] == job and e["eventType"] == kind)
        (output,) = event["outputs"]
        return output["facets"]["dataQualityAssertions"]["assertions"]

    by_name = {a["name"]: a for a in assertions("numbers", "COMPLETE")}
    assert by_name["not_null_n"] == {
        "assertion": "not_null",
        "name": "not_null_n",
        "column": "n",
        "description": "not_null('n')",
        "severity": "error",
        "success": True,
        "params": {},
    }
    assert by_name["in_range_n"]["assertion"] == "in_range"
    assert (by_name["in_range_n"]["severity"], by_name["in_range_n"]["success"]) == ("warn", False)
    (unique,) = assertions("dupes", "FAIL")
    assert (unique["assertion"], unique["name"], unique["success"]) == ("unique", "unique_n", False)
    (positive,) = assertions("doubled", "COMPLETE")
    assert positive["assertion"] == "check" and positive["name"] == "positive"
    assert "column" not in positive  # a @check judges the whole dataset
    (schema,) = assertions("typed", "FAIL")
    assert (schema["assertion"], schema["success"]) == ("schema", False)


def test_the_validation_rejects_what_the_specification_rejects(
    spec: Spec, events: list[dict[str, Any]]
) -> None:
    """The checks above can fail: each broken copy of a real event is caught."""
    event = next(e for e in events if e["job"]["name"] == "broken" and e["eventType"] == "FAIL")
    bad_event: list[Callable[[dict[str, Any]], object]] = [
        lambda e: e.update(eventTime="2024-01-01 12:00"),
        lambda e: e.update(producer="not a uri"),
        lambda e: e["run"].update(runId="run-1"),
        lambda e: e.update(eventType="FAILED"),
        lambda e: e["run"]["facets"]["errorMessage"].pop("_producer"),
        lambda e: e.pop("schemaURL"),
    ]
    for spoil in bad_event:
        copy = json.loads(json.dumps(event))
        spoil(copy)
        assert spec.errors(copy, spec.run_event)
    message = event["run"]["facets"]["errorMessage"]
    assert not facet_problems(spec, "run", "errorMessage", message)
    assert facet_problems(spec, "run", "errorMessage", {**message, "programmingLanguage": 3})
    assert facet_problems(spec, "job", "errorMessage", message)  # not a job facet
    assert facet_problems(spec, "run", "error", message)  # not its name
    custom = {**message, "_schemaURL": "https://example.com/MyRunFacet.json#/$defs/MyRunFacet"}
    assert facet_problems(spec, "run", "vibepiper_mine", custom)  # a schema we do not have
