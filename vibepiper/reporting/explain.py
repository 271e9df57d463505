"""`vibepiper explain ASSET`: why an asset is stale (or fresh), traced up the graph to the
root causes, and what happened to it in its last run, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vibepiper.versioning.freshness import Reason, Verdict


@dataclass
class Cause:
    """One asset's verdict, with the verdicts of the upstream assets it blames."""

    asset: str
    fresh: bool
    causes: list[Reason]
    upstream: list[Cause] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [str(c) for c in self.causes]

    def as_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "fresh": self.fresh,
            "reasons": self.reasons,
            "upstream": [c.as_dict() for c in self.upstream],
        }


def trace(name: str, verdicts: dict[str, Verdict], seen: set[str] | None = None) -> Cause:
    """The tree of causes for `name`, from verdicts covering it and all its ancestors:
    each reason that blames another asset (`Reason.upstream`) leads to that asset's."""
    seen = set() if seen is None else seen
    verdict = verdicts[name]
    cause = Cause(name, verdict.fresh, list(verdict.causes))
    for reason in verdict.causes:
        up = reason.upstream
        if up is not None and up in verdicts and up not in seen and not verdicts[up].fresh:
            seen.add(up)
            cause.upstream.append(trace(up, verdicts, seen))
    return cause


def root_causes(cause: Cause) -> list[str]:
    """The reasons at the top of the tree: an edited function, a changed file..."""
    traced = {up.asset for up in cause.upstream}
    own = [f"{cause.asset}: {r}" for r in cause.causes if r.upstream not in traced]
    found = [r for up in cause.upstream for r in root_causes(up)]
    return list(dict.fromkeys(found + own))


def render(cause: Cause, run: dict[str, Any] | None) -> list[str]:
    lines = []

    def walk(node: Cause, depth: int) -> None:
        pad = "  " * depth
        lines.append(f"{pad}{node.asset}: {'fresh' if node.fresh else 'stale'}")
        for reason in node.reasons:
            lines.append(f"{pad}  - {reason}")
        for up in node.upstream:
            walk(up, depth + 2)

    walk(cause, 0)
    roots = root_causes(cause)
    if roots:
        lines.append("root cause" + ("s" if len(roots) > 1 else "") + ":")
        lines += [f"  {r}" for r in roots]
    lines += _render_run(cause.asset, run)
    lines += _render_trigger(run)
    return lines


def _render_trigger(run: dict[str, Any] | None) -> list[str]:
    """Which trigger started the run that last computed the asset, and why it fired."""
    by = (run or {}).get("computed_by")
    if not by:
        return []
    trigger = by["trigger"] or "manual"
    said = "by hand (vibepiper materialize)" if trigger == "manual" else f"by {trigger}"
    lines = [f"last computed in run {by['run_id']}, started {said}"]
    for tick in by["ticks"]:
        when = f" due {str(tick['scheduled_for'])[:16]} UTC" if ":" not in tick["schedule"] else ""
        lines.append(f"  {tick['schedule']}{when}: {tick['reason'] or ''}".rstrip(": "))
    return lines


def _render_run(name: str, run: dict[str, Any] | None) -> list[str]:
    if run is None:
        return [f"last run: {name} was never run"]
    status = run["status"]
    head = f"last run {run['run_id']}: {status}"
    if status == "skipped":
        return [f"{head} (it was fresh)"]
    if status == "succeeded":
        reason = run["reason"] or "it was stale"
        if reason.startswith("revalidated, not recomputed: "):
            said = f"{head}, validated again, not recomputed, because: "
            reason = reason.removeprefix("revalidated, not recomputed: ")
        else:
            said = f"{head}, recomputed because: "
        return [
            f"{said}{reason}",
            f"  made {run['row_count']} rows, data version {run['data_version'][:12]}",
        ]
    if status == "failed":
        return [head, f"  {_last_line(run['error'])}"]
    if status == "check_failed":
        return [head] + [f"  {c['check_name']}: {c['message']}" for c in run["failed_checks"]]
    causes = [
        f"  because {c['asset']} {c['status'].replace('_', ' ')}: {_last_line(c['error'])}"
        for c in run.get("caused_by", [])
    ]
    return [head, f"  {run['error'] or ''}", *causes]


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
