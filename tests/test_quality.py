"""Data quality end to end: write-audit-publish, blocking, warnings, quarantine, and
`vibepiper check` for CI (JUnit XML, GitHub annotations, --require-fresh)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from vibepiper import Project

from .conftest import catalog_rows, invoke, run_cli

SHOP = """
import pandas as pd
import pandera.pandas as pa
from vibepiper import asset, check, expect, source_file, CheckResult

raw_orders = source_file("raw_orders", "data/orders.csv")
raw_customers = source_file("raw_customers", "data/customers.csv")


class Orders(pa.DataFrameModel):
    order_id: int = pa.Field(unique=True)
    customer_id: int
    amount: float = pa.Field(ge=0)

    class Config:
        coerce = True


@asset(schema=Orders, checks=[
    expect.row_count(min=1),
    expect.relationship("customer_id", to="customers", field="customer_id"),
    expect.in_range("amount", max=1000, severity="warn", name="amount_plausible"),
])
def orders(raw_orders: pd.DataFrame) -> pd.DataFrame:
    return raw_orders


@asset(checks=[expect.unique("customer_id")])
def customers(raw_customers: pd.DataFrame) -> pd.DataFrame:
    return raw_customers


@asset
def revenue(orders: pd.DataFrame) -> pd.DataFrame:
    return orders.groupby("customer_id", as_index=False)["amount"].sum()


@asset
def unrelated() -> pd.DataFrame:
    return pd.DataFrame({"x": [1, 2]})


@check(asset="revenue", severity="error")
def revenue_positive(revenue: pd.DataFrame, customers: pd.DataFrame) -> CheckResult:
    bad = revenue[revenue.amount < 0]
    return CheckResult(passed=bad.empty, failing_rows=bad, message=f"{len(bad)} negative")
"""

GOOD = {
    "data/orders.csv": "order_id,customer_id,amount\n1,1,10.5\n2,2,20\n3,1,5\n",
    "data/customers.csv": "customer_id,name\n1,ann\n2,bob\n",
}
BAD_ORDERS = "order_id,customer_id,amount\n1,1,10.5\n1,2,-20\n3,9,5\n4,2,7\n"


@pytest.fixture
def shop(project_dir: Callable[..., Path]) -> Path:
    return project_dir({"shop": SHOP}, GOOD)


def test_a_failed_check_keeps_the_previous_version_and_blocks_downstream(shop: Path) -> None:
    assert run_cli(shop, "materialize").returncode == 0
    before = Project(shop).read("orders")
    (shop / "data" / "orders.csv").write_text(BAD_ORDERS)

    proc = run_cli(shop, "materialize")
    assert proc.returncode == 1
    states = dict(
        catalog_rows(
            shop,
            "SELECT asset, status FROM materializations WHERE run_id "
            "= (SELECT max(run_id) FROM runs)",
        )
    )
    assert states["orders"] == "check_failed"
    assert states["revenue"] == "blocked"
    assert states["unrelated"] == "skipped" and states["customers"] == "skipped"
    # The report says which checks failed, how many rows, shows some, and what was blocked.
    out = proc.stdout
    assert "schema.order_id.field_uniqueness [error]" in out
    assert "schema.amount.greater_than_or_equal_to(0) [error]" in out
    assert "relationship_customer_id_to_customers [error]" in out
    assert "failed for 1 of 4 rows" in out and '"customer_id": 9' in out
    assert "blocked because of it: revenue" in out

    project = Project(shop)
    assert project.read("orders").equals(before)  # the previous version is still current
    rejected = project.read("orders", rejected=True)
    assert len(rejected) == 4 and 9 in set(rejected.customer_id)
    shown = run_cli(shop, "show", "orders", "--rejected")
    assert shown.returncode == 0 and "-20" in shown.stdout

    rows = catalog_rows(
        shop,
        "SELECT check_name, severity, passed, failing_rows, sample FROM check_results "
        "JOIN materializations USING (materialization_id) WHERE asset = 'orders' "
        "AND status = 'check_failed' ORDER BY check_name",
    )
    by_name = {r[0]: r for r in rows}
    assert by_name["relationship_customer_id_to_customers"][2:4] == (False, 1)
    assert json.loads(by_name["relationship_customer_id_to_customers"][4]) == [
        {"order_id": 3, "customer_id": 9, "amount": 5.0}
    ]
    assert by_name["schema.order_id.field_uniqueness"][2:4] == (False, 2)
    assert by_name["row_count"][2] is True


def test_a_warn_failure_publishes_reports_and_exits_0(shop: Path) -> None:
    (shop / "data" / "orders.csv").write_text("order_id,customer_id,amount\n1,1,5000\n")
    proc = run_cli(shop, "materialize")
    assert proc.returncode == 0, proc.stdout
    assert "! amount_plausible [warn]" in proc.stdout
    assert list(Project(shop).read("orders").amount) == [5000.0]
    (passed,) = catalog_rows(
        shop, "SELECT passed FROM check_results WHERE check_name = 'amount_plausible'"
    )
    assert passed == (False,)


def test_schema_coercion_is_what_gets_published(shop: Path) -> None:
    (shop / "data" / "orders.csv").write_text("order_id,customer_id,amount\n1,1,5\n")
    assert run_cli(shop, "materialize").returncode == 0
    orders = Project(shop).read("orders")
    assert str(orders.amount.dtype) == "float64"  # the CSV's int column, coerced


def test_check_command_for_ci(shop: Path, tmp_path: Path) -> None:
    assert run_cli(shop, "materialize").returncode == 0
    junit = tmp_path / "out" / "junit.xml"
    proc = run_cli(shop, "check", "--junit-xml", str(junit))
    assert proc.returncode == 0, proc.stdout
    assert "0 failed" in proc.stdout
    assert "::error" not in proc.stdout  # annotations only under GitHub Actions
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    cases = {(c.get("classname"), c.get("name")) for c in suite.iter("testcase")}
    assert ("orders", "relationship_customer_id_to_customers") in cases
    assert ("revenue", "revenue_positive") in cases
    assert suite.get("failures") == "0"

    # A stricter check on the current data: `check` fails without recomputing anything.
    module = shop / "shop.py"
    module.write_text(
        module.read_text().replace('expect.unique("customer_id")])', "expect.row_count(min=5)])")
    )
    runs_before = catalog_rows(shop, "SELECT count(*) FROM materializations")
    proc = run_cli(shop, "check", "--junit-xml", str(junit), env={"GITHUB_ACTIONS": "true"})
    assert proc.returncode == 1
    assert (
        "::error title=vibepiper check row_count on customers::2 rows, expected at least 5"
        in proc.stdout
    )
    assert catalog_rows(shop, "SELECT count(*) FROM materializations") == runs_before
    root = ET.parse(junit).getroot()
    failures = [
        (c.get("classname"), c.get("name"), c.find("failure").get("message"))
        for c in root.iter("testcase")
        if c.find("failure") is not None
    ]
    assert failures == [("customers", "row_count", "2 rows, expected at least 5")]
    (kind, status) = catalog_rows(
        shop, "SELECT kind, status FROM runs ORDER BY run_id DESC LIMIT 1"
    )[0]
    assert (kind, status) == ("check", "failed")


def test_check_require_fresh(shop: Path) -> None:
    result = invoke(shop, "check")
    assert result.exit_code == 0  # nothing materialized: nothing to check, not a failure
    result = invoke(shop, "check", "--require-fresh")
    assert result.exit_code == 1 and "never materialized" in result.output
    assert run_cli(shop, "materialize").returncode == 0
    assert invoke(shop, "check", "--require-fresh").exit_code == 0
    (shop / "data" / "customers.csv").write_text("customer_id,name\n1,ann\n2,bob\n3,cy\n")
    result = invoke(shop, "check", "--require-fresh", "customers")
    assert result.exit_code == 1
    assert "stale: upstream raw_customers is stale" in result.output


QUARANTINE = """
import pandas as pd
from vibepiper import asset, expect

