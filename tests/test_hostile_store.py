"""Hostile input: damaged store files (truncated, garbage, flipped bytes and bits, damaged
pandas metadata) are stale and rebuilt, and `show`/`query` refuse them with one line
naming the asset and the file, never printing wrong values.

The contract (docs/cli.md): every bad input gets one line on stderr starting `error:` that
names the culprit and the fix, exit 2 for usage/definition/selection errors (and SQL errors
in `query`), exit 1 for a failed asset or a catalog/store problem; never a traceback; and
nothing already published is lost or changed.

Flipped bytes in a big data page for `show`/`query` are in test_store.py.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import invoke, run_cli
from tests.helpers.output import error_line
from tests.helpers.state import current_file, home_of, last_run_states, store_hashes
from vibepiper.storage.parquet_store import ParquetStore

pytestmark = pytest.mark.usefixtures("forget_project_modules")

DAMAGES: dict[str, Callable[[bytes], bytes]] = {
    "truncated to half": lambda data: data[: len(data) // 2],
    "footer cut off": lambda data: data[:-100],
    "replaced by random bytes": lambda data: random.Random(11).randbytes(len(data)),
    "replaced by text": lambda data: b"this is not parquet\n" * 40,
    "emptied": lambda data: b"",
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_current_file_is_stale_then_rebuilt_and_nothing_else_changes(
    built_shop: Path, damage: str
) -> None:
    root = built_shop
    path = current_file(root, "clean")
    others = {k: v for k, v in store_hashes(root).items() if not k.startswith("clean/")}
    path.write_bytes(DAMAGES[damage](path.read_bytes()))

    shown = invoke(root, "show", "clean")
    assert shown.exit_code == 1
    line = error_line(shown.stderr)
    assert "'clean'" in line and str(path) in line
    assert "materialize clean" in line  # the fix
    assert shown.stdout == ""

    status = invoke(root, "status", "--json")
    assert status.exit_code == 0, status.output
    verdicts = {v["name"]: v for v in json.loads(status.stdout)}
    assert verdicts["clean"]["fresh"] is False
    assert "its stored file is damaged" in verdicts["clean"]["reasons"]
    assert verdicts["totals"]["fresh"] is False  # stale because its input is
    assert verdicts["raw"]["fresh"] and verdicts["lonely"]["fresh"]

    run = run_cli(root, "materialize")
    assert run.returncode == 0, run.stdout + run.stderr
    # the same data again: same version, same file name, and totals stays fresh (early cutoff)
    assert last_run_states(home_of(root)) == {
        "raw": "skipped",
        "lonely": "skipped",
        "clean": "succeeded",
        "totals": "skipped",
    }
    assert current_file(root, "clean") == path
    assert pq.read_table(path).to_pydict() == {"n": [1, 2, 3]}
    assert {k: v for k, v in store_hashes(root).items() if not k.startswith("clean/")} == others
    assert json.loads(invoke(root, "show", "clean", "--json").stdout) == [
        {"n": 1},
        {"n": 2},
        {"n": 3},
    ]


def test_show_of_a_file_with_flipped_bytes_in_the_middle_fails_naming_asset_and_file(
    built_shop: Path,
) -> None:
    """A small file (not the big data page of test_store.py): 16 bytes in its middle
    inverted, its magic bytes kept, so that `status` cannot see it."""
    root = built_shop
    path = current_file(root, "clean")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle - 8 : middle + 8] = bytes(b ^ 0xFF for b in data[middle - 8 : middle + 8])
    assert data[:4] == data[-4:] == b"PAR1"
    path.write_bytes(bytes(data))
    before = store_hashes(root)

    shown = run_cli(root, "show", "clean")

    assert shown.returncode == 1
    line = error_line(shown.stderr)
    assert "'clean'" in line and str(path) in line
    assert shown.stdout == ""
    assert store_hashes(root) == before


def test_show_of_a_file_with_damaged_pandas_metadata_is_one_line_not_a_traceback(
    built_shop: Path,
) -> None:
    """Bytes changed in the file's key-value metadata (its pandas JSON), which no page
    checksum covers; rewritten here for a deterministic case (the bit-flip sweep below finds
    the same through flipped bits)."""
    root = built_shop
    path = current_file(root, "clean")
    table = pq.read_table(path)
    metadata = {**table.schema.metadata, b"pandas": b'{"index_columns": ['}  # cut short
    pq.write_table(table.replace_schema_metadata(metadata), path, write_page_checksum=True)

    shown = run_cli(root, "show", "clean")

    assert shown.returncode == 1
    line = error_line(shown.stderr)
    assert "'clean'" in line and str(path) in line


def test_show_never_prints_wrong_values_when_a_page_header_bit_is_flipped(
    built_shop: Path,
) -> None:
    root = built_shop
    path = current_file(root, "clean")
    data = bytearray(path.read_bytes())
    start = pq.ParquetFile(path).metadata.row_group(0).column(0).data_page_offset
    assert data[start : start + 2] == b"\x15\x00"  # thrift: field 1 (type, i32) = DATA_PAGE
    data[start + 1] ^= 0x01
    path.write_bytes(bytes(data))

    shown = run_cli(root, "show", "clean", "--json")

    assert shown.returncode == 1, f"shown {shown.stdout!r} for the rows [1, 2, 3]"
    line = error_line(shown.stderr)
    assert "'clean'" in line and str(path) in line


@pytest.mark.slow
def test_every_single_bit_flip_is_a_store_error_or_the_right_data(built_shop: Path) -> None:
    from vibepiper.errors import StoreError

    root = built_shop
    path = current_file(root, "clean")
    original = path.read_bytes()
    store = ParquetStore(root / ".vibepiper" / "store")
    good = store.read_path(path, "clean")
    wrong: list[tuple[int, str]] = []
    for offset in range(4, len(original) - 4):  # the magic bytes are the cheap check's job
        data = bytearray(original)
        data[offset] ^= 0x01
        path.write_bytes(bytes(data))
        try:
            frame = store.read_path(path, "clean")
        except StoreError:
            continue
        except Exception as exc:
            wrong.append((offset, f"raised {type(exc).__name__}"))
            continue
        if not (frame.equals(good) and list(frame.columns) == list(good.columns)):
            wrong.append((offset, f"read {frame.to_dict('list')}"))
    path.write_bytes(original)
    assert wrong == []


def test_query_with_one_truncated_asset_file_is_not_a_traceback(built_shop: Path) -> None:
    root = built_shop
    path = current_file(root, "clean")
    path.write_bytes(path.read_bytes()[:100])

    # A query that does not name it does not look at it.
    result = run_cli(root, "query", "--json", "select count(*) as n from runs")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 1}]
    assert result.stderr == ""

    # One that asks about every table sets up every view: the damaged one is left out.
    result = run_cli(root, "query", "--json", "select count(*) as n from information_schema.tables")

    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr  # the damaged asset is left out of the sandbox
    [warning] = result.stderr.splitlines()  # one line, naming the asset and its file
    assert warning.startswith(
        f"warning: asset 'clean' is left out: the stored data of asset 'clean' is unreadable "
        f"({path}: "
    )
