"""The Parquet store: temp-then-rename publishing, content addressing, rejected outputs,
corruption detection, clean-up after dead writers, and data versions.

Real Parquet files in temporary folders and real processes; nothing is mocked.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vibepiper.errors import StoreError
from vibepiper.storage.fidelity import frame_version
from vibepiper.storage.parquet_store import ParquetStore, StagedFile, to_arrow
from vibepiper.storage.store import Entry
from vibepiper.units import Unit
from vibepiper.versioning.data_version import table_version

from .conftest import invoke

HELPERS = Path(__file__).parent / "helpers"


@pytest.fixture
def store(tmp_path: Path) -> ParquetStore:
    return ParquetStore(tmp_path / "store")


def orders() -> pd.DataFrame:
    return pd.DataFrame(
        {"order_id": [1, 2, 3], "amount": [9.5, 12.0, 3.25], "status": ["placed", "shipped", "x"]}
    )


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def publish(store: ParquetStore, asset: str, version: str, table: pa.Table) -> Path:
    """Stage and publish `table`; return the published file."""
    store.publish(store.stage(asset, version, table))
    return store.path_for(asset, version)


# -- staging and publishing ------------------------------------------------------------


def test_staged_file_is_a_temp_beside_its_final_place_until_publish(store: ParquetStore) -> None:
    frame = orders()
    version = frame_version(frame)
    staged = store.stage("orders", version, to_arrow(frame))
    final = store.path_for("orders", version)

    assert final == store.root / "orders" / f"{version}.parquet"  # content-addressed
    assert staged.temp_path.parent == final.parent  # same folder, so the rename is atomic
    assert staged.temp_path.name.startswith(".")
    assert staged.temp_path.name.endswith(".tmp")
    assert not final.exists()
    assert not store.exists("orders", version)
    assert listing(final.parent) == [staged.temp_path.name]
    assert pq.read_table(staged.temp_path).equals(to_arrow(frame))  # written in full already

    store.publish(staged)

    assert not staged.temp_path.exists()
    assert listing(final.parent) == [final.name]
    assert store.exists("orders", version)
    pd.testing.assert_frame_equal(store.read_path(final, "orders"), frame)


def test_publishing_the_same_data_version_twice_keeps_one_untouched_file(
    store: ParquetStore,
) -> None:
    frame = orders()
    version = frame_version(frame)
    final = publish(store, "orders", version, to_arrow(frame))
    before = final.stat()
    content = final.read_bytes()

    again = store.stage("orders", version, to_arrow(frame))
    assert again.temp_path != final
    assert again.temp_path.exists()
    store.publish(again)

    assert not again.temp_path.exists()
    assert listing(final.parent) == [final.name]
    after = final.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert final.read_bytes() == content


def test_reject_moves_the_staged_file_to_the_rejected_path(store: ParquetStore) -> None:
    frame = orders()
    version = frame_version(frame)
    staged = store.stage("orders", version, to_arrow(frame))

    store.reject(staged, "20260101T000000-abcdef-0003")

    rejected = store.rejected_path("orders", "20260101T000000-abcdef-0003")
    assert rejected.parent == store.root / "orders" / "rejected"
    assert rejected.is_file()
    assert not staged.temp_path.exists()
    assert not store.exists("orders", version)  # never made current
    assert listing(store.root / "orders") == ["rejected"]
    pd.testing.assert_frame_equal(store.read_path(rejected, "orders"), frame)  # kept readable


def test_discard_removes_the_staged_file(store: ParquetStore) -> None:
    staged = store.stage("orders", "v1", to_arrow(orders()))
    store.discard(staged)
    assert listing(store.root / "orders") == []


# -- corruption --------------------------------------------------------------------------


def random_floats(rows: int = 200_000) -> pa.Table:
    rng = np.random.default_rng(7)
    return pa.table({"a": rng.random(rows), "b": rng.random(rows)})


@pytest.fixture
def big_file(store: ParquetStore) -> tuple[Path, pa.Table]:
    table = random_floats()
    return publish(store, "big", "bigversion", table), table


def flip_64_bytes_in_a_data_page(path: Path) -> int:
    """Invert 64 bytes in the middle of the data pages of the file's first column chunk."""
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(0)
    start = chunk.data_page_offset
    if chunk.has_dictionary_page and chunk.dictionary_page_offset is not None:
        start = min(start, chunk.dictionary_page_offset)
    first, end = chunk.data_page_offset, start + chunk.total_compressed_size
    assert end - first > 100_000, "the test wants big data pages"
    offset = (first + end) // 2 - 32
    data = bytearray(path.read_bytes())
    data[offset : offset + 64] = bytes(b ^ 0xFF for b in data[offset : offset + 64])
    path.write_bytes(bytes(data))
    return offset


