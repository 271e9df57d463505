"""What each page of the UI shows, as plain data: the JSON API returns it as is, the HTML
pages render it. Every read goes through the project (the planner) or `catalog.reads`,
with short shared locks, so the UI never holds up a run."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from vibepiper.catalog import reads
from vibepiper.errors import SelectionError, UsageError

if TYPE_CHECKING:
    from vibepiper.project import Project
    from vibepiper.ui.judged import Judgement

PER_PAGE = 50  # runs per page
ASSETS_PER_PAGE = 200  # assets per page (the assets list, a run's assets)
MAX_PER_PAGE = 500
PREVIEW_ROWS = 20
LINEAGE_LIMIT = 1500  # nodes: above this, the lineage page asks to narrow the selection


class NotFound(Exception):
    """An unknown asset or run: a 404."""


class BadRequest(Exception):
    """A bad selection or absurd paging: a 400, with the message."""


def overview(
    project: Project, judged: Judgement, schedules: list[dict[str, Any]]
) -> dict[str, Any]:
    verdicts = judged.verdicts
    stale = [{"name": n, "reasons": list(v.reasons)} for n, v in verdicts.items() if not v.fresh]
    failing = [c for c in judged.check_results if not c["passed"]]
    _, runs = reads.runs_page(project.catalog, 0, 10)
    return {
        "runs": runs,
        "stale": stale[:200],
        "stale_count": len(stale),
        "assets": len(verdicts),
        "failing_checks": failing,
        "schedules": schedules,
    }


def runs(project: Project, page: int, per_page: int) -> dict[str, Any]:
    if not (1 <= per_page <= MAX_PER_PAGE):
        raise BadRequest(f"per_page={per_page} is not valid: give 1 to {MAX_PER_PAGE}")
    if not (1 <= page <= 1_000_000):
        raise BadRequest(f"page={page} is not valid: give a page number from 1")
    total, found = reads.runs_page(project.catalog, (page - 1) * per_page, per_page)
    pages = max(1, math.ceil(total / per_page))
    if page > pages:
        raise BadRequest(f"page={page} is past the last page ({pages})")
    return {"runs": found, "page": page, "pages": pages, "per_page": per_page, "total": total}


def run(project: Project, run_id: str, page: int = 1) -> dict[str, Any]:
    found, made = reads.run_detail(project.catalog, run_id)
    if found is None:
        raise NotFound(f"no run {run_id!r}")
    if found["status"] == "running":
        made += _pending(project, found["selection"] or "", {m["asset"] for m in made})
    counts: dict[str, int] = {}
    for m in made:
        counts[m["status"]] = counts.get(m["status"], 0) + 1
    pages = _pages(len(made), page, ASSETS_PER_PAGE)
    _, logs = reads.log_rows(project.catalog, run_id, None)
    start = found["started_at"]
    end = found["finished_at"] or max(
        (m["finished_at"] for m in made if m["finished_at"]), default=start
    )
    span = max((end - start).total_seconds(), 1e-3)
    made = made[(page - 1) * ASSETS_PER_PAGE : page * ASSETS_PER_PAGE]
    for m in made:  # where each asset's bar sits on the run's timeline, in %
        if m["started_at"] and m["finished_at"]:
            m["left"] = round(100 * max(0.0, (m["started_at"] - start).total_seconds()) / span, 2)
            width = (m["finished_at"] - m["started_at"]).total_seconds()
            m["width"] = round(max(0.5, 100 * width / span), 2)
            m["seconds"] = round(width, 3)
    return {
        "run": found,
        "assets": made,
        "counts": counts,
        "page": page,
        "pages": pages,
        "logs": logs[-200:],
        "live": found["status"] == "running",
    }


def starting(run_id: str) -> dict[str, Any]:
    """A run started from the UI that has not recorded itself yet (it may be waiting for
    another run to finish): the page follows it until it does."""
    run = {"run_id": run_id, "status": "starting", "started_at": None, "finished_at": None}
    return {"run": run, "assets": [], "counts": {}, "page": 1, "pages": 1, "logs": [], "live": True}


def _pending(project: Project, selection: str, settled: set[str]) -> list[dict[str, Any]]:
    """The assets a running run selected that have not settled yet (waiting or running:
    a run records each asset once it is done)."""
    from vibepiper.graph.selection import selection_words

    words = selection_words(selection)
    if words is None:
        return []
    try:
        names = project.select(words[0] or None, words[1])
    except UsageError:  # the project changed since the run started
        return []
    return [
        {"asset": n, "status": "pending", "started_at": None, "finished_at": None}
        for n in names
        if n not in settled
    ]


def _pages(total: int, page: int, per_page: int) -> int:
    """How many pages `total` items make; a BadRequest if `page` is not one of them."""
    pages = max(1, math.ceil(total / per_page))
    if not (1 <= page <= pages):
        raise BadRequest(f"page={page} is not valid: there are {pages} pages")
    return pages


def assets(project: Project, judged: Judgement, select: str, page: int = 1) -> dict[str, Any]:
    names = _select(project, select)
    pages = _pages(len(names), page, ASSETS_PER_PAGE)
    shown = names[(page - 1) * ASSETS_PER_PAGE : page * ASSETS_PER_PAGE]
    rows = []
    for row in project.list_rows(shown):
        verdict = judged.verdicts.get(row["name"])
        rows.append(
            {
                "name": row["name"],
                "group": row["group"],
                "tags": row["tags"],
                "fresh": bool(verdict and verdict.fresh),
                "reasons": list(verdict.reasons) if verdict else [],
                "last_state": judged.states.get(row["name"]),
            }
        )
    return {"select": select, "assets": rows, "total": len(names), "page": page, "pages": pages}


def asset(project: Project, judged: Judgement, name: str) -> dict[str, Any]:
    from vibepiper.reporting.explain import trace

    if name not in project.graph.assets:
        raise NotFound(f"no asset {name!r}")
    listing = project.list_rows([name])[0]
    cause = trace(name, judged.verdicts)
    last = reads.last_run(project.catalog, name, project.graph.ancestors(name))
    history = reads.history_rows(project.catalog, name, 10)
    return {
        "asset": listing,
        "upstream": list(project.graph.upstream[name]),
        "downstream": list(project.graph.downstream[name]),
        "explain": cause.as_dict(),
        "last_run": last,
        "history": history,
        "preview": _preview(project, name),
        "sql": project.graph.assets[name].sql,
        "column_sources": _column_sources(project, name),
    }


def _column_sources(project: Project, name: str) -> dict[str, list[str]]:
    """Of a SQL asset: each column's input columns ("asset.column"), as its current data
    records them (SPEC §10); empty for other assets."""
    if not project.graph.assets[name].is_sql:
        return {}
    found: dict[str, list[str]] = {}
    for row in reads.column_lineage_rows(project.catalog, [name]).get(name, []):
        sources = found.setdefault(row["column_name"], [])
        if row["upstream_asset"] is not None:
            sources.append(f"{row['upstream_asset']}.{row['upstream_column']}")
    return found


def _preview(project: Project, name: str) -> dict[str, Any] | None:
    """The columns (Arrow types, as published) and first rows (as text) of its current
    data, read from the stored file's first row group only; None if it has none."""
    from vibepiper.errors import VibePiperError
    from vibepiper.units import whole

    if project.graph.assets[name].partitions is not None:  # the partition made last
        current = reads.latest_partition_version(project.catalog, name)
    else:
        current = reads.current_version(project.catalog, name)
    if current is None:
        return None
    try:
        dataset = project.store.dataset(whole(name), current["data_version"])
        if dataset is None:
            return {"error": "its stored file is missing", "columns": [], "rows": []}
        head = dataset.head(PREVIEW_ROWS)
    except VibePiperError as exc:
        return {"error": exc.message, "columns": [], "rows": []}
    except Exception as exc:  # pyarrow's errors on a damaged file: `doctor` tells more
        why = f"its stored file cannot be read ({type(exc).__name__}); run vibepiper doctor"
        return {"error": why, "columns": [], "rows": []}
    columns = [{"name": f.name, "type": str(f.type)} for f in dataset.schema]
    names = [c["name"] for c in columns]
    values = [head.column(i).to_pylist() for i in range(head.num_columns)]
    return {
        "columns": columns,
        "rows": [[_text(v[i]) for v in values] for i in range(head.num_rows)],
        "total": current["row_count"],
        "names": names,
        "partition": current.get("partition_key"),
    }


