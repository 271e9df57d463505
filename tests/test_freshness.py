"""Freshness: every reason an asset is stale, explained in words, through the real CLI;
helpers, constants and classes the code uses; early cutoff; `explain`."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vibepiper import Project

from .conftest import catalog_rows, invoke, run_cli

HELPERS = """
RATE = 2
SKIP = {"b", "a"}


def scale(frame):
    return frame.assign(scaled=frame.n * RATE)


class Cleaner:
    suffix = "!"

    def tidy(self, text):
        return text.strip() + self.suffix
"""

ASSETS = '''
import pandas as pd
import pyarrow as pa
from vibepiper import asset, source_file
import helpers
from helpers import Cleaner, scale

raw = source_file("raw", "data/raw.csv")


@asset
def clean(raw: pd.DataFrame) -> pd.DataFrame:
    """Rows with a value."""
    return raw.dropna().reset_index(drop=True)  # drop incomplete rows


@asset
def scaled(clean: pd.DataFrame) -> pd.DataFrame:
    return scale(clean)


@asset
def labelled(clean: pd.DataFrame) -> pd.DataFrame:
    return clean.assign(label=[Cleaner().tidy(f" {n} ") for n in clean.n])


@asset
def skipping(clean: pd.DataFrame) -> pd.DataFrame:
    return clean[~clean.n.astype(str).isin(helpers.SKIP)].reset_index(drop=True)


@asset
def summary(scaled: pd.DataFrame, factor: int = 1) -> pd.DataFrame:
    return pd.DataFrame({"total": [int(scaled.scaled.sum()) * factor]})
'''


@pytest.fixture
def proj(project_dir: Callable[..., Path]) -> Path:
    root = project_dir({"assets": ASSETS, "helpers": HELPERS}, {"data/raw.csv": "n\n1\n2\n3\n"})
    assert run_cli(root, "materialize").returncode == 0
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def states_of_last_run(root: Path) -> dict[str, str]:
    return dict(
        catalog_rows(
            root,
            "SELECT asset, status FROM materializations WHERE run_id = "
            "(SELECT max(run_id) FROM runs)",
        )
    )


def status(root: Path) -> dict[str, list[str]]:
    return {s["name"]: s["reasons"] for s in json.loads(invoke(root, "status", "--json").output)}


def recomputed(root: Path) -> set[str]:
    proc = run_cli(root, "materialize")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {a for a, s in states_of_last_run(root).items() if s == "succeeded"}


def test_nothing_changed_nothing_runs(proj: Path) -> None:
    assert all(not r for r in status(proj).values())
    assert recomputed(proj) == set()


def test_comment_docstring_and_formatting_do_not_count(proj: Path) -> None:
    module = proj / "assets.py"
    edit(module, "# drop incomplete rows", "# drop rows that are incomplete")
    edit(module, '"""Rows with a value."""', '"""Rows that have a value."""')
    edit(
        module,
        "return raw.dropna().reset_index(drop=True)",
        "return raw.dropna(  ).reset_index(\n        drop=True\n    )",
    )
    assert recomputed(proj) == set()


def test_code_change_with_the_same_output_stops_at_that_asset(proj: Path) -> None:
    edit(
        proj / "assets.py",
        "return raw.dropna().reset_index(drop=True)",
        "kept = raw.dropna()\n    return kept.reset_index(drop=True)",
    )
    assert status(proj)["clean"] == ["code changed"]
    assert recomputed(proj) == {"clean"}  # early cutoff: same data, downstream fresh


def test_a_changed_helper_function_is_seen(proj: Path) -> None:
    edit(
        proj / "helpers.py",
        "return frame.assign(scaled=frame.n * RATE)",
        "return frame.assign(scaled=frame.n * RATE + 1)",
    )
    assert status(proj)["scaled"] == ["helper scale() changed"]
    assert status(proj)["summary"] == ["upstream scaled is stale"]
    assert recomputed(proj) == {"scaled", "summary"}


def test_a_changed_constant_is_seen(proj: Path) -> None:
    edit(proj / "helpers.py", "RATE = 2", "RATE = 3")
    assert status(proj)["scaled"] == ["constant RATE changed"]
    assert recomputed(proj) == {"scaled", "summary"}


def test_a_constant_reached_through_a_module_is_seen(proj: Path) -> None:
    edit(proj / "helpers.py", 'SKIP = {"b", "a"}', 'SKIP = {"a", "b", "2"}')
    assert status(proj)["skipping"] == ["constant helpers.SKIP changed"]
    assert recomputed(proj) == {"skipping"}


def test_a_set_constant_in_another_order_is_the_same(proj: Path) -> None:
    edit(proj / "helpers.py", 'SKIP = {"b", "a"}', 'SKIP = {"a", "b"}')
    assert recomputed(proj) == set()


def test_a_changed_class_method_is_seen(proj: Path) -> None:
    edit(
        proj / "helpers.py",
        "return text.strip() + self.suffix",
        "return text.strip().upper() + self.suffix",
    )
    assert status(proj)["labelled"] == ["class Cleaner changed"]
    assert recomputed(proj) == {"labelled"}


def test_a_changed_config_value(proj: Path) -> None:
    edit(proj / "assets.py", "factor: int = 1", "factor: int = 2")
    assert status(proj)["summary"] == ["configuration changed"]
    assert recomputed(proj) == {"summary"}


def test_a_changed_source_file_and_the_reasons_downstream(proj: Path) -> None:
    (proj / "data" / "raw.csv").write_text("n\n1\n2\n3\n4\n")
    reasons = status(proj)
    assert reasons["raw"] == ["source data/raw.csv changed"]
    assert reasons["clean"] == ["upstream raw is stale"]
    plan = invoke(proj, "materialize", "--dry-run").output
    assert "clean     upstream raw will be recomputed" in plan
    assert recomputed(proj) == {"raw", "clean", "scaled", "labelled", "skipping", "summary"}


def test_a_source_touched_without_change_is_not_rehashed_into_a_change(proj: Path) -> None:
    data = proj / "data" / "raw.csv"
    os.utime(data, (time.time() + 5, time.time() + 5))
    assert recomputed(proj) == set()
    cache = json.loads((proj / ".vibepiper" / "source-hashes.json").read_text())
    assert str(data) in cache


def test_upstream_changed_since_names_the_time(proj: Path) -> None:
    (proj / "data" / "raw.csv").write_text("n\n5\n")
    assert run_cli(proj, "materialize", "raw clean").returncode == 0
    (reason,) = status(proj)["scaled"]
    assert reason.startswith("upstream clean changed since 20") and reason.endswith("UTC")


def test_missing_file_and_last_failed_attempt(proj: Path) -> None:
    for file in (proj / ".vibepiper" / "store" / "summary").glob("*.parquet"):
        file.unlink()
    assert status(proj)["summary"] == ["its stored file is missing"]
    assert recomputed(proj) == {"summary"}

    edit(
        proj / "assets.py",
        'return pd.DataFrame({"total"',
        'raise RuntimeError("down")\n    return pd.DataFrame({"total"',
    )
    assert run_cli(proj, "materialize").returncode == 1
    edit(proj / "assets.py", 'raise RuntimeError("down")\n', "")
    # The code is back as it was when the current data was made, but the last attempt failed.
    assert status(proj)["summary"] == ["the last attempt failed"]
    assert recomputed(proj) == {"summary"}


def test_max_age(project_dir: Callable[..., Path]) -> None:
    root = project_dir(
        {
            "aged": """