def test_flipped_bytes_in_a_data_page_are_an_error_not_wrong_values(
    store: ParquetStore, big_file: tuple[Path, pa.Table]
) -> None:
    path, table = big_file
    offset = flip_64_bytes_in_a_data_page(path)
    assert path.stat().st_size // 4 < offset < path.stat().st_size * 3 // 4  # mid-file

    try:  # why checksums matter: a reader that does not verify them gets wrong numbers
        unverified = pq.read_table(path)
    except Exception:
        pass
    else:
        assert not unverified.equals(table)

    with pytest.raises(StoreError) as caught:
        store.read_path(path, "big")
    message = str(caught.value)
    assert "'big'" in message
    assert str(path) in message
    with pytest.raises(StoreError):
        store.read_table_path(path, "big")


def truncate_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def cut_footer(data: bytes) -> bytes:
    return data[:-100]


def garbage(data: bytes) -> bytes:
    return np.random.default_rng(3).integers(0, 256, len(data), dtype=np.uint8).tobytes()


def garbage_with_magic(data: bytes) -> bytes:
    return b"PAR1" + garbage(data)[8:] + b"PAR1"


def empty(data: bytes) -> bytes:
    return b""


@pytest.mark.parametrize(
    "damage",
    [truncate_half, cut_footer, garbage, garbage_with_magic, empty],
    ids=lambda f: f.__name__,
)
def test_a_damaged_file_is_a_store_error_naming_asset_and_file(
    store: ParquetStore, big_file: tuple[Path, pa.Table], damage: Callable[[bytes], bytes]
) -> None:
    path, _ = big_file
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(StoreError) as caught:
        store.read_path(path, "big")
    assert "'big'" in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_a_store_error_naming_asset_and_file(store: ParquetStore) -> None:
    path = store.path_for("gone", "v1")
    with pytest.raises(StoreError) as caught:
        store.read_path(path, "gone")
    assert "'gone'" in str(caught.value)
    assert str(path) in str(caught.value)


BIG_ASSET = """
import numpy as np
import pandas as pd
from vibepiper import asset

@asset
def big() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({"a": rng.random(200_000), "b": rng.random(200_000)})
"""


def test_show_and_query_of_a_corrupted_asset_fail_with_one_line(
    project_dir: Callable[..., Path],
) -> None:
    root = project_dir({"bigdata": BIG_ASSET})
    assert invoke(root, "materialize").exit_code == 0
    (path,) = (root / ".vibepiper" / "store" / "big").glob("*.parquet")
    good_sum = invoke(root, "query", "--json", "select sum(a) as s from big")
    assert good_sum.exit_code == 0
    flip_64_bytes_in_a_data_page(path)

    shown = invoke(root, "show", "big")
    assert shown.exit_code == 1
    assert len(shown.stderr.strip().splitlines()) == 1
    assert "'big'" in shown.stderr
    assert str(path) in shown.stderr

    queried = invoke(root, "query", "--json", "select sum(a) as s from big")
    assert queried.exit_code != 0
    assert queried.stdout == ""  # no sum of damaged numbers
    assert len(queried.stderr.strip().splitlines()) == 1
    assert "query failed" in queried.stderr


# -- temp files of dead writers ------------------------------------------------------------


