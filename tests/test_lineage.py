"""Lineage through the real CLI on the example project: the graph around a mart, the exact
source versions behind a mart version, and history with check results."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from vibepiper import Project

from .conftest import copy_example, run_cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_example(tmp_path_factory.mktemp("shop"))
    assert run_cli(root, "materialize").returncode == 0
    return root


def lineage(root: Path, *args: str) -> dict:
    proc = run_cli(root, "lineage", *args, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_upstream_and_downstream_of_a_mart(shop: Path) -> None:
    up = lineage(shop, "orders", "--upstream")
    assert {n["name"] for n in up["nodes"]} == {
        "orders",
        "stg_orders",
        "stg_payments",
        "stg_customers",
        "raw_orders",
        "raw_payments",
        "raw_customers",
    }
    assert ["stg_orders", "orders"] in up["edges"] and ["raw_orders", "stg_orders"] in up["edges"]
    assert all(n["state"] == "succeeded" and n["fresh"] for n in up["nodes"])
    down = lineage(shop, "orders", "--downstream")
    assert {n["name"] for n in down["nodes"]} == {"orders", "customers", "daily_revenue"}
    near = lineage(shop, "orders", "--upstream", "--depth", "1")
    assert {n["name"] for n in near["nodes"]} == {
        "orders",
        "stg_orders",
        "stg_payments",
        "stg_customers",
    }
    both = lineage(shop, "stg_orders")
    assert {"raw_orders", "orders", "daily_revenue"} <= {n["name"] for n in both["nodes"]}


def test_text_dot_and_mermaid(shop: Path) -> None:
    text = run_cli(shop, "lineage", "daily_revenue").stdout
    assert text.splitlines()[0] == "daily_revenue  [succeeded, fresh]"
    assert "  <- orders  [succeeded, fresh]" in text and "downstream:\n  (none)" in text
    dot = run_cli(shop, "lineage", "orders", "--format", "dot").stdout
    assert dot.startswith("digraph lineage {") and '"stg_orders" -> "orders";' in dot
    mermaid = run_cli(shop, "lineage", "orders", "--format", "mermaid").stdout
    assert mermaid.startswith("graph LR") and "  stg_orders --> orders" in mermaid
    bad = run_cli(shop, "lineage", "ordres")
    assert bad.returncode == 2 and "did you mean 'orders'" in bad.stderr


def _file_version(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def test_the_exact_source_versions_behind_a_mart_version(shop: Path) -> None:
    raw = shop / "assets_example" / "data" / "raw_orders.csv"
    made = []  # (daily_revenue's data version, the raw_orders file version then)
    for change in range(3):
        if change:
            text = raw.read_bytes()
            raw.write_bytes(text.replace(b",completed\r\n", b",returned\r\n", 1))
        assert run_cli(shop, "materialize").returncode == 0
        (current,) = json.loads(
            run_cli(
                shop,
                "query",
                "--json",
                "SELECT data_version FROM current_materializations WHERE asset = 'daily_revenue'",
            ).stdout
        )
        made.append((current["data_version"], _file_version(raw)))
    assert len({v for v, _ in made}) == 3 and len({f for _, f in made}) == 3
    for revenue_version, file_version in made:
        tree = lineage(shop, "daily_revenue", "--version", revenue_version[:12])
        assert tree["data_version"] == revenue_version
        (orders,) = tree["inputs"]
        stg_orders = next(i for i in orders["inputs"] if i["asset"] == "stg_orders")
        (raw_orders,) = [i for i in stg_orders["inputs"] if i["asset"] == "raw_orders"]
        assert raw_orders["data_version"] == file_version
    text = run_cli(shop, "lineage", "daily_revenue", "--version", made[0][0][:12]).stdout
    assert f"<- raw_orders @ {made[0][1][:12]}" in text


def test_history_with_check_results(shop: Path) -> None:
    proc = run_cli(shop, "history", "customers", "--json")
    history = json.loads(proc.stdout)
    latest = history[0]
    names = {c["check_name"]: c for c in latest["checks"]}
    assert {"schema", "unique_customer_id", "every_customer_ordered"} <= set(names)
    warn = names["every_customer_ordered"]
    assert warn["severity"] == "warn" and warn["passed"] is False and warn["failing_rows"] == 38
    assert latest["inputs"] and {i["asset"] for i in latest["inputs"]} == {
        "stg_customers",
        "orders",
    }


def test_python_api(shop: Path) -> None:
    project = Project(shop)
    frame = project.lineage("orders", downstream=False)
    assert set(frame.relation) == {"self", "upstream"}
    assert ("stg_orders", "orders") in frame.attrs["edges"]
    history = project.history("orders")
    assert list(history.columns[:3]) == ["materialization_id", "run_id", "asset"]
    assert project.query("SELECT count(*) AS n FROM orders").n[0] == 99
