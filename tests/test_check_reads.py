"""Checks that read other assets: a relationship's target, a `@check` function's other
parameters, the tables an `expect.sql` query names. The data a check reads is an input
of its verdict: when it changes, the checked asset is validated again (not recomputed),
and a failure blocks what is downstream of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import catalog_rows, invoke, run_cli, write_project

AIR = """
import pandas as pd
from pathlib import Path
from vibepiper import asset, check, expect, source_file

raw_airlines = source_file("raw_airlines", "data/airlines.csv")
raw_flights = source_file("raw_flights", "data/flights.csv")

@asset
def airlines(raw_airlines: pd.DataFrame) -> pd.DataFrame:
    return raw_airlines

@asset(checks=[expect.relationship("carrier", to="airlines", field="carrier")])
def flights(raw_flights: pd.DataFrame) -> pd.DataFrame:
    with open("calls.txt", "a") as calls:  # how many times it was computed
        calls.write("flights\\n")
    return raw_flights

@asset
def by_carrier(flights: pd.DataFrame) -> pd.DataFrame:
    return flights.groupby("carrier", as_index=False).size()
"""

AIRLINES = "carrier,name\nAA,American\nDL,Delta\nUA,United\n"
FLIGHTS = "id,carrier\n" + "".join(f"{i},{('AA', 'DL', 'UA')[i % 3]}\n" for i in range(300))
RELATIONSHIP = "relationship_carrier_to_airlines"


@pytest.fixture
def air(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "air",
        {"air": AIR},
        {"data/airlines.csv": AIRLINES, "data/flights.csv": FLIGHTS},
    )


def _states(root: Path, run: int = -1) -> dict[str, str]:
    runs = [
        r
        for (r,) in catalog_rows(
            root, "SELECT run_id FROM runs WHERE kind = 'materialize' ORDER BY run_id"
        )
    ]
    found = catalog_rows(
        root, "SELECT asset, status FROM materializations WHERE run_id = ?", [runs[run]]
    )
    return dict(found)


def _calls(root: Path) -> int:
    path = root / "calls.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_removing_a_referenced_key_fails_the_run_and_restoring_it_passes(air: Path) -> None:
    assert run_cli(air, "materialize").returncode == 0
    assert _calls(air) == 1
    (air / "data" / "airlines.csv").write_text("carrier,name\nAA,American\nDL,Delta\n")

    status = invoke(air, "status", "flights")
    assert f"check {RELATIONSHIP} reads airlines, which is stale" in status.output
    plan = run_cli(air, "materialize", "--dry-run")
    assert "check flights" in plan.stdout and "skip  by_carrier" in plan.stdout

    failed = run_cli(air, "materialize")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    states = _states(air)
    assert states["flights"] == "check_failed" and states["by_carrier"] == "blocked"
    assert states["airlines"] == "succeeded"
    assert _calls(air) == 1  # validated again, not recomputed
    (passed, failing) = catalog_rows(
        air,
        "SELECT passed, failing_rows FROM check_results JOIN materializations "
        "USING (materialization_id) WHERE asset = 'flights' AND status = 'check_failed'",
    )[0]
    assert (passed, failing) == (False, 100)

    # still failing, every run, until the key is back; `check` and status agree
    again = run_cli(air, "materialize")
    assert again.returncode == 1 and _states(air)["flights"] == "check_failed"
    assert run_cli(air, "check", "flights").returncode == 1
    assert run_cli(air, "check", "--require-fresh", "flights").returncode == 1
    explained = invoke(air, "explain", "flights").output
    assert f"check {RELATIONSHIP} reads airlines, which changed" in explained

    (air / "data" / "airlines.csv").write_text(AIRLINES)
    restored = run_cli(air, "materialize")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert _states(air)["flights"] == "succeeded"
    assert run_cli(air, "check", "--require-fresh").returncode == 0
    assert set(run_states(air).values()) == {"skipped"}


def run_states(root: Path) -> dict[str, str]:
    done = run_cli(root, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    return _states(root)


def test_a_passing_revalidation_keeps_the_data_and_downstream_fresh(air: Path) -> None:
    assert run_cli(air, "materialize").returncode == 0
    version = catalog_rows(
        air, "SELECT data_version FROM current_materializations WHERE asset = 'flights'"
    )
    (air / "data" / "airlines.csv").write_text(AIRLINES + "ZZ,Unused\n")  # a new key only
    done = run_cli(air, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rows revalidated" not in done.stdout and "300 rows revalidated" in done.stdout
    states = _states(air)
    assert states["flights"] == "succeeded" and states["by_carrier"] == "skipped"
    assert _calls(air) == 1
    row = catalog_rows(
        air,
        "SELECT data_version, reason, attempts FROM current_materializations "
        "WHERE asset = 'flights'",
    )[0]
    assert (row[0],) == version[0]
    assert (
        row[1] == f"revalidated, not recomputed: check {RELATIONSHIP} reads airlines, which changed"
    )
    assert row[2] == 0
    reads = catalog_rows(
        air,
        "SELECT r.asset, r.data_version = a.data_version FROM check_reads r "
        "JOIN current_materializations f USING (materialization_id) "
        "JOIN current_materializations a ON a.asset = r.asset WHERE f.asset = 'flights'",
    )
    assert reads == [("airlines", True)]
    assert "validated again, not recomputed" in invoke(air, "explain", "flights").output
    assert set(run_states(air).values()) == {"skipped"}


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_revalidation_on_other_executors(air: Path, executor: str) -> None:
    assert run_cli(air, "materialize", "--executor", executor).returncode == 0
    (air / "data" / "airlines.csv").write_text("carrier,name\nAA,American\n")
    done = run_cli(air, "materialize", "--executor", executor)
    assert done.returncode == 1, done.stdout + done.stderr
    assert _states(air)["flights"] == "check_failed" and _calls(air) == 1


OTHER_CHECKS = """
import pandas as pd
from vibepiper import asset, check, expect, source_file