def stage_in_subprocess(store: ParquetStore, asset: str, *, hold: bool) -> subprocess.Popen[str]:
    """A real writer process that stages a file and never publishes it."""
    args = [sys.executable, str(HELPERS / "stage_temp_file.py"), str(store.root), asset]
    return subprocess.Popen(
        [*args, "--hold"] if hold else args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def temp_path_of(writer: subprocess.Popen[str]) -> Path:
    assert writer.stdout is not None
    line = writer.stdout.readline().strip()
    assert line, "the staging helper printed no path"
    return Path(line)


def test_clean_temp_files_removes_only_temp_files_of_dead_writers(store: ParquetStore) -> None:
    published = publish(store, "orders", "v1", to_arrow(orders()))
    store.reject(store.stage("orders", "v2", to_arrow(orders())), "run-0001")
    rejected = store.rejected_path("orders", "run-0001")
    ours = store.stage("orders", "v3", to_arrow(orders())).temp_path  # this process: alive

    dead_writer = stage_in_subprocess(store, "orders", hold=False)
    dead_temp = temp_path_of(dead_writer)
    assert dead_writer.wait(timeout=30) == 0  # its writer is gone; the temp file stays
    live_writer = stage_in_subprocess(store, "other", hold=True)
    try:
        live_temp = temp_path_of(live_writer)
        assert dead_temp.is_file()
        assert live_temp.is_file()
        assert dead_temp.parent == published.parent

        removed = store.clean_temp_files()

        assert removed == [str(dead_temp)]
        assert not dead_temp.exists()
        assert ours.is_file()
        assert live_temp.is_file()
        assert published.is_file()
        assert rejected.is_file()
    finally:
        assert live_writer.stdin is not None
        live_writer.stdin.close()
        live_writer.wait(timeout=30)

    assert store.clean_temp_files() == [str(live_temp)]  # now its writer has exited too
    assert ours.is_file()


# A run that writes looks in every asset's folder for what dead writers left only when a
# run died writing since (its ticket in the home's writers/ folder is still there): a run
# that ends looks in the folders it wrote to, then writes its ticket off.


def dead_temp_in(shop: Path, asset: str) -> Path:
    """A temporary file in `asset`'s folder whose writer (a real process) has exited."""
    writer = stage_in_subprocess(ParquetStore(shop / ".vibepiper" / "store"), asset, hold=False)
    temp = temp_path_of(writer)
    assert writer.wait(timeout=30) == 0 and temp.is_file()
    return temp


def dead_ticket(shop: Path) -> Path:
    """The ticket a run killed while writing left (its process, a real one, is gone)."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    assert gone.wait(timeout=30) == 0
    ticket = shop / ".vibepiper" / "writers" / f"{gone.pid}.0badc0de"
    ticket.touch()
    return ticket


def test_a_run_that_ends_writes_its_ticket_off(shop: Path) -> None:
    assert invoke(shop, "materialize").exit_code == 0
    writers = shop / ".vibepiper" / "writers"
    assert writers.is_dir() and list(writers.iterdir()) == []


def test_after_a_run_died_writing_the_next_run_looks_everywhere(shop: Path) -> None:
    assert invoke(shop, "materialize").exit_code == 0
    temp, ticket = dead_temp_in(shop, "totals"), dead_ticket(shop)

    assert invoke(shop, "materialize", "lonely", "--force").exit_code == 0

    assert not temp.exists()  # in a folder this run did not write to
    assert not ticket.exists()
    assert list(ticket.parent.iterdir()) == []


def test_a_dead_runs_ticket_stays_while_another_process_still_writes(shop: Path) -> None:
    """A killed run's worker may outlive it, still writing: its file is not removed, and
    the dead run's ticket stays until a look finds no one else writing."""
    assert invoke(shop, "materialize").exit_code == 0
    ticket = dead_ticket(shop)
    writer = stage_in_subprocess(ParquetStore(shop / ".vibepiper" / "store"), "totals", hold=True)
    try:
        temp = temp_path_of(writer)
        assert invoke(shop, "materialize", "lonely", "--force").exit_code == 0
        assert temp.is_file() and ticket.exists()
    finally:
        assert writer.stdin is not None
        writer.stdin.close()
        writer.wait(timeout=30)

    assert invoke(shop, "materialize", "lonely", "--force").exit_code == 0

    assert not temp.exists() and not ticket.exists()


@pytest.mark.parametrize("name", ["notapid", "12.", "../x", "7.a b"])
def test_a_ticket_not_of_a_run_counts_as_a_dead_one(shop: Path, name: str) -> None:
    assert invoke(shop, "materialize").exit_code == 0
    temp = dead_temp_in(shop, "totals")
    odd = shop / ".vibepiper" / "writers" / Path(name).name
    odd.touch()

    assert invoke(shop, "materialize", "lonely", "--force").exit_code == 0

    assert not temp.exists() and not odd.exists()


def test_a_home_without_tickets_is_looked_through_once(shop: Path) -> None:
    """A home from before tickets (or whose writers/ was removed): nothing says that no
    run died writing, so the first run that writes looks everywhere."""
    assert invoke(shop, "materialize").exit_code == 0
    shutil.rmtree(shop / ".vibepiper" / "writers")
    temp = dead_temp_in(shop, "totals")

    assert invoke(shop, "materialize", "lonely", "--force").exit_code == 0

    assert not temp.exists()
    assert (shop / ".vibepiper" / "writers").is_dir()


def test_with_no_run_dead_a_run_looks_only_where_it_wrote(shop: Path) -> None:
    """What a writer that was no run left (a crashed tool, say) stays where no run wrote,
    for `doctor` to find; in a folder the run wrote to it is removed."""
    assert invoke(shop, "materialize").exit_code == 0
    elsewhere, here = dead_temp_in(shop, "totals"), dead_temp_in(shop, "lonely")

    assert invoke(shop, "materialize", "lonely", "--force").exit_code == 0

    assert not here.exists()
    assert elsewhere.is_file()
    found = invoke(shop, "doctor", "--json")
    assert str(elsewhere.name) in found.output


def test_clean_temp_files_looks_into_subfolders(store: ParquetStore) -> None:
    """Quarantined rows are written through a temp file in <asset>/quarantine/ too."""
    quarantine = store.root / "orders" / "quarantine"
    quarantine.mkdir(parents=True)
    writer = stage_in_subprocess(store, "orders", hold=False)
    dead_temp = temp_path_of(writer)
    assert writer.wait(timeout=30) == 0
    moved = dead_temp.rename(quarantine / dead_temp.name)
    ours = store.stage("orders", "v1", to_arrow(orders())).temp_path
    kept = ours.rename(quarantine / ours.name)

    assert store.clean_temp_files() == [str(moved)]
    assert kept.is_file()


def test_clean_temp_files_of_a_store_never_written(tmp_path: Path) -> None:
    assert ParquetStore(tmp_path / "nothing").clean_temp_files() == []


def test_materialize_removes_a_dead_writers_temp_file(shop: Path) -> None:
    store = ParquetStore(shop / ".vibepiper" / "store")
    writer = stage_in_subprocess(store, "clean", hold=False)
    temp = temp_path_of(writer)
    assert writer.wait(timeout=30) == 0
    assert temp.is_file()

    assert invoke(shop, "materialize").exit_code == 0

    assert not temp.exists()
    assert not list((shop / ".vibepiper" / "store").glob("*/.*.tmp"))


class SyncNotingStore(ParquetStore):
    """The real store, noting which files each sync() made durable."""

    def __init__(self, root: Path, synced: set[Path]) -> None:
        super().__init__(root)
        self.synced = synced

    def sync(self) -> None:
        with self._guard:
            pending = set(self._unsynced)
        super().sync()
        self.synced |= pending


def test_the_catalog_never_records_a_file_before_it_was_flushed_to_disk(shop: Path) -> None:
    """Publishing does not fsync each file at once (that is batched), so the batch must be
    made durable before every catalog write that could refer to one of its files."""
    from vibepiper import Project
    from vibepiper.catalog.catalog import Catalog

    synced: set[Path] = set()
    unsynced_at_write: list[set[Path]] = []

    class NotingCatalog(Catalog):
        def write(self, batch: Any) -> None:
            published = set(store_root.glob("*/*.parquet")) | set(store_root.glob("*/*/*.parquet"))
            unsynced_at_write.append({p for p in published if p not in synced})
            super().write(batch)

    project = Project(shop)
    store_root = project.store.root
    project.store = SyncNotingStore(store_root, synced)
    project.catalog = NotingCatalog(project.home)
    first = project.materialize()
    second = project.materialize(force=True)

    assert first.status == second.status == "succeeded"
    assert len(unsynced_at_write) >= 2 and unsynced_at_write == [set()] * len(unsynced_at_write)
    data_files = {p for p in synced if p.suffix == ".parquet"}
    assert len(data_files) >= 4  # every published file was synced, and its folder
    assert {p.parent for p in data_files} <= synced


def test_a_store_sent_to_a_worker_process_is_only_where_it_is(store: ParquetStore) -> None:
    import pickle

    store.publish(store.stage("clean", frame_version(orders()), to_arrow(orders())))
    copy = pickle.loads(pickle.dumps(store))
    assert copy.root == store.root
    copy.sync()  # owes nothing: what the original published is the original's to sync
    store.sync()


# -- data versions -------------------------------------------------------------------------


def base_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"id": [1, 2, 3], "amount": [10.5, 20.0, 30.25], "name": ["a", "b", "c"]},
    )