def _text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:199] + "…"


def lineage(project: Project, judged: Judgement, select: str) -> dict[str, Any]:
    from vibepiper.reporting.graph_view import graph_svg
    from vibepiper.reporting.site import css_class

    names = _select(project, select)
    if len(names) > LINEAGE_LIMIT:
        return {
            "select": select,
            "too_many": len(names),
            "limit": LINEAGE_LIMIT,
            "nodes": [],
            "edges": [],
        }
    verdicts, states = judged.verdicts, judged.states
    chosen = set(names)
    edges = [(u, n) for n in names for u in project.graph.upstream[n] if u in chosen]
    nodes = [
        {
            "name": n,
            "state": states.get(n, "never"),
            "fresh": bool(verdicts.get(n) and verdicts[n].fresh),
        }
        for n in names
    ]
    css: dict[str, str] = {}
    titles: dict[str, str] = {}
    for n in names:
        fresh = bool(verdicts.get(n) and verdicts[n].fresh)
        css[n] = css_class(states.get(n), fresh)
        titles[n] = f"{n}: last {states.get(n, 'never run')}, {'fresh' if fresh else 'stale'}"
    svg = graph_svg(project.graph, names, css, titles, link="/assets/{name}")
    return {"select": select, "nodes": nodes, "edges": edges, "svg": svg}


def checks(judged: Judgement) -> dict[str, Any]:
    return {"checks": judged.check_results}


def _select(project: Project, select: str) -> list[str]:
    if not select.strip():
        return list(project.graph.order)
    try:
        return project.select(select.split())
    except (SelectionError, UsageError) as exc:
        raise BadRequest(str(exc)) from None
