"""Data-quality reports: a failure report a person can act on, JUnit XML for CI systems,
and GitHub Actions annotations."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vibepiper.execution.states import RunResult
from vibepiper.graph.graph import Graph
from vibepiper.validation.outcome import CheckOutcome

if TYPE_CHECKING:  # a type only: the audit runs in execution
    from vibepiper.execution.audit import AuditResult

SAMPLE_LINES = 3


@dataclass(frozen=True)
class Finding:
    """One asset's quality result, whichever command produced it."""

    asset: str
    outcomes: tuple[CheckOutcome, ...]
    problem: str = ""  # a failure that is not a check (stale, missing, unreadable)
    problem_fails: bool = False
    blocked: tuple[str, ...] = ()  # assets blocked because of this one


def from_run(run: RunResult, graph: Graph) -> list[Finding]:
    findings = []
    order = {name: i for i, name in enumerate(graph.order)}
    blocked_by: dict[str, list[str]] = {}  # a unit -> the units it blocked directly
    for label, result in run.results.items():
        if result.blocked_by:
            blocked_by.setdefault(result.blocked_by, []).append(label)
    for label, result in run.results.items():
        if not result.checks and result.state != "check_failed":
            continue
        blocked = _reached(blocked_by, label)
        blocked.sort(key=lambda b: (order.get(run.results[b].asset, 0), b))
        problem = (
            result.message
            if result.state == "check_failed" and not any(c.blocking for c in result.checks)
            else ""
        )
        findings.append(
            Finding(label, tuple(result.checks), problem, bool(problem), tuple(blocked))
        )
    return findings


def _reached(edges: dict[str, list[str]], start: str) -> list[str]:
    """Every node reachable from `start` (not itself) along `edges`."""
    seen: dict[str, None] = {}
    frontier = list(edges.get(start, ()))
    while frontier:
        node = frontier.pop()
        if node not in seen:
            seen[node] = None
            frontier += edges.get(node, ())
    return list(seen)


def from_audit(result: AuditResult) -> list[Finding]:
    return [Finding(a.asset, a.outcomes, a.problem, a.problem_fails) for a in result.audits]


def report_lines(findings: Iterable[Finding]) -> list[str]:
    """Which asset, which check, how many rows, a few of them, and what it blocked."""
    lines: list[str] = []
    for finding in findings:
        bad = [o for o in finding.outcomes if not o.passed]
        if not bad and not finding.problem:
            continue
        lines.append(f"{finding.asset}:")
        if finding.problem:
            mark = "✗" if finding.problem_fails else "!"
            lines.append(f"  {mark} {finding.problem}")
        for outcome in bad:
            mark = "!" if not outcome.blocking else "✗"
            label = (
                "warn"
                if outcome.severity == "warn"
                else ("quarantined" if outcome.quarantined else "error")
            )
            lines.append(f"  {mark} {outcome.name} [{label}]: {outcome.message}")
            lines += [f"      {row}" for row in _sample_rows(outcome.sample)]
        if finding.blocked:
            lines.append(f"  blocked because of it: {', '.join(finding.blocked)}")
    return lines


def _sample_rows(sample: str | None) -> list[str]:
    if not sample:
        return []
    try:
        rows = json.loads(sample)
    except ValueError:
        return [sample[:200]]
    # Whole rows: their values are already shortened (validation/outcome.py), and cutting
    # a row would hide the columns after the failing one.
    return [json.dumps(r, default=str, ensure_ascii=False) for r in rows[:SAMPLE_LINES]]


def write_junit(path: Path, findings: Sequence[Finding]) -> None:
    """One testcase per check (classname = asset); error-severity failures are failures."""
    from xml.etree import ElementTree as ET

    suite = ET.Element("testsuite", name="vibepiper")
    tests = failures = 0
    for finding in findings:
        cases = list(finding.outcomes)
        if finding.problem:
            cases.insert(
                0,
                CheckOutcome(
                    "materialization",
                    "error" if finding.problem_fails else "warn",
                    not finding.problem_fails,
                    message=finding.problem,
                ),
            )
        for outcome in cases:
            tests += 1
            case = ET.SubElement(suite, "testcase", classname=finding.asset, name=outcome.name)
            if outcome.blocking:
                failures += 1
                failure = ET.SubElement(
                    case, "failure", message=outcome.message, type=f"{outcome.kind}_failed"
                )
                failure.text = _failure_text(outcome)
            elif not outcome.passed:
                out = ET.SubElement(case, "system-out")
                out.text = _failure_text(outcome, "warning: ")
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    root = ET.Element("testsuites", tests=str(tests), failures=str(failures))
    root.append(suite)
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _failure_text(outcome: CheckOutcome, prefix: str = "") -> str:
    """Its message, and how many rows failed and a few of them where rows failed (not
    for a stale or missing asset, say)."""
    lines = [prefix + outcome.message]
    if outcome.failing_rows:
        lines.append(f"failing rows: {outcome.failing_rows}")
    lines += _sample_rows(outcome.sample)
    return "\n".join(lines) + "\n"


def github_annotations(findings: Iterable[Finding]) -> list[str]:
    """`::error` / `::warning` workflow commands, one per failed check."""
    lines = []
    for finding in findings:
        if finding.problem:
            level = "error" if finding.problem_fails else "warning"
            lines.append(
                f"::{level} title={_prop(f'vibepiper: {finding.asset}')}::{_data(finding.problem)}"
            )
        for outcome in finding.outcomes:
            if outcome.passed:
                continue
            level = "error" if outcome.blocking else "warning"
            title = f"vibepiper check {outcome.name} on {finding.asset}"
            lines.append(f"::{level} title={_prop(title)}::{_data(outcome.message)}")
    return lines


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
