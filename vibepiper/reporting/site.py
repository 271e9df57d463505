"""`vibepiper docs`: a self-contained static site of the project (works offline, no CDN).

`index.html` draws the lineage graph as an SVG, each asset coloured by its last state and
freshness; clicking one shows its description, schema, checks with their last results and
recent materializations. `assets/<name>.html` has the same for each asset, as a page.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vibepiper.catalog import reads
from vibepiper.graph.graph import Graph
from vibepiper.reporting.graph_view import graph_svg
from vibepiper.reporting.listing import check_names

if TYPE_CHECKING:
    from vibepiper.catalog.catalog import Catalog
    from vibepiper.versioning.freshness import Verdict

HISTORY = 5  # the latest materializations shown of each asset


def _svg(graph: Graph, assets: Mapping[str, dict[str, Any]]) -> str:
    return graph_svg(
        graph,
        list(graph.order),
        {n: a["css"] for n, a in assets.items()},
        {n: a["summary"] for n, a in assets.items()},
    )


def css_class(state: str | None, fresh: bool | None) -> str:
    if state in ("failed", "check_failed"):
        return "failed"
    if state == "blocked":
        return "blocked"
    if state is None:
        return "never"
    return "fresh" if fresh else "stale"


def asset_details(info: Mapping[str, Any]) -> str:
    """The details of one asset, as HTML (used in the panel and on its own page)."""
    esc = html.escape
    out = [f"<h2>{esc(info['name'])}</h2>"]
    out.append(f'<p class="status {info["css"]}">{esc(info["summary"])}</p>')
    if info["description"]:
        out.append(f"<p>{esc(info['description'])}</p>")
    meta = [f"group <b>{esc(info['group'])}</b>"]
    if info["tags"]:
        meta.append("tags " + ", ".join(f"<b>{esc(t)}</b>" for t in info["tags"]))
    if info["deps"]:
        meta.append("reads " + ", ".join(_link(d) for d in info["deps"]))
    out.append(f"<p>{' · '.join(meta)}</p>")
    if info["reasons"]:
        out.append("<p>stale: " + "; ".join(esc(r) for r in info["reasons"]) + "</p>")
    if info["schema"]:
        out.append("<h3>Schema</h3><table><tr><th>column</th><th>type</th><th>checks</th></tr>")
        out += [
            f"<tr><td>{esc(c['name'])}</td><td>{esc(c['type'])}</td>"
            f"<td>{esc(', '.join(c['checks']))}</td></tr>"
            for c in info["schema"]
        ]
        out.append("</table>")
    if info["checks"]:
        out.append(
            "<h3>Checks</h3><table><tr><th>check</th><th>severity</th><th>last result"
            "</th><th>checked (UTC)</th><th>failing rows</th><th>message</th></tr>"
        )
        for chk in info["checks"]:
            result = {True: "passed", False: "failed", None: "not run"}[chk["passed"]]
            out.append(
                f'<tr class="{result}"><td>{esc(chk["name"])}</td>'
                f"<td>{esc(chk['severity'])}</td><td>{result}</td>"
                f"<td>{_when(chk['checked_at'])}</td>"
                f"<td>{chk['failing_rows'] or ''}</td><td>{esc(chk['message'] or '')}"
                "</td></tr>"
            )
        out.append("</table>")
    if info["history"]:
        out.append(
            "<h3>Recent materializations</h3><table><tr><th>finished (UTC)</th>"
            "<th>status</th><th>rows</th><th>data version</th></tr>"
        )
        out += [
            f"<tr><td>{_when(h['finished_at'])}</td><td>{esc(h['status'])}</td>"
            f"<td>{h['row_count'] if h['row_count'] is not None else ''}</td>"
            f"<td><code>{esc((h['data_version'] or '')[:12])}</code></td></tr>"
            for h in info["history"]
        ]
        out.append("</table>")
    return "".join(out)


def _when(moment: Any) -> str:
    """A catalog time (UTC) to the second, or nothing."""
    return "" if moment is None else html.escape(str(moment)[:19])


def _link(name: str) -> str:
    return f'<a href="assets/{name}.html" data-asset="{name}">{html.escape(name)}</a>'


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;display:flex;height:100vh;color:#222}
main{flex:1;overflow:auto;padding:12px}aside{width:380px;overflow:auto;padding:12px 18px;
border-left:1px solid #ddd;background:#fafafa}h1{font-size:18px;margin:4px 0 10px}
.edge{fill:none;stroke:#8a939d;stroke-width:1.4}.edge.order{stroke-dasharray:4 3}
.node{cursor:pointer}
.node rect{stroke:#555;stroke-width:1}.node text{text-anchor:middle;font-size:12px}
.node.selected rect{stroke:#1a56db;stroke-width:3}.fresh rect,.status.fresh{fill:#c8e6c9;
background:#c8e6c9}.stale rect,.status.stale{fill:#ffe0b2;background:#ffe0b2}
.failed rect,.status.failed{fill:#ffcdd2;background:#ffcdd2}.blocked rect,.status.blocked{
fill:#fff3c4;background:#fff3c4}.never rect,.status.never{fill:#eee;background:#eee}
.status{padding:4px 8px;border-radius:6px;display:inline-block}table{border-collapse:
collapse;margin:6px 0 12px;width:100%}td,th{border-bottom:1px solid #e3e3e3;text-align:
left;padding:3px 6px;font-size:12.5px;vertical-align:top;word-break:break-word}
tr.failed td{color:#b00020}
.legend span{margin-right:10px;padding:2px 6px;border-radius:4px}
"""