@asset(quarantine=True, checks=[expect.not_null("email"), expect.unique("id")])
def contacts() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2, 3, 3] + list(range(4, 80)),
                         "email": ["a@x", None, "c@x", "d@x"] + ["e@x"] * 76})

@asset(quarantine=True, max_quarantined=0.1, checks=[expect.not_null("v")])
def mostly_bad() -> pd.DataFrame:
    return pd.DataFrame({"v": [1, None, None, None]})
"""


def test_quarantine_publishes_clean_rows_and_keeps_the_rest(
    project_dir: Callable[..., Path],
) -> None:
    root = project_dir({"q": QUARANTINE})
    proc = run_cli(root, "materialize")
    assert proc.returncode == 1  # mostly_bad quarantined 75% > 10%
    project = Project(root)
    contacts = project.read("contacts")
    assert len(contacts) == 77 and 2 not in set(contacts.id) and 3 not in set(contacts.id)
    removed = project.read("contacts", quarantined=True)
    assert sorted(removed.id) == [2, 3, 3]
    assert set(removed._vp_reason) == {"not_null_email", "unique_id"}
    assert "not_null_email [quarantined]" in proc.stdout
    assert "quarantine removed 3 of 4 rows (75.0%), more than max_quarantined=0.1" in proc.stdout
    rows = json.loads(
        run_cli(
            root, "query", "--json", "SELECT id, _vp_reason FROM quarantine.contacts ORDER BY id"
        ).stdout
    )
    assert rows == [
        {"id": 2, "_vp_reason": "not_null_email"},
        {"id": 3, "_vp_reason": "unique_id"},
        {"id": 3, "_vp_reason": "unique_id"},
    ]
    (count,) = catalog_rows(
        root, "SELECT quarantined_rows FROM materializations WHERE asset = 'contacts'"
    )
    assert count == (3,)
    states = dict(catalog_rows(root, "SELECT asset, status FROM materializations"))
    assert states == {"contacts": "succeeded", "mostly_bad": "check_failed"}