import pandas as pd
from vibepiper import asset

@asset(max_age=3600)
def ticking() -> pd.DataFrame:
    return pd.DataFrame({"x": [1]})
"""
        }
    )
    assert run_cli(root, "materialize").returncode == 0
    assert status(root)["ticking"] == []
    # Two hours pass (the catalog's clock moved back, not the test's: no sleeping, so the
    # test does not depend on how fast `status` starts).
    import duckdb

    con = duckdb.connect(str(root / ".vibepiper" / "catalog.duckdb"))
    con.execute(
        "UPDATE materializations SET started_at = started_at - INTERVAL 2 HOUR, "
        "finished_at = finished_at - INTERVAL 2 HOUR"
    )
    con.close()
    (reason,) = status(root)["ticking"]
    assert reason.startswith("older than max_age (1h), made 20")


def test_version_pins_the_code_version(project_dir: Callable[..., Path]) -> None:
    source = """
import pandas as pd
from vibepiper import asset

@asset(version="1")
def pinned() -> pd.DataFrame:
    return pd.DataFrame({"x": [BODY]})
"""
    root = project_dir({"pinned": source.replace("BODY", "1")})
    assert run_cli(root, "materialize").returncode == 0
    (root / "pinned.py").write_text(source.replace("BODY", "2"))
    assert status(root)["pinned"] == []  # the user said the version is still 1
    (root / "pinned.py").write_text(source.replace("BODY", "2").replace('"1"', '"2"'))
    assert status(root)["pinned"] == ["version changed (1 -> 2)"]


def test_explain_traces_to_the_root_cause(proj: Path) -> None:
    edit(proj / "helpers.py", "RATE = 2", "RATE = 5")
    (proj / "data" / "raw.csv").write_text("n\n1\n")
    out = run_cli(proj, "explain", "summary").stdout
    assert "summary: stale" in out
    assert "scaled: stale" in out and "constant RATE changed" in out
    assert "raw: stale" in out and "source data/raw.csv changed" in out
    roots = out.split("root causes:")[1]
    assert "raw: source data/raw.csv changed" in roots and "scaled: constant RATE changed" in roots
    assert "last run" in out
    tree = json.loads(invoke(proj, "explain", "summary", "--json").output)
    assert tree["asset"] == "summary" and tree["upstream"][0]["asset"] == "scaled"


def test_explain_a_blocked_asset_names_the_failure(proj: Path) -> None:
    edit(
        proj / "helpers.py",
        "return frame.assign(",
        "raise ValueError('no scale')\n    return frame.assign(",
    )
    assert run_cli(proj, "materialize").returncode == 1
    out = run_cli(proj, "explain", "summary").stdout
    assert "blocked" in out
    assert "because scaled failed: ValueError: no scale" in out


def test_code_versions_are_recorded_with_their_parts(proj: Path) -> None:
    (parts,) = catalog_rows(proj, "SELECT code_parts FROM materializations WHERE asset = 'scaled'")[
        0
    ]
    recorded = json.loads(parts)
    assert {"code", "config", "helper scale()", "constant RATE", "library pandas"} <= set(recorded)
    assert Project(proj).status()["scaled"].fresh


def test_an_asset_whose_code_cannot_be_fingerprinted_is_always_recomputed(
    project_dir: Callable[..., Path],
) -> None:
    root = project_dir(
        {
            "odd": """
import pandas as pd
from vibepiper import asset


class Broken(dict):
    def items(self):
        raise RuntimeError("cannot look inside")


@asset
def odd(setting: dict = Broken(a=1)) -> pd.DataFrame:
    return pd.DataFrame({"x": [1]})
"""
        }
    )
    assert run_cli(root, "materialize").returncode == 0
    (reason,) = status(root)["odd"]
    assert reason.startswith("its code version could not be computed (RuntimeError: cannot")
    assert recomputed(root) == {"odd"}
