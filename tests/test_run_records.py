"""What a run says about itself: `check` counts its assets in good English, and the `runs`
table records the selection as typed, `--exclude` included."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import catalog_rows, run_cli


def test_check_of_one_asset_says_asset_not_assets(built_shop: Path) -> None:
    one = run_cli(built_shop, "check", "clean")
    assert one.returncode == 0, one.stdout + one.stderr
    assert "checked 1 asset:" in one.stdout
    several = run_cli(built_shop, "check", "clean", "totals")
    assert "checked 2 assets:" in several.stdout


def test_runs_record_the_selection_with_its_excludes(built_shop: Path) -> None:
    done = run_cli(built_shop, "materialize", "raw+", "--exclude", "totals", "--exclude", "lonely")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(run_cli(built_shop, "runs", "--json", "--limit", "1").stdout)
    assert rows[0]["selection"] == "raw+ --exclude totals --exclude lonely"

    checked = run_cli(built_shop, "check", "--exclude", "lonely")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    newest = catalog_rows(built_shop, "SELECT selection FROM runs ORDER BY started_at DESC")
    assert newest[0] == ("--exclude lonely",)