SCRIPT = """
const assets = JSON.parse(document.getElementById('assets').textContent);
function show(name) {
  document.querySelectorAll('.node').forEach(n =>
    n.classList.toggle('selected', n.dataset.asset === name));
  document.getElementById('details').innerHTML = assets[name].html;
  document.querySelectorAll('#details a[data-asset]').forEach(a =>
    a.addEventListener('click', e => { e.preventDefault(); show(a.dataset.asset); }));
}
document.querySelectorAll('.node').forEach(n => {
  n.addEventListener('click', () => show(n.dataset.asset));
  n.addEventListener('keydown', e => { if (e.key === 'Enter') show(n.dataset.asset); });
});
"""


def site_assets(
    graph: Graph, catalog: Catalog, verdicts: Mapping[str, Verdict]
) -> dict[str, dict[str, Any]]:
    """Everything the site shows about each asset of a (fully loaded) project's `graph`,
    given every asset's verdict."""
    states = reads.last_states(catalog)
    results = reads.last_check_results(catalog)
    history = reads.recent_materializations(catalog, HISTORY)
    assets = {}
    for name in graph.order:
        defn, verdict, state = graph.assets[name], verdicts[name], states.get(name)
        css = css_class(state, verdict.fresh)
        summary = f"{name}: last {state or 'never run'}, {'fresh' if verdict.fresh else 'stale'}"
        assets[name] = {
            "name": name,
            "description": defn.description,
            "group": defn.group,
            "tags": list(defn.tags),
            "deps": list(graph.upstream[name]),
            "state": state,
            "fresh": verdict.fresh,
            "reasons": list(verdict.reasons),
            "css": css,
            "summary": summary,
            "schema": schema_columns(defn.schema),
            "checks": _checks(graph, name, [r for r in results if r["asset"] == name]),
            "history": [h for h in history if h["asset"] == name],
        }
    return assets


def _checks(graph: Graph, name: str, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The asset's checks with their last results, then those that have none yet."""
    checks = [
        {
            "name": r["check_name"],
            "severity": r["severity"],
            "passed": r["passed"],
            "failing_rows": r["failing_rows"],
            "message": r["message"],
            "checked_at": r["checked_at"],
        }
        for r in results
    ]
    ran = {c["name"] for c in checks}
    checks += [
        {
            "name": c,
            "severity": "",
            "passed": None,
            "failing_rows": None,
            "message": "",
            "checked_at": None,
        }
        for c in check_names(graph, name)
        if c not in ran and not c.startswith("schema:")
    ]
    return checks


def schema_columns(schema: Any) -> list[dict[str, Any]]:
    """The columns a pandera schema declares, with their types and checks."""
    if schema is None:
        return []
    to_schema = getattr(schema, "to_schema", None)
    try:
        resolved = to_schema() if callable(to_schema) else schema
        columns = getattr(resolved, "columns", {}) or {}
        return [
            {
                "name": str(name),
                "type": str(getattr(col, "dtype", "")),
                "checks": [str(getattr(c, "name", c)) + _stats(c) for c in col.checks]
                + (["nullable"] if getattr(col, "nullable", False) else [])
                + (["unique"] if getattr(col, "unique", False) else []),
            }
            for name, col in columns.items()
        ]
    except Exception:  # a schema we cannot describe is still validated; just not shown
        return []


def _stats(check: Any) -> str:
    stats = getattr(check, "statistics", None) or {}
    return f"({', '.join(f'{v}' for v in stats.values())})" if stats else ""


def write_site(out: Path, title: str, graph: Graph, assets: Mapping[str, dict[str, Any]]) -> Path:
    """Write index.html and one page per asset into `out`; return the index's path."""
    (out / "assets").mkdir(parents=True, exist_ok=True)
    panels = {name: {"html": asset_details(info)} for name, info in assets.items()}
    data = json.dumps(panels).replace("</", "<\\/")
    legend = "".join(
        f'<span class="status {c}">{c}</span>'
        for c in ("fresh", "stale", "failed", "blocked", "never")
    )
    index = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><main><h1>{html.escape(title)}: "
        f"{len(assets)} assets</h1><p class='legend'>{legend} solid lines carry data, dashed "
        f"ones only order</p>{_svg(graph, assets)}</main>"
        "<aside id='details'><p>Click an asset to see its description, schema, checks and "
        "recent materializations.</p></aside>"
        f"<script type='application/json' id='assets'>{data}</script>"
        f"<script>{SCRIPT}</script></body></html>"
    )
    (out / "index.html").write_text(index, encoding="utf-8")
    for name, info in assets.items():
        details = asset_details(info).replace('href="assets/', 'href="')  # siblings
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(name)}"
            f"</title><style>{STYLE}body{{display:block;padding:16px}}</style></head><body>"
            f"<p><a href='../index.html'>&larr; all assets</a></p>{details}</body></html>"
        )
        (out / "assets" / f"{name}.html").write_text(page, encoding="utf-8")
    return out / "index.html"
