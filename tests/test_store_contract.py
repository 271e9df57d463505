"""The contract of `Store`: what every implementation must do, run over each of them.

An implementation joins by adding a `Harness` factory to `IMPLEMENTATIONS`: the store,
plus the two things a test cannot do through the interface (damage stored data; leave
what a writer that died would have staged).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from vibepiper.errors import StoreError
from vibepiper.processes import pid_alive
from vibepiper.storage.parquet_files import to_arrow
from vibepiper.storage.parquet_store import ParquetStore
from vibepiper.storage.store import Entry, Store
from vibepiper.units import Unit
from vibepiper.versioning.data_version import table_version

DEAD_PID = 999_999
ORDERS = Unit("orders")
MID = "20260101T000000.000-abcdef-0001"


@dataclass
class Harness:
    store: Store
    garble: Callable[[Unit, str], None]  # overwrite published data with garbage
    leave_dead_temp: Callable[[Unit], None]  # what a writer that died leaves staged
    # publishing a version over damaged data of that version replaces it (the local
    # store); an object store reports a damaged store instead (SPEC §11), and replaces
    # it only when asked to (`replace`, from --force)
    publish_repairs: bool = True


def parquet_harness(tmp_path: Path) -> Harness:
    store = ParquetStore(tmp_path / "store", tmp_path / "sound-files.json", tmp_path / "writers")

    def garble(unit: Unit, version: str) -> None:
        path = store.path_for(unit, version)
        path.write_bytes(b"PAR1" + os.urandom(200) + b"PAR1")

    def leave_dead_temp(unit: Unit) -> None:
        assert not pid_alive(DEAD_PID), f"process {DEAD_PID} exists here: pick another"
        folder = store.root / unit.asset
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f".x.{DEAD_PID}.tmp").write_bytes(b"half a parquet file")

    return Harness(store, garble, leave_dead_temp)


def object_harness(tmp_path: Path, request: pytest.FixtureRequest) -> Harness:
    """The store in a new bucket of a real SeaweedFS server (tests/helpers/s3server.py);
    unfinished uploads count as dead at once (no grace period)."""
    from vibepiper.loader import StoreSettings
    from vibepiper.storage.object_store import ObjectStore

    s3 = request.getfixturevalue("s3_store")
    settings = StoreSettings(s3.bucket, s3.prefix, s3.server.endpoint)
    store = ObjectStore(settings, tmp_path / "cache", grace=0)
    client = s3.server.client()

    def garble(unit: Unit, version: str) -> None:
        """Garbage in the object's place, and the cache's verified copy gone (the cache
        is never stale, but a machine without a copy reads the object)."""
        client.put_object(Bucket=s3.bucket, Key=store.key(unit, version), Body=os.urandom(200))
        store.cache.path_for(unit, version).unlink(missing_ok=True)

    def leave_dead_temp(unit: Unit) -> None:
        key = f"{s3.prefix}{unit.asset}/{V2}.parquet"
        client.create_multipart_upload(Bucket=s3.bucket, Key=key)

    return Harness(store, garble, leave_dead_temp, publish_repairs=False)


IMPLEMENTATIONS: dict[str, Callable[[Path, pytest.FixtureRequest], Harness]] = {
    "parquet": lambda tmp_path, _: parquet_harness(tmp_path),
    "s3": object_harness,
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    yield IMPLEMENTATIONS[request.param](tmp_path, request)


@pytest.fixture
def store(harness: Harness) -> Store:
    return harness.store


def orders(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"order_id": range(n), "amount": [1.5 * i for i in range(n)]})


V1, V2 = table_version(to_arrow(orders())), table_version(to_arrow(orders(4)))  # the data's


def published(store: Store, frame: pd.DataFrame) -> str:
    version = table_version(to_arrow(frame))
    store.publish(store.stage(ORDERS, version, to_arrow(frame)))
    store.sync()
    return version


def kinds(store: Store) -> list[tuple[str, str]]:
    return sorted((e.kind, e.key) for e in store.entries() if e.kind != "temporary")


def temporaries(store: Store) -> list[Entry]:
    return [e for e in store.entries() if e.kind == "temporary"]


# -- writing and reading -------------------------------------------------------------------


def test_stage_then_publish_then_read_gives_the_same_data(store: Store) -> None:
    frame = orders()
    staged = store.stage(ORDERS, V1, to_arrow(frame))
    assert (staged.unit, staged.data_version) == (ORDERS, V1)
    assert store.damage(ORDERS, V1) == "missing"  # staged: no reader sees it yet

    store.publish(staged)
    store.sync()

    pd.testing.assert_frame_equal(store.read(ORDERS, V1), frame)
    assert store.read_table(ORDERS, V1).equals(to_arrow(frame))
    assert store.damage(ORDERS, V1) == ""
    assert store.verify(ORDERS, V1) == "" and store.verify(ORDERS, V1, full=False) == ""
    assert isinstance(store.location(ORDERS, V1), str)


def test_publishing_a_version_twice_keeps_the_first(store: Store) -> None:
    first = orders()
    published(store, first)
    again = store.stage(ORDERS, V1, to_arrow(first))
    store.publish(again)
    store.publish(again)  # the same staged output once more: nothing happens
    store.sync()
    pd.testing.assert_frame_equal(store.read(ORDERS, V1), first)
    assert kinds(store) == [("published", V1)] and temporaries(store) == []


def test_publish_with_replace_and_over_damaged_data(harness: Harness) -> None:
    store, frame = harness.store, orders()
    published(store, frame)
    store.publish(store.stage(ORDERS, V1, to_arrow(frame)), replace=True)
    pd.testing.assert_frame_equal(store.read(ORDERS, V1), frame)

    harness.garble(ORDERS, V1)
    assert store.damage(ORDERS, V1) == "damaged"
    if harness.publish_repairs:
        store.publish(store.stage(ORDERS, V1, to_arrow(frame)))  # damaged: replaced
    else:
        with pytest.raises(StoreError, match="damaged"):
            store.publish(store.stage(ORDERS, V1, to_arrow(frame)))
        store.publish(store.stage(ORDERS, V1, to_arrow(frame)), replace=True)
    store.sync()
    assert store.damage(ORDERS, V1) == ""
    pd.testing.assert_frame_equal(store.read(ORDERS, V1), frame)


def test_a_rejected_output_is_kept_but_never_current(store: Store) -> None:
    frame = orders()
    store.reject(store.stage(ORDERS, V1, to_arrow(frame)), MID)
    store.sync()
    pd.testing.assert_frame_equal(store.read_kept(ORDERS, MID, "rejected"), frame)
    assert store.damage(ORDERS, V1) == "missing"
    assert store.dataset(ORDERS, V1) is None
    assert kinds(store) == [("rejected", MID)]


def test_quarantined_rows_are_kept(store: Store) -> None:
    frame = orders().assign(reason="too big")
    store.keep_quarantine(ORDERS, MID, frame)
    pd.testing.assert_frame_equal(store.read_kept(ORDERS, MID, "quarantine"), frame)
    kept = store.kept_dataset(ORDERS, MID, "quarantine")
    assert kept is not None and kept.to_table().num_rows == 3
    assert kinds(store) == [("quarantine", MID)]


def test_discard_leaves_nothing(store: Store) -> None:
    store.discard(store.stage(ORDERS, V1, to_arrow(orders())))
    assert store.damage(ORDERS, V1) == "missing"
    assert list(store.entries()) == []


# -- damage --------------------------------------------------------------------------------


def test_damage_of_missing_garbled_and_invalid_versions(harness: Harness) -> None:
    store = harness.store
    assert store.damage(ORDERS, V1) == "missing"
    assert store.damage(ORDERS, "../../etc").startswith("missing (")
    published(store, orders())
    harness.garble(ORDERS, V1)
    assert store.damage(ORDERS, V1) == "damaged"


def test_damage_many_agrees_with_damage_and_sees_a_file_replaced_later(
    harness: Harness,
) -> None:
    store = harness.store
    other = Unit("other")
    published(store, orders())
    asked = {ORDERS: V1, other: V1, Unit("odd"): "../../etc"}
    first = store.damage_many(asked)
    assert first == {u: store.damage(u, v) for u, v in asked.items()}
    assert first[ORDERS] == "" and first[other] == "missing"
    assert store.damage_many(asked) == first  # found sound before: still sound
    harness.garble(ORDERS, V1)
    assert store.damage_many({ORDERS: V1}) == {ORDERS: "damaged"}
    assert store.damage_many({}) == {}


def test_verify_and_read_catch_garbled_data(harness: Harness) -> None:
    store = harness.store
    published(store, orders())
    harness.garble(ORDERS, V1)
    assert store.verify(ORDERS, V1) != ""
    assert store.verify(ORDERS, V1, full=False) != ""
    with pytest.raises(StoreError, match="'orders'"):
        store.read(ORDERS, V1)
    with pytest.raises(StoreError, match="'orders'"):
        store.dataset(ORDERS, V1)


def test_missing_data_is_an_error_naming_its_asset(store: Store) -> None:
    published(store, orders())
    with pytest.raises(StoreError, match="'orders'"):
        store.read(ORDERS, V2)
    with pytest.raises(StoreError, match="'orders'"):
        store.read_kept(ORDERS, MID, "rejected")


def test_a_name_that_is_not_the_stores_is_an_error(store: Store) -> None:
    for bad in ("../x", "a/b", ""):
        with pytest.raises(StoreError, match="edited by hand"):
            store.location(ORDERS, bad)
        with pytest.raises(StoreError):
            store.read_kept(ORDERS, bad, "rejected")


# -- query -------------------------------------------------------------------------------


def test_dataset_reads_with_pyarrow_and_duckdb(store: Store) -> None:
    frame = orders(10)
    version = published(store, frame)
    dataset = store.dataset(ORDERS, version)
    assert dataset is not None
    assert (
        dataset.to_table()
        .select(["order_id", "amount"])
        .equals(pa.table({"order_id": frame.order_id, "amount": frame.amount}))
    )
    con = duckdb.connect()
    con.register("orders", dataset)
    assert con.execute("SELECT count(*), sum(order_id) FROM orders").fetchall() == [(10, 45)]
    assert store.dataset(ORDERS, V2) is None


# -- looking after the store ---------------------------------------------------------------


def test_entries_list_what_the_store_holds(harness: Harness) -> None:
    store = harness.store
    published(store, orders())
    store.reject(store.stage(ORDERS, V2, to_arrow(orders(4))), MID)
    store.keep_quarantine(ORDERS, MID, orders())
    live = store.stage(ORDERS, V2, to_arrow(orders(4)))  # this process is alive: not listed
    harness.leave_dead_temp(ORDERS)

    assert kinds(store) == [("published", V1), ("quarantine", MID), ("rejected", MID)]
    assert all(e.unit == ORDERS for e in store.entries())
    (dead,) = temporaries(store)
    assert dead.location != live.location
    assert store.is_linked() == ""


def test_remove_takes_an_entry_away(harness: Harness) -> None:
    store = harness.store
    published(store, orders())
    harness.leave_dead_temp(ORDERS)
    for entry in list(store.entries()):
        store.remove(entry)
    assert list(store.entries()) == []
    assert store.damage(ORDERS, V1) == "missing"


def test_set_aside_moves_damaged_data_out_of_the_way(harness: Harness) -> None:
    store = harness.store
    published(store, orders())
    harness.garble(ORDERS, V1)
    (entry,) = store.entries()
    where = store.set_aside(entry)
    assert where and where != entry.location
    assert store.damage(ORDERS, V1) == "missing"
    assert kinds(store) == []
    published(store, orders())  # the version can be made again
    assert store.verify(ORDERS, V1) == ""


def test_clean_temp_files_removes_only_dead_writers_outputs(harness: Harness) -> None:
    store = harness.store
    live = store.stage(ORDERS, V1, to_arrow(orders()))
    harness.leave_dead_temp(ORDERS)
    (dead,) = temporaries(store)

    assert store.clean_temp_files() == [dead.location]
    assert temporaries(store) == []
    store.publish(live)  # still there to publish
    store.sync()
    assert store.verify(ORDERS, V1) == ""


def test_a_run_that_writes_finds_no_dead_writers_output(harness: Harness) -> None:
    """Before a run writes (`begin_writing`), what dead writers left is gone, the live
    output stays; after it (`end_writing`), what a dead writer left where it wrote is gone
    by the next run's start at the latest."""
    store = harness.store
    harness.leave_dead_temp(ORDERS)
    live = store.stage(ORDERS, V1, to_arrow(orders()))

    ticket = store.begin_writing()

    assert temporaries(store) == []
    harness.leave_dead_temp(ORDERS)  # one of the run's workers dies
    store.end_writing(ticket, [ORDERS.asset])
    store.begin_writing()
    assert temporaries(store) == []
    store.publish(live)
    store.sync()
    assert store.verify(ORDERS, V1) == ""


def test_parquet_store_implements_the_interface(tmp_path: Path) -> None:
    store: Store = ParquetStore(tmp_path)  # checked by mypy
    assert store.is_linked() == ""