def test_frame_version_is_equal_for_equal_frames() -> None:
    one = base_frame()
    other = pd.DataFrame(
        {"id": [1, 2, 3], "amount": [10.5, 20.0, 30.25], "name": ["a", "b", "c"]},
    )
    assert one is not other
    assert frame_version(one) == frame_version(other)
    assert frame_version(one) == frame_version(one.copy(deep=True))


def test_frame_version_is_the_same_in_another_process() -> None:
    code = (
        "import pandas as pd\n"
        "from vibepiper.storage.fidelity import frame_version\n"
        "print(frame_version(pd.DataFrame("
        "{'id': [1, 2, 3], 'amount': [10.5, 20.0, 30.25], 'name': ['a', 'b', 'c']})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == frame_version(base_frame())


CHANGES: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "a value": lambda f: f.assign(amount=[10.5, 20.0, 30.5]),
    "a string value": lambda f: f.assign(name=["a", "b", "d"]),
    "a column name": lambda f: f.rename(columns={"amount": "total"}),
    "two names swapped": lambda f: f.rename(columns={"id": "amount", "amount": "id"}),
    "int64 to float64": lambda f: f.astype({"id": "float64"}),
    "int64 to int32": lambda f: f.astype({"id": "int32"}),
    "str to category": lambda f: f.astype({"name": "category"}),
    "row order": lambda f: f.iloc[::-1].reset_index(drop=True),
    "two rows swapped": lambda f: f.iloc[[1, 0, 2]].reset_index(drop=True),
    "column order": lambda f: f[["amount", "id", "name"]],
    "a row dropped": lambda f: f.iloc[:2],
    "a null": lambda f: f.assign(amount=[10.5, None, 30.25]),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_frame_version_differs_when_the_data_changes(change: str) -> None:
    changed = CHANGES[change](base_frame())
    assert frame_version(changed) != frame_version(base_frame())


ROUND_TRIP: dict[str, pd.DataFrame] = {
    "ints, floats, strings": base_frame(),
    "nulls": pd.DataFrame({"f": [1.5, np.nan, -0.0], "s": ["x", None, "z"]}),
    "bool": pd.DataFrame({"b": [True, False, True]}),
    "int32 and uint8": pd.DataFrame(
        {"i": np.array([1, -2, 3], dtype="int32"), "u": np.array([0, 7, 255], dtype="uint8")}
    ),
    "nullable Int64": pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64")}),
    "datetimes": pd.DataFrame(
        {"t": pd.to_datetime(["2024-01-01", None, "2024-03-01T12:30:00"], format="ISO8601")}
    ),
    "datetimes with a time zone": pd.DataFrame(
        {"t": pd.to_datetime(["2024-01-01", "2024-06-01"]).tz_localize("Europe/Paris")}
    ),
    "category": pd.DataFrame({"c": pd.Categorical(["x", "y", "x"])}),
    "named string index": pd.DataFrame({"v": [1, 2]}, index=pd.Index(["p", "q"], name="key")),
    "filtered rows": pd.DataFrame({"v": [5, 6, 7, 8]}).iloc[[0, 3]],
    "no rows": pd.DataFrame({"v": pd.Series([], dtype="int64")}),
    "many rows": pd.DataFrame({"v": np.random.default_rng(1).random(100_000)}),
}


def round_trip(store: ParquetStore, frame: pd.DataFrame) -> tuple[str, pd.DataFrame, Path]:
    version = frame_version(frame)
    path = publish(store, "asset", version, to_arrow(frame))
    return version, store.read_path(path, "asset"), path


@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_frame_version_is_equal_after_a_round_trip_through_the_store(
    store: ParquetStore, name: str
) -> None:
    version, back, path = round_trip(store, ROUND_TRIP[name])
    assert frame_version(back) == version
    assert store.path_for("asset", frame_version(back)) == path  # filed under its version


def test_frame_version_of_object_strings_is_equal_after_a_round_trip(
    store: ParquetStore,
) -> None:
    frame = pd.DataFrame({"s": pd.Series(["x", "y", "z"], dtype=object)})
    version, back, _ = round_trip(store, frame)
    assert frame_version(back) == version


# -- the Store interface, as the Parquet store does it ---------------------------------------


def test_query_leaves_out_a_valid_file_copied_over_another_version(store: ParquetStore) -> None:
    one, two = pa.table({"x": [1, 2]}), pa.table({"x": [3]})
    versions = [table_version(one), table_version(two)]
    for table, version in zip([one, two], versions, strict=True):
        store.publish(store.stage("orders", version, table))
    shutil.copyfile(store.path_for("orders", versions[0]), store.path_for("orders", versions[1]))

    with pytest.raises(StoreError, match="holds data version"):
        store.dataset(Unit("orders"), versions[1])
    dataset = store.dataset(Unit("orders"), versions[0])
    assert dataset is not None and dataset.to_table().num_rows == 2


def test_links_are_foreign_entries_never_removed_or_moved(
    store: ParquetStore, tmp_path: Path
) -> None:
    publish(store, "orders", "v1", to_arrow(orders()))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (store.root / "ghost").symlink_to(elsewhere)
    (store.root / "orders" / "rejected").symlink_to(elsewhere)

    found = {(e.kind, e.unit, e.location) for e in store.entries()}
    assert ("foreign", None, str(store.root / "ghost")) in found
    assert ("foreign", Unit("orders"), str(store.root / "orders" / "rejected")) in found
    for entry in store.entries():
        if entry.kind == "foreign":
            with pytest.raises(StoreError):
                store.remove(entry)
            with pytest.raises(StoreError):
                store.set_aside(entry)
    forged = Entry("rejected", Unit("orders"), "precious", str(elsewhere / "precious.parquet"))
    with pytest.raises(StoreError, match="symbolic link"):
        store.remove(forged)  # rebuilt from its unit and key: through the link, refused


def test_nothing_is_removed_from_a_store_that_is_a_link(tmp_path: Path) -> None:
    real = ParquetStore(tmp_path / "real")
    publish(real, "orders", "v1", to_arrow(orders()))
    (tmp_path / "linked").symlink_to(real.root)
    linked = ParquetStore(tmp_path / "linked")

    assert "is a symbolic link" in linked.is_linked()
    (entry,) = linked.entries()  # looked at through the link, never changed through it
    with pytest.raises(StoreError):
        linked.remove(entry)
    assert real.exists("orders", "v1")


def test_only_what_stage_returned_is_published(store: ParquetStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside.parquet"
    pq.write_table(to_arrow(orders()), outside)
    forged = StagedFile(Unit("orders"), "v1", str(outside))
    for act in (store.publish, store.discard, lambda s: store.reject(s, "run-0001")):
        with pytest.raises(StoreError, match="not a file this store staged"):
            act(forged)
    assert outside.is_file() and not store.exists("orders", "v1")


# -- making many files durable at once ---------------------------------------------------


def _spy_fsync(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    from vibepiper.storage import parquet_files

    synced: list[Path] = []
    real = parquet_files.fsync

    def fsync(path: Path) -> None:
        synced.append(path)
        real(path)

    monkeypatch.setattr(parquet_files, "fsync", fsync)
    return synced


def _many_files(root: Path, n: int = 20) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = root / f"f{i}.parquet"
        path.write_bytes(b"x" * 100)
        paths.append(path)
    return paths


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs(2) is Linux's")
def test_many_files_are_made_durable_by_one_syncfs_except_on_another_file_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vibepiper.storage import parquet_files

    synced = _spy_fsync(monkeypatch)
    root = tmp_path / "store"
    paths = [*_many_files(root), root, tmp_path / "removed.parquet"]
    elsewhere = [
        p
        for p in (Path("/dev/shm"), Path("/proc"))
        if p.is_dir() and p.stat().st_dev != root.stat().st_dev
    ][:1]
    if elsewhere and elsewhere[0].name == "shm":
        paths += _many_files(elsewhere[0] / f"vibepiper-test-{tmp_path.name}", 2)
    try:
        parquet_files.fsync_all(paths, root)
    finally:
        if elsewhere and elsewhere[0].name == "shm":
            shutil.rmtree(elsewhere[0] / f"vibepiper-test-{tmp_path.name}")
    # the store's own file system: one syncfs for all; a removed file: nothing to flush
    assert [p for p in synced if str(p).startswith(str(tmp_path))] == []
    assert all(str(p).startswith("/dev/shm") for p in synced)


def test_without_syncfs_each_file_gets_its_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vibepiper.storage import parquet_files

    synced = _spy_fsync(monkeypatch)
    monkeypatch.setattr(parquet_files, "_syncfs", lambda root: False)  # not Linux, say
    root = tmp_path / "store"
    paths = [*_many_files(root), root, tmp_path / "removed.parquet"]
    parquet_files.fsync_all(paths, root)
    assert sorted(synced) == sorted(paths)


def test_a_few_files_get_an_fsync_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vibepiper.storage import parquet_files

    synced = _spy_fsync(monkeypatch)
    root = tmp_path / "store"
    paths = [*_many_files(root, 3), root]
    parquet_files.fsync_all(paths, root)
    assert sorted(synced) == sorted(paths)
