"""The pure cores, without a catalog, a store or a subprocess: `judge` (one asset's
verdict), the planner (a selection's decisions, and settling them during a run) and the
fingerprinter (code versions and the words for what changed)."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import textwrap
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibepiper import asset, check, expect, source_file
from vibepiper.errors import VibePiperError
from vibepiper.graph.graph import Graph
from vibepiper.units import Unit
from vibepiper.versioning import planner
from vibepiper.versioning.fingerprint import CodeVersion, Fingerprinter
from vibepiper.versioning.freshness import (
    STALE,
    WILL_RUN,
    Current,
    Reason,
    Verdict,
    Why,
    judge,
)
from vibepiper.versioning.planner import (
    Action,
    Observed,
    PlanOptions,
    make_plan,
    settle,
)

NOW = datetime(2026, 12, 1, 12, 0, 0)
MADE = datetime(2026, 12, 1, 11, 0, 0)
CODE = CodeVersion("c1", {"code": "h1", "config": "k1"})


def current(asset: str, data: str, inputs: Mapping[str, str | None] = (), **kw: object) -> Current:
    fields: dict[str, object] = {
        "code_version": CODE.version,
        "code_parts_recorded": dict(CODE.parts),
        **kw,
    }
    return Current(asset, f"m-{asset}", data_version=data, row_count=1, finished_at=MADE,
                   inputs=dict(inputs), **fields)  # type: ignore[arg-type]  # fmt: skip


# -- judge ------------------------------------------------------------------------------


def test_judge_never_materialized_is_the_only_reason() -> None:
    verdict = judge(None, code=CODE, inputs={"a": "v"})
    assert verdict == Verdict(False, (Reason(Why.NEVER),), False)
    assert verdict.reasons == ("never materialized",)


def test_judge_fresh_when_code_inputs_and_file_match() -> None:
    cur = current("b", "d1", {"a": "va"})
    assert judge(cur, code=CODE, inputs={"a": "va"}).fresh


def test_judge_gives_every_reason_in_words() -> None:
    cur = current("b", "d1", {"a": "va"}, last_attempt="failed")
    changed = CodeVersion("c2", {"code": "h2", "config": "k2"})
    verdict = judge(
        cur,
        code=changed,
        inputs={"a": "va2", "n": "vn"},
        file_problem="damaged",
        max_age=timedelta(minutes=30),
        now=NOW,
    )
    assert verdict.reasons == (
        "its stored file is damaged",
        "code changed",
        "configuration changed",
        "upstream a changed since 2026-12-01 11:00:00 UTC",
        "new input n",
        "older than max_age (30m), made 2026-12-01 11:00:00 UTC",
        "the last attempt failed",
    )
    assert [c.kind for c in verdict.causes] == [
        Why.FILE, Why.CODE, Why.CODE, Why.UPSTREAM_CHANGED, Why.NEW_INPUT, Why.MAX_AGE,
        Why.LAST_ATTEMPT,
    ]  # fmt: skip
    assert [c.upstream for c in verdict.causes if c.upstream] == ["a"]
    assert not verdict.recheck


def test_judge_a_changed_source_file() -> None:
    cur = current("raw", "hash1")
    verdict = judge(cur, code=CODE, inputs={}, source=("data/raw.csv", "hash2"))
    assert verdict.reasons == ("source data/raw.csv changed",)
    assert judge(cur, code=CODE, inputs={}, source=("data/raw.csv", "hash1")).fresh


def test_judge_data_read_by_checks_is_a_recheck_not_a_recompute() -> None:
    cur = current("orders", "d1", check_reads={"airlines": "x1"}, last_attempt="check_failed")
    verdict = judge(cur, code=CODE, inputs={}, check_reads={"airlines": ("x2", ("known_airline",))})
    assert verdict.reasons == (
        "check known_airline reads airlines, which changed",
        "the last attempt failed its checks",
    )
    assert verdict.recheck
    assert verdict.causes[0].upstream == "airlines"


def test_judge_two_checks_reading_an_asset_never_validated_against() -> None:
    cur = current("orders", "d1")
    verdict = judge(cur, code=CODE, inputs={}, check_reads={"a": ("v", ("c1", "c2"))})
    assert verdict.reasons == ("checks c1, c2 read a, which it was not validated against",)
    assert verdict.recheck


def test_judge_a_check_read_of_an_input_counts_as_the_input() -> None:
    cur = current("b", "d1", {"a": "va"}, check_reads={})
    verdict = judge(cur, code=CODE, inputs={"a": "va2"}, check_reads={"a": ("va2", ("c",))})
    assert [c.kind for c in verdict.causes] == [Why.UPSTREAM_CHANGED]
    assert not verdict.recheck


# -- the planner -----------------------------------------------------------------------


@asset
def a() -> None: ...


@asset
def b(a: object) -> None: ...


@asset
def c(b: object) -> None: ...


@asset
def lonely() -> None: ...


@asset(checks=[expect.relationship("key", to="lonely", field="key")])
def checked() -> None: ...


@asset
def summary(checked: object) -> None: ...


raw = source_file("raw", "data/raw.csv")


@asset
def clean(raw: object) -> None: ...


@check(asset="c")
def c_is_small(c: object) -> bool:
    return True


GRAPH = Graph.build([a, b, c, lonely, checked, summary, raw, clean], [c_is_small])
NAMES = list(GRAPH.order)


def observed(
    codes: Mapping[str, CodeVersion] | None = None,
    sources: Mapping[str, str] | None = None,
    errors: Mapping[str, VibePiperError] | None = None,
    damage: Mapping[Unit, str] | None = None,
) -> Observed:
    all_codes = {name: CODE for name in GRAPH.assets} | dict(codes or {})
    # every unit with data was looked at (one that was not counts as missing)
    looked = {Unit(name): "" for name in GRAPH.assets} | dict(damage or {})
    found = {Unit(k): v for k, v in (sources or {"raw": "r1"}).items()}
    failing = {Unit(k): v for k, v in (errors or {}).items()}
    return Observed(all_codes, found, failing, looked, NOW)


def everything_current() -> dict[Unit, Current]:
    made = {
        "a": current("a", "va"),
        "b": current("b", "vb", {"a": "va"}),
        "c": current("c", "vc", {"b": "vb"}),
        "lonely": current("lonely", "vl"),
        "checked": current("checked", "vk", check_reads={"lonely": "vl"}),
        "summary": current("summary", "vs", {"checked": "vk"}),
        "raw": current("raw", "r1"),
        "clean": current("clean", "vc2", {"raw": "r1"}),
    }
    return {Unit(name): cur for name, cur in made.items()}


def units(*names: str) -> list[Unit]:
    return [Unit(n) for n in names]


def test_everything_current_plans_nothing() -> None:
    plan = make_plan(GRAPH, everything_current(), observed(), units(*NAMES))
    assert {d.action for d in plan.decisions.values()} == {Action.SKIP}
    assert not plan.computes
    assert all(v.fresh for v in plan.verdicts().values())


def test_a_code_change_runs_it_and_provisionally_everything_downstream() -> None:
    changed = CodeVersion("c2", {"code": "h2", "config": "k1"})
    plan = make_plan(GRAPH, everything_current(), observed({"a": changed}), units(*NAMES))
    decisions = plan.decisions
    assert decisions[Unit("a")].action is Action.RUN
    assert not decisions[Unit("a")].provisional
    for name in ("b", "c"):
        assert decisions[Unit(name)].action is Action.RUN
        assert decisions[Unit(name)].provisional
    assert decisions[Unit("b")].causes == (Reason(Why.UPSTREAM_STALE, "a", WILL_RUN),)
    assert plan.verdicts()["c"].reasons == ("upstream b will be recomputed",)
    assert decisions[Unit("lonely")].action is Action.SKIP


def test_whole_graph_says_is_stale_and_covers_ancestors_of_the_selection() -> None:
    changed = CodeVersion("c2", {"code": "h2", "config": "k1"})
    options = PlanOptions(whole_graph=True)
    plan = make_plan(GRAPH, everything_current(), observed({"a": changed}), units("c"), options)
    assert set(plan.decisions) == {Unit("a"), Unit("b"), Unit("c")}
    assert list(plan.verdicts()) == ["c"]
    assert plan.verdicts()["c"].reasons == (f"upstream b {STALE}",)


def test_an_unselected_stale_upstream_keeps_its_data_in_a_run() -> None:
    changed = CodeVersion("c2", {"code": "h2", "config": "k1"})
    plan = make_plan(GRAPH, everything_current(), observed({"a": changed}), units("b", "c"))
    assert plan.decisions[Unit("b")].action is Action.SKIP


def test_force_runs_the_fresh_selection_only() -> None:
    options = PlanOptions(force=True)
    plan = make_plan(GRAPH, everything_current(), observed(), units("a"), options)
    assert plan.decisions[Unit("a")].causes == (Reason(Why.FORCE),)
    assert plan.verdicts()["a"].reasons == ("--force",)


def test_a_changed_asset_read_by_checks_is_a_recheck_that_spreads_nothing() -> None:
    cur = everything_current()
    cur[Unit("lonely")] = current("lonely", "vl2")
    plan = make_plan(GRAPH, cur, observed(), units(*NAMES))
    checks = GRAPH.check_reads["checked"]["lonely"]
    decision = plan.decisions[Unit("checked")]
    assert decision.action is Action.RECHECK and not decision.provisional
    assert decision.causes == (Reason(Why.CHECK_READ, "lonely", "changed", checks),)
    others = {u.asset for u, d in plan.decisions.items() if d.action is not Action.SKIP}
    assert others == {"checked"}


def test_what_reads_a_recheck_waits_to_see_whether_quarantine_changed_its_data() -> None:
    cur = everything_current()
    cur[Unit("lonely")] = current("lonely", "vl2")
    plan = make_plan(GRAPH, cur, observed(), units(*NAMES))
    decision = plan.decisions[Unit("summary")]
    assert decision.action is Action.SKIP and decision.provisional and not decision.causes
    assert settle(plan, GRAPH, Unit("summary"), {"checked": "vk"}, {}).action is Action.SKIP
    fewer_rows = settle(plan, GRAPH, Unit("summary"), {"checked": "vk-quarantined"}, {})
    assert fewer_rows.action is Action.RUN
    assert [r.kind for r in fewer_rows.causes] == [Why.UPSTREAM_CHANGED]


def test_a_stale_asset_read_by_checks_makes_a_provisional_recheck() -> None:
    changed = CodeVersion("c2", {"code": "h2", "config": "k1"})
    plan = make_plan(GRAPH, everything_current(), observed({"lonely": changed}), units(*NAMES))
    decision = plan.decisions[Unit("checked")]
    assert decision.action is Action.RECHECK and decision.provisional
    assert [(c.kind, c.asset, c.detail) for c in decision.causes] == [
        (Why.CHECK_READ, "lonely", WILL_RUN)
    ]


def test_never_materialized_stays_the_only_reason() -> None:
    cur = everything_current()
    del cur[Unit("b")]
    changed = CodeVersion("c2", {"code": "h2", "config": "k1"})
    plan = make_plan(GRAPH, cur, observed({"a": changed}), units(*NAMES))
    assert plan.verdicts()["b"].reasons == ("never materialized",)
    assert not plan.decisions[Unit("b")].provisional


def test_a_source_that_cannot_be_read_fails_and_its_consumers_wait_on_it() -> None:
    error = VibePiperError("source file data/raw.csv of asset 'raw' does not exist", "create it")
    plan = make_plan(GRAPH, everything_current(), observed(errors={"raw": error}), units(*NAMES))
    assert plan.decisions[Unit("raw")].action is Action.FAIL
    assert plan.verdicts()["raw"].reasons == (error.message,)
    assert plan.decisions[Unit("clean")].provisional


def test_damaged_data_is_recomputed() -> None:
    plan = make_plan(
        GRAPH, everything_current(), observed(damage={Unit("a"): "missing"}), units("a")
    )
    assert plan.verdicts()["a"].reasons == ("its stored file is missing",)


def test_settle_early_cutoff_an_input_recomputed_to_the_same_data() -> None:
    changed = CodeVersion("c2", {"code": "h2", "config": "k1"})
    plan = make_plan(GRAPH, everything_current(), observed({"a": changed}), units(*NAMES))
    same = settle(plan, GRAPH, Unit("b"), {"a": "va"}, {})
    assert same.action is Action.SKIP
    other = settle(plan, GRAPH, Unit("b"), {"a": "va-new"}, {})
    assert other.action is Action.RUN
    assert [str(r) for r in other.causes] == ["upstream a changed since 2026-12-01 11:00:00 UTC"]


def test_settle_keeps_a_decision_that_did_not_wait_on_the_run() -> None:
    changed = CodeVersion("c2", {"code": "h2", "config": "k1"})
    plan = make_plan(GRAPH, everything_current(), observed({"a": changed}), units(*NAMES))
    decision = plan.decisions[Unit("a")]
    assert settle(plan, GRAPH, Unit("a"), {}, {}) is decision


def test_settle_with_force_runs_what_turned_out_fresh() -> None:
    plan = make_plan(
        GRAPH, everything_current(), observed(), units(*NAMES), PlanOptions(force=True)
    )
    assert settle(plan, GRAPH, Unit("b"), {"a": "va"}, {}).causes == (Reason(Why.FORCE),)


# -- the fingerprinter -----------------------------------------------------------------


def load_module(tmp_path: Path, name: str, source: str) -> ModuleType:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


MODULE = """
    from vibepiper import asset

    RATE = {rate}

    def helper(x):
        return x * RATE

    @asset
    def priced(orders, factor={factor}):
        {comment}
        return helper(orders) * {body}
