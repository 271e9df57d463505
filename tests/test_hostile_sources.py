"""Hostile source files: missing, empty, not UTF-8, a directory or broken JSON fail their
source naming the asset and the file, keeping the last good version; a CSV with only a
header is zero rows of data.

The contract (docs/cli.md): every bad input gets one line on stderr starting `error:` that
names the culprit and the fix, exit 2 for usage/definition/selection errors (and SQL errors
in `query`), exit 1 for a failed asset or a catalog/store problem; never a traceback; and
nothing already published is lost or changed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import invoke, run_cli
from tests.helpers.output import summary_line
from tests.helpers.state import (
    current_file,
    current_versions,
    home_of,
    last_run_states,
    store_hashes,
)

pytestmark = pytest.mark.usefixtures("forget_project_modules")

SOURCE_MODULE = """
import pandas as pd
from vibepiper import asset, source_file

src = source_file("src", "data/{file}")

@asset
def down(src: pd.DataFrame) -> pd.DataFrame:
    return src.assign(seen=1)

@asset
def other() -> pd.DataFrame:
    return pd.DataFrame({{"x": [1]}})
"""

GOOD_SOURCES = {
    "in.csv": b"name\nalice\nbob\n",
    "in.json": b'[{"name": "alice"}, {"name": "bob"}]',
}


LATIN_1 = "name\ncafé\nnaïve\n".encode("latin-1")


def _unlink(path: Path) -> None:
    path.unlink()


def _make_dir(path: Path) -> None:
    path.unlink()
    path.mkdir()


SOURCE_DAMAGES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "missing": ("in.csv", _unlink),
    "empty": ("in.csv", lambda p: p.write_bytes(b"")),
    "latin-1, not utf-8": ("in.csv", lambda p: p.write_bytes(LATIN_1)),
    "a directory": ("in.csv", _make_dir),
    "json that is not json": ("in.json", lambda p: p.write_bytes(b"{not json")),
}

SOURCE_BUGS: dict[str, str] = {}  # all fixed


def _source_project(project_dir: Callable[..., Path], file: str) -> Path:
    root = project_dir({"hostile_sources": SOURCE_MODULE.format(file=file)})
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / file).write_bytes(GOOD_SOURCES[file])
    result = invoke(root, "materialize")
    assert result.exit_code == 0, result.output
    return root


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(
            k,
            id=k,
            marks=[pytest.mark.xfail(strict=True, reason=SOURCE_BUGS[k])]
            if k in SOURCE_BUGS
            else [],
        )
        for k in SOURCE_DAMAGES
    ],
)
def test_a_broken_source_file_fails_its_asset_naming_asset_and_file(
    project_dir: Callable[..., Path], kind: str
) -> None:
    file, damage = SOURCE_DAMAGES[kind]
    root = _source_project(project_dir, file)
    files, versions = store_hashes(root), current_versions(home_of(root))
    damage(root / "data" / file)

    run = run_cli(root, "materialize")

    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert last_run_states(home_of(root)) == {
        "src": "failed",
        "down": "blocked",
        "other": "skipped",
    }
    assert store_hashes(root) == files
    assert current_versions(home_of(root)) == versions
    line = summary_line(run.stdout, "src")
    assert f"data/{file}" in line, line


def test_a_csv_with_only_a_header_is_zero_rows_of_data(project_dir: Callable[..., Path]) -> None:
    """Decided: a header-only CSV is a valid, empty table; it and its downstream succeed."""
    root = _source_project(project_dir, "in.csv")
    old_files = store_hashes(root)
    (root / "data" / "in.csv").write_bytes(b"name\n")

    run = run_cli(root, "materialize")

    assert run.returncode == 0, run.stdout + run.stderr
    assert last_run_states(home_of(root)) == {
        "src": "succeeded",
        "down": "succeeded",
        "other": "skipped",
    }
    for name in ("src", "down"):
        table = pq.read_table(current_file(root, name))
        assert table.num_rows == 0 and table.column_names[0] == "name"
    now = store_hashes(root)
    assert {k: now[k] for k in old_files} == old_files  # older versions kept, unchanged
