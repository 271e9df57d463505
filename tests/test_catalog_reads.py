"""`catalog.reads` on a real catalog: a tiny project run twice, the second time with data
that fails a check (its asset's output is rejected, its descendant blocked)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from vibepiper import Project
from vibepiper.catalog import reads
from vibepiper.errors import AssetNotMaterializedError, SelectionError

from .conftest import write_project

READS_SHOP = """
import pandas as pd
from vibepiper import asset, expect, source_file

raw = source_file("raw", "data/raw.csv")


@asset
def clean(context, raw: pd.DataFrame) -> pd.DataFrame:
    context.log.info("clean has %d rows", len(raw))
    return raw


@asset(checks=[expect.in_range("n", max=10, name="small")])
def capped(clean: pd.DataFrame) -> pd.DataFrame:
    return clean


@asset
def report(capped: pd.DataFrame) -> pd.DataFrame:
    return capped.assign(twice=capped.n * 2)
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The project after two runs: the first all succeeded, the second rejected `capped`."""
    path, modules = list(sys.path), set(sys.modules)
    root = write_project(
        tmp_path_factory.mktemp("reads") / "proj",
        {"reads_shop": READS_SHOP},
        {"data/raw.csv": "n\n1\n2\n3\n"},
    )
    assert Project(root).materialize().ok
    (root / "data" / "raw.csv").write_text("n\n1\n2\n30\n")
    assert not Project(root).materialize().ok
    yield Project(root)
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name == "reads_shop":
            del sys.modules[name]


def test_history_newest_first_with_inputs_and_checks(project: Project) -> None:
    rows = reads.history_rows(project.catalog, "capped", 10)
    assert [r["status"] for r in rows] == ["check_failed", "succeeded"]
    assert [i["asset"] for i in rows[1]["inputs"]] == ["clean"]
    assert [[(c["check_name"], c["passed"]) for c in r["checks"]] for r in rows] == [
        [("small", False)],
        [("small", True)],
    ]
    assert len(reads.history_rows(project.catalog, "capped", 1)) == 1
    assert reads.history_rows(project.catalog, "no_such_asset", 10) == []


def test_runs_count_how_their_assets_ended(project: Project) -> None:
    latest, first = reads.run_rows(project.catalog, 10)
    assert (first["status"], first["failed"], first["blocked"]) == ("succeeded", 0, 0)
    assert (latest["failed"], latest["blocked"]) == (1, 1)
    took = (latest["finished_at"] - latest["started_at"]).total_seconds()
    assert isinstance(latest["seconds"], float) and abs(latest["seconds"] - took) < 0.001
    assert reads.run_rows(project.catalog, 1) == [latest]


def test_logs_of_the_latest_run_or_a_prefix(project: Project) -> None:
    latest, first = reads.run_rows(project.catalog, 10)
    full, lines = reads.log_rows(project.catalog, "latest", None)
    assert full == latest["run_id"]
    assert ("clean", "clean has 3 rows") in [(r["asset"], r["message"]) for r in lines]
    full, lines = reads.log_rows(project.catalog, first["run_id"][:-2], "report")
    assert full == first["run_id"] and lines == []
    with pytest.raises(SelectionError, match="no run matches 'nope'"):
        reads.log_rows(project.catalog, "nope", None)
    with pytest.raises(SelectionError, match="more than one run"):
        reads.log_rows(project.catalog, "", None)


def test_last_states_and_last_run_with_its_causes(project: Project) -> None:
    states = reads.last_states(project.catalog)
    assert {k: states[k] for k in ("clean", "capped", "report")} == {
        "clean": "succeeded",
        "capped": "check_failed",
        "report": "blocked",
    }
    blocked = reads.last_run(project.catalog, "report", ["raw", "clean", "capped"])
    assert blocked is not None and blocked["status"] == "blocked"
    assert [(c["asset"], c["status"]) for c in blocked["caused_by"]] == [("capped", "check_failed")]
    failed = reads.last_run(project.catalog, "capped", ["raw", "clean"])
    assert failed is not None
    assert [c["check_name"] for c in failed["failed_checks"]] == ["small"]
    assert reads.last_run(project.catalog, "no_such_asset", []) is None


def test_latest_check_results_and_recent_materializations(project: Project) -> None:
    results = reads.last_check_results(project.catalog)
    assert [(r["asset"], r["check_name"], r["passed"]) for r in results] == [
        ("capped", "small", False)
    ]
    recent = reads.recent_materializations(project.catalog, 1)
    assert sorted(r["asset"] for r in recent if r["asset"] != "raw") == [
        "capped",
        "clean",
        "report",
    ]


def test_versions_expand_and_refuse_what_matches_nothing_or_several(project: Project) -> None:
    versions = [r["data_version"] for r in reads.history_rows(project.catalog, "clean", 10)]
    assert reads.full_version(project.catalog, "clean", versions[0][:8]) == versions[0]
    with pytest.raises(AssetNotMaterializedError, match="no data version 'zzz'"):
        reads.full_version(project.catalog, "clean", "zzz")
    with pytest.raises(AssetNotMaterializedError, match="ambiguous"):
        reads.full_version(project.catalog, "clean", "")


def test_rejected_and_quarantined_outputs(project: Project) -> None:
    (rejected,) = [
        r["materialization_id"]
        for r in reads.history_rows(project.catalog, "capped", 10)
        if r["status"] == "check_failed"
    ]
    assert reads.rejected_materialization(project.catalog, "capped") == rejected
    assert list(project.read("capped", rejected=True).n) == [1, 2, 30]
    with pytest.raises(AssetNotMaterializedError, match="has no rejected output"):
        reads.rejected_materialization(project.catalog, "clean")
    with pytest.raises(AssetNotMaterializedError, match="no quarantined rows"):
        reads.quarantined_materialization(project.catalog, "capped")


def test_the_version_tree_behind_a_data_version(project: Project) -> None:
    (made,) = reads.history_rows(project.catalog, "report", 10)[1:]  # the first run's
    tree = reads.version_tree(project.catalog, "report", made["data_version"][:10])
    assert (tree["data_version"], tree["run_id"]) == (made["data_version"], made["run_id"])
    (capped,) = tree["inputs"]
    (clean,) = capped["inputs"]
    assert (capped["asset"], clean["asset"]) == ("capped", "clean")
    assert clean["run_id"] == made["run_id"]  # not the second run's version of clean
    assert reads.version_tree(project.catalog, "report", made["materialization_id"]) == tree
    with pytest.raises(AssetNotMaterializedError, match="no data version or materialization"):
        reads.version_tree(project.catalog, "report", "zzz")


def test_what_doctor_and_query_read(project: Project) -> None:
    catalog = project.catalog
    made = catalog.fetch(
        "SELECT asset, data_version, status, materialization_id FROM materializations"
    )
    kept = {
        (r["asset"], r["data_version"]) for r in made if r["status"] in ("succeeded", "skipped")
    }
    assert reads.published_versions(catalog) == kept
    rejected = [r for r in made if r["asset"] == "capped" and r["status"] == "check_failed"]
    assert rejected and (rejected[0]["asset"], rejected[0]["data_version"]) not in kept
    assert reads.materialization_ids(catalog) == {r["materialization_id"] for r in made}
    assert reads.running_runs(catalog) == []  # both runs finished
    current = {r["asset"]: r for r in reads.current_data_rows(catalog)}
    assert set(current) == {"raw", "clean", "capped", "report"}
    assert current["capped"]["data_version"] != rejected[0]["data_version"]  # the first run's
    assert all(r["quarantined_rows"] in (0, None) for r in current.values())