raw_limits = source_file("raw_limits", "data/limits.csv")

@asset
def limits(raw_limits: pd.DataFrame) -> pd.DataFrame:
    return raw_limits

@asset(checks=[expect.sql(
    "select * from orders where amount > (select max(amount) from limits)", name="under_limit"
)])
def orders() -> pd.DataFrame:
    with open("calls.txt", "a") as calls:
        calls.write("orders\\n")
    return pd.DataFrame({"id": [1, 2], "amount": [5, 50]})

@check(asset="orders")
def below_every_limit(orders: pd.DataFrame, limits: pd.DataFrame) -> bool:
    return bool(orders.amount.max() <= limits.amount.max())

@asset
def report(orders: pd.DataFrame) -> pd.DataFrame:
    return orders
"""


def test_sql_and_check_functions_that_read_other_assets(project_dir) -> None:  # type: ignore[no-untyped-def]
    root = project_dir({"shop": OTHER_CHECKS}, {"data/limits.csv": "amount\n100\n"})
    listed = invoke(root, "lineage", "orders", "--upstream")
    assert "limits" in listed.output  # the query's table is upstream, for ordering
    assert run_cli(root, "materialize").returncode == 0
    (root / "data" / "limits.csv").write_text("amount\n10\n")
    status = invoke(root, "status", "orders").output
    assert "checks under_limit, below_every_limit read limits, which is stale" in status
    done = run_cli(root, "materialize")
    assert done.returncode == 1, done.stdout + done.stderr
    assert _states(root)["orders"] == "check_failed" and _states(root)["report"] == "blocked"
    failed = {
        name
        for (name,) in catalog_rows(
            root,
            "SELECT check_name FROM check_results JOIN materializations "
            "USING (materialization_id) WHERE status = 'check_failed' AND NOT passed",
        )
    }
    assert failed == {"under_limit", "below_every_limit"}
    assert _calls(root) == 1
    (root / "data" / "limits.csv").write_text("amount\n100\n")
    assert run_cli(root, "materialize").returncode == 0


QUARANTINE = """
import pandas as pd
from vibepiper import asset, expect, source_file

raw_keys = source_file("raw_keys", "data/keys.csv")

@asset
def keys(raw_keys: pd.DataFrame) -> pd.DataFrame:
    return raw_keys

@asset(quarantine=True, max_quarantined=0.5,
       checks=[expect.relationship("k", to="keys", field="k")])
def facts() -> pd.DataFrame:
    return pd.DataFrame({"k": [1, 2, 3, 4]})

@asset
def total(facts: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"n": [len(facts)]})
"""


def test_a_revalidation_that_quarantines_rows_publishes_the_rest(project_dir) -> None:  # type: ignore[no-untyped-def]
    root = project_dir({"q": QUARANTINE}, {"data/keys.csv": "k\n1\n2\n3\n4\n"})
    assert run_cli(root, "materialize").returncode == 0
    (root / "data" / "keys.csv").write_text("k\n1\n2\n3\n")
    done = run_cli(root, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _states(root)["facts"] == "succeeded" and _states(root)["total"] == "succeeded"
    total = invoke(root, "query", "select n from total", "--json")
    assert '"n": 3' in total.output
