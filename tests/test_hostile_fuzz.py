"""Fuzzing: random selectors resolve to a sorted subset or a one-line selection error;
random command lines never end in a traceback or change the catalog.

The contract (docs/cli.md): every bad input gets one line on stderr starting `error:` that
names the culprit and the fix, exit 2 for usage/definition/selection errors (and SQL errors
in `query`), exit 1 for a failed asset or a catalog/store problem; never a traceback; and
nothing already published is lost or changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import invoke
from tests.helpers.output import check_cli_result
from tests.helpers.state import catalog_state
from vibepiper import asset
from vibepiper.errors import VibePiperError
from vibepiper.graph.graph import Graph
from vibepiper.graph.selection import resolve

pytestmark = pytest.mark.usefixtures("forget_project_modules")


def _fuzz_graph() -> Graph:
    @asset(tags=["core"], group="sources")
    def raw() -> None: ...

    @asset(group="staging")
    def clean(raw: Any) -> None: ...

    @asset(group="marts", tags=["core"])
    def totals(clean: Any, raw: Any) -> None: ...

    @asset(group="marts")
    def lonely() -> None: ...

    @asset(deps=["totals"])
    def report(lonely: Any) -> None: ...

    return Graph.build([raw, clean, totals, lonely, report])


FUZZ_GRAPH = _fuzz_graph()
SELECTOR_TOKENS = [
    *FUZZ_GRAPH.assets,
    "tag:core",
    "group:marts",
    "tag:",
    "group:",
    "+",
    "@",
    "2",
    "0",
    "*",
    "?",
    "[",
    "]",
    "!",
    "-",
    ",",
    " ",
    ":",
    "/",
    ".",
    "'",
    '"',
    ";",
    "%",
    "\\",
    "é",
    "٣",  # an Arabic-Indic digit: \d matches it
    "\u202e",
]
selector_text = st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from(SELECTOR_TOKENS), max_size=8).map("".join),
)


@settings(max_examples=600, deadline=None)
@given(select=selector_text, exclude=st.one_of(st.none(), selector_text))
def test_fuzz_resolve_returns_a_sorted_subset_or_raises_a_selection_error(
    select: str, exclude: str | None
) -> None:
    try:
        names = resolve(FUZZ_GRAPH, select, exclude)
    except VibePiperError as exc:
        assert exc.exit_code == 2
        assert "\n" not in str(exc)
        return
    assert len(names) == len(set(names))
    assert set(names) <= set(FUZZ_GRAPH.assets)
    assert names == FUZZ_GRAPH.sorted(names)  # dependency order


CLI_WORDS = [
    "raw",
    "clean",
    "totals",
    "lonely",
    "latest",
    "--json",
    "--limit",
    "--upstream",
    "--downstream",
    "--depth",
    "--format",
    "--version",
    "--rejected",
    "--quarantined",
    "--",
    "0",
    "1",
    "-1",
    "99999999999999999999",
    "json",
    "dot",
    "mermaid",
    "xml",
    "",
    "CLEAN",
    "clean+",
    "../x",
    "'; drop table runs; --",
    "%",
    "_",
    "a\\b",
]


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    command=st.sampled_from(["status", "list", "lineage", "history", "show", "explain", "logs"]),
    args=st.lists(st.one_of(st.sampled_from(CLI_WORDS), st.text(max_size=12)), max_size=5),
)
def test_fuzz_cli_arguments_never_end_in_a_traceback(
    shared_shop: Path, command: str, args: list[str]
) -> None:
    before = catalog_state(shared_shop)
    result = invoke(shared_shop, command, *args)
    check_cli_result(result)
    assert catalog_state(shared_shop) == before