"""


def fingerprint(tmp_path: Path, n: int, **values: object) -> CodeVersion:
    given = {"rate": 2, "factor": 1, "comment": "# a comment", "body": 3} | values
    module = load_module(tmp_path, f"fp_module_{n}", MODULE.format(**given))
    return Fingerprinter().code_version(module.priced, ())


def test_fingerprint_ignores_comments_and_names_what_changed(tmp_path: Path) -> None:
    from vibepiper.versioning.fingerprint import describe_changes

    base = fingerprint(tmp_path, 0)
    assert fingerprint(tmp_path, 1, comment="'''a docstring'''").version == base.version
    cases = {
        "body": (4, ["code changed"]),
        "factor": (2, ["configuration changed"]),
        "rate": (5, ["constant RATE changed"]),
    }
    for n, (field_name, (value, words)) in enumerate(cases.items(), start=2):
        changed = fingerprint(tmp_path, n, **{field_name: value})
        assert changed.version != base.version, field_name
        assert describe_changes(base.parts, changed.parts) == words, field_name


def test_a_pinned_version_is_the_code_version(tmp_path: Path) -> None:
    module = load_module(
        tmp_path,
        "fp_pinned",
        """
        from vibepiper import asset

        @asset(version="7")
        def pinned():
            return 1
        """,
    )
    assert Fingerprinter().code_version(module.pinned, ()) == CodeVersion("v:7", {"version": "7"})


@pytest.mark.parametrize("kind", list(Why))
def test_every_kind_of_reason_renders_words(kind: Why) -> None:
    text = str(Reason(kind, "x", "detail", ("c",)))
    assert text and "Why." not in text


# -- the quick check is only a shortcut ----------------------------------------------------

LAST_ATTEMPTS = ["succeeded", "failed", "check_failed", "cancelled"]


@st.composite
def catalog_states(draw: st.DrawFn) -> tuple[dict[Unit, Current], Observed]:
    """Any mix of what the catalog and the store can say about GRAPH's assets."""
    made = everything_current()
    changed_codes: dict[str, CodeVersion] = {}
    damage: dict[Unit, str] = {}
    for name in NAMES:
        unit = Unit(name)
        if draw(st.booleans()) and draw(st.booleans()):
            del made[unit]
            continue
        cur = made[unit]
        inputs = dict(cur.inputs)
        for up in list(inputs):
            inputs[up] = draw(st.sampled_from([inputs[up], "other", None]))
        if draw(st.booleans()) and draw(st.booleans()):
            inputs["removed"] = "x"
        made[unit] = dataclasses.replace(
            cur,
            inputs=inputs,
            last_attempt=draw(st.sampled_from(LAST_ATTEMPTS)),
            data_version=draw(st.sampled_from([cur.data_version, "other"])),
        )
        if draw(st.booleans()) and draw(st.booleans()):
            changed_codes[name] = CodeVersion("c2", {"code": "h2", "config": "k1"})
        damage[unit] = draw(st.sampled_from(["", "", "missing", "damaged"]))
    return made, observed(changed_codes, damage=damage)


@settings(max_examples=300, deadline=None)
@given(state=catalog_states(), force=st.booleans(), whole=st.booleans())
def test_the_quick_check_decides_as_judging_in_full_does(
    state: tuple[dict[Unit, Current], Observed], force: bool, whole: bool
) -> None:
    made, seen = state
    options = PlanOptions(force=force, whole_graph=whole)
    quick = make_plan(GRAPH, made, seen, units(*NAMES), options)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(planner, "_quick_check", lambda *args: None)
        full = make_plan(GRAPH, made, seen, units(*NAMES), options)
    assert quick.decisions == full.decisions
