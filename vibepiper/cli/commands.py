"""The commands: thin wrappers that parse options, call the project, and render results.

Only click and the standard library are imported at module level; anything heavy is
imported inside the command that needs it.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from vibepiper.errors import EXIT_CANCELLED, EXIT_FAILED
from vibepiper.execution import EXECUTORS

if TYPE_CHECKING:
    from vibepiper.cli.main import Options

select_argument = click.argument("select", nargs=-1, metavar="[SELECT]...")
exclude_option = click.option(
    "--exclude", multiple=True, metavar="SELECT", help="Leave these out (applied last)."
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON on stdout (messages go to stderr)."
)


def limit_option(what: str) -> Any:
    return click.option(
        "--limit",
        default=20,
        show_default=True,
        type=click.IntRange(min=1, max=1_000_000),
        help=f"How many {what} to show.",
    )


def _emit_json(value: Any) -> None:
    click.echo(json.dumps(value, default=_json_default, indent=2))


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
def init(directory: str) -> None:
    """Create a new project in DIRECTORY: pyproject.toml, an assets module, sample data."""
    from vibepiper.cli.scaffold import create_project

    for line in create_project(directory):
        click.echo(line)


@click.command(name="list")
@select_argument
@json_option
@click.pass_obj
def list_(opts: Options, select: tuple[str, ...], as_json: bool) -> None:
    """List assets with their dependencies, tags, group, schema and checks."""
    project = opts.load()
    rows = project.list_rows(project.select(select))
    if as_json:
        _emit_json(rows)
        return
    from vibepiper.reporting.console import print_table

    print_table(rows, ["name", "deps", "group", "tags", "checks"])


@click.command()
@select_argument
@json_option
@click.pass_obj
def status(opts: Options, select: tuple[str, ...], as_json: bool) -> None:
    """Show whether each asset is fresh or stale, and why it is stale."""
    project = opts.load()
    verdicts = project.status(select)
    rows = [
        {"name": name, "fresh": v.fresh, "reasons": list(v.reasons)} for name, v in verdicts.items()
    ]
    if as_json:
        _emit_json(rows)
        return
    from vibepiper.reporting.console import print_table

    print_table(
        [
            {
                "asset": r["name"],
                "status": "fresh" if r["fresh"] else "stale",
                "why": "; ".join(r["reasons"]),
            }
            for r in rows
        ],
        ["asset", "status", "why"],
    )
    stale = sum(1 for r in rows if not r["fresh"])
    click.echo(f"{len(rows) - stale} fresh, {stale} stale", err=True)


@click.command()
@click.argument("asset")
@click.option("--upstream", is_flag=True, help="Only what ASSET is made from.")
@click.option("--downstream", is_flag=True, help="Only what is made from ASSET.")
@click.option(
    "--depth",
    type=click.IntRange(min=1, max=1_000_000),
    metavar="N",
    help="At most N levels away (default: all).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "dot", "mermaid"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--version",
    "version",
    metavar="DATA_VERSION",
    help="Data lineage instead: the exact input versions, recursively, behind this "
    "data version (or unique prefix, or materialization id) of ASSET.",
)
@click.pass_obj
def lineage(
    opts: Options,
    asset: str,
    upstream: bool,
    downstream: bool,
    depth: int | None,
    fmt: str,
    version: str | None,
) -> None:
    """The asset graph around ASSET (by default both ways), with each asset's last state
    and freshness; or, with --version, the data lineage of one version of ASSET."""
    project = opts.load()
    if version is not None:
        from vibepiper.reporting.lineage import render_made

        made = project.data_lineage(asset, version)
        if fmt == "json":
            _emit_json(made.as_dict())
        else:
            for line in render_made(made):
                click.echo(line)
        return
    from vibepiper.reporting.lineage import render

    both = not upstream and not downstream
    hood = project.neighbourhood(
        asset, upstream=upstream or both, downstream=downstream or both, depth=depth
    )
    click.echo(render(hood, fmt))


@click.command()
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Where to write the site (default: the project home's site folder, DIR/.vibepiper/site).",
)
@click.option("--serve", is_flag=True, help="Then serve it on http://127.0.0.1:PORT/.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.pass_obj
def docs(opts: Options, out: str | None, serve: bool, port: int) -> None:
    """Write a self-contained static site of the project (works offline): the lineage graph
    coloured by state and freshness, and each asset's description, schema, checks and their
    last results, and recent materializations."""
    from pathlib import Path

    from vibepiper.reporting.site import site_assets, write_site

    project = opts.load()
    project.load_code()
    folder = project.home / "site" if out is None else Path(out)
    index = write_site(folder, project.root.name, project.graph, site_assets(project))
    click.echo(f"wrote {index} ({len(project.graph.assets)} assets)")
    if serve:
        import functools
        import http.server

        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=folder)
        with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
            click.echo(f"serving on http://127.0.0.1:{port}/ (Ctrl-C to stop)", err=True)
            server.serve_forever()


@click.command()
@click.argument("asset")
@json_option
@click.pass_obj
def explain(opts: Options, asset: str, as_json: bool) -> None:
    """Why ASSET is stale or fresh, traced up the graph to the root causes, and why it was
    recomputed, skipped, blocked or failed in its last run."""
    from vibepiper.reporting.explain import render

    cause, run = opts.load().explain(asset)
    if as_json:
        _emit_json({**cause.as_dict(), "last_run": run})
        return
    for line in render(cause, run):
        click.echo(line)


@click.command()
@select_argument
@exclude_option
@click.option("--force", is_flag=True, help="Recompute selected assets even if fresh.")
@click.option("--dry-run", is_flag=True, help="Print what would run, and why; run nothing.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first failure (the rest is blocked).")
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    help="Where assets compute: inprocess (default: one at a time), threads, processes, "
    "or dask (vibepiper[dask]).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=1_000_000),
    metavar="N",
    help="How many assets compute at once (default: the number of CPUs); alone, it "
    "means --executor threads.",
)
@click.option(
    "--address",
    metavar="tcp://HOST:PORT",
    help="The Dask scheduler to use (default: a local cluster for the run).",
)
@click.pass_obj
def materialize(
    opts: Options,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    force: bool,
    dry_run: bool,
    fail_fast: bool,
    executor: str | None,
    workers: int | None,
    address: str | None,
) -> None:
    """Compute the selected assets that are stale, validate and publish them.

    Ctrl-C (or SIGTERM) cancels: no new asset starts, running ones are stopped and recorded
    as failed ("cancelled"), and the exit code is 130; a second Ctrl-C exits at once.
    Nothing half-written is ever published.
    """
    project = opts.load()
    if dry_run:
        _print_plan(project.plan(select, exclude=exclude, force=force))
        return
    from vibepiper.execution.recorder import RunNotRecorded
    from vibepiper.reporting.console import ConsoleReporter, install_log_handler, summary

    install_log_handler()
    reporter = ConsoleReporter()
    unrecorded: RunNotRecorded | None = None
    try:
        run = project.materialize(
            select,
            exclude=exclude,
            force=force,
            fail_fast=fail_fast,
            reporter=reporter,
            executor=executor,
            workers=workers,
            address=address,
            signals=True,
        )
    except RunNotRecorded as exc:  # its summary, then its one line (error: ...), exit 1
        if exc.run is None:
            raise
        run, unrecorded = exc.run, exc
    finally:
        reporter.close()
    from vibepiper.reporting import quality

    findings = quality.from_run(run, project.graph)
    missing = None if unrecorded is None else unrecorded.unrecorded
    for line in [*quality.report_lines(findings), *summary(run, missing)]:
        click.echo(line)
    _annotate(findings)
    if unrecorded is not None:
        raise unrecorded
    if run.cancelled:
        sys.exit(EXIT_CANCELLED)
    if not run.ok:
        sys.exit(EXIT_FAILED)


def _annotate(findings: Any) -> None:
    if os.environ.get("GITHUB_ACTIONS") == "true":
        from vibepiper.reporting.quality import github_annotations

        for line in github_annotations(findings):
            click.echo(line)


@click.command()
@select_argument
@exclude_option
@click.option(
    "--junit-xml",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write the results as JUnit XML (one testcase per check).",
)
@click.option(
    "--require-fresh",
    is_flag=True,
    help="Also fail when a selected asset is stale or was never materialized.",
)
@click.pass_obj
def check(
    opts: Options,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    junit_xml: str | None,
    require_fresh: bool,
) -> None:
    """Re-validate the current data of the selected assets, without recomputing (for CI).

    Exits 1 if an error-severity check fails (or, with --require-fresh, if an asset is
    stale or was never materialized). Under GitHub Actions (GITHUB_ACTIONS=true), failures
    are also printed as workflow annotations.
    """
    from pathlib import Path

    from vibepiper.reporting import quality

    project = opts.load()
    result = project.check(select, exclude=exclude, require_fresh=require_fresh)
    findings = quality.from_audit(result)
    for line in quality.report_lines(findings):
        click.echo(line)
    outcomes = [o for a in result.audits for o in a.outcomes]
    failed = sum(1 for o in outcomes if o.blocking)
    warned = sum(1 for o in outcomes if not o.passed and not o.blocking)
    problems = sum(1 for a in result.audits if a.problem_fails)
    click.echo(
        f"checked {len(result.audits)} assets: {len(outcomes)} checks, {failed} failed, "
        f"{warned} warnings" + (f", {problems} not fresh or unreadable" if problems else "")
    )
    if junit_xml:
        quality.write_junit(Path(junit_xml), findings)
    _annotate(findings)
    if not result.ok:
        sys.exit(EXIT_FAILED)


def _print_plan(verdicts: dict[str, Any]) -> None:
    width = max((len(n) for n in verdicts), default=0)
    # "check": only what its checks read changes; its data is validated again, not recomputed
    actions = {
        name: "skip" if v.fresh else "check" if v.recheck else "run" for name, v in verdicts.items()
    }
    pad = max((len(a) for a in actions.values()), default=4)
    for name, verdict in verdicts.items():
        why = "fresh" if verdict.fresh else "; ".join(verdict.reasons)
        click.echo(f"{actions[name]:<{pad}} {name:<{width}}  {why}")
    runs = sum(1 for v in verdicts.values() if not v.fresh)
    click.echo(f"dry run: {runs} to run, {len(verdicts) - runs} fresh", err=True)


@click.command()
@click.argument("asset")
@click.option(
    "--limit",
    default=10,
    show_default=True,
    type=click.IntRange(min=0, max=1_000_000),
    help="How many rows to show.",
)
@click.option(
    "--version",
    "version",
    metavar="DATA_VERSION",
    help="An older data version (or a unique prefix of one).",
)
@click.option(
    "--rejected", is_flag=True, help="The latest output that failed its checks (never published)."
)
@click.option(
    "--quarantined",
    is_flag=True,
    help="The rows quarantine removed from the current data, with the reasons.",
)
@json_option
@click.pass_obj
def show(
    opts: Options,
    asset: str,
    limit: int,
    version: str | None,
    rejected: bool,
    quarantined: bool,
    as_json: bool,
) -> None:
    """Preview an asset's current data (or an older, rejected or quarantined version)."""
    project = opts.load()
    frame = project.read(asset, version=version, rejected=rejected, quarantined=quarantined)
    head = frame.head(limit)
    if as_json:
        click.echo(head.to_json(orient="records", date_format="iso"))
        return
    from vibepiper.reporting.console import visible_frame

    click.echo(visible_frame(head).to_string(max_cols=30, max_colwidth=40))
    click.echo(f"({len(head)} of {len(frame)} rows, {frame.shape[1]} columns)", err=True)


@click.command()
@click.argument("asset")
@limit_option("materializations")
@json_option
@click.pass_obj
def history(opts: Options, asset: str, limit: int, as_json: bool) -> None:
    """Every materialization of ASSET: run, time, state, rows, versions, inputs, checks."""
    from vibepiper.reporting.listing import history_rows

    project = opts.load()
    rows = history_rows(project, asset, limit)
    if as_json:
        _emit_json(rows)
        return
    from vibepiper.reporting.console import print_table

    shown = [
        {
            "run": r["run_id"],
            "finished": str(r["finished_at"] or "")[:19],
            "status": r["status"],
            "rows": r["row_count"],
            "code": (r["code_version"] or "")[:8],
            "data": (r["data_version"] or "")[:12],
            "inputs": [f"{i['asset']}@{(i['data_version'] or '')[:8]}" for i in r["inputs"]],
            "note": (r["error"] or "").strip().splitlines()[-1] if r["error"] else "",
        }
        for r in rows
    ]
    print_table(shown, ["run", "finished", "status", "rows", "code", "data", "inputs", "note"])
    if not rows:
        click.echo(f"asset '{asset}' has no materializations yet", err=True)


@click.command()
@limit_option("runs")
@json_option
@click.pass_obj
def runs(opts: Options, limit: int, as_json: bool) -> None:
    """The latest runs, newest first: status, duration and how their assets ended."""
    from vibepiper.reporting.listing import run_rows

    rows = run_rows(opts.load(), limit)
    if as_json:
        _emit_json(rows)
        return
    from vibepiper.reporting.console import print_table

    shown = [
        {
            **r,
            "started": str(r["started_at"])[:19],
            "seconds": "" if r["seconds"] is None else f"{r['seconds']:.2f}",
        }
        for r in rows
    ]
    columns = ["run_id", "kind", "status", "started", "seconds", "assets", "succeeded"]
    print_table(shown, [*columns, "skipped", "failed", "blocked", "selection"])
    if not rows:
        click.echo("no runs yet", err=True)


@click.command()
@click.argument("run_id", metavar="RUN_ID")
@click.argument("asset", required=False)
@json_option
@click.pass_obj
def logs(opts: Options, run_id: str, asset: str | None, as_json: bool) -> None:
    """What the assets of a run logged (RUN_ID: an id from `vibepiper runs`, a unique
    prefix of one, or `latest`), or only ASSET's lines."""
    from vibepiper.reporting.listing import log_rows

    full, rows = log_rows(opts.load(), run_id, asset)
    if as_json:
        _emit_json(rows)
        return
    for r in rows:
        stamp = str(r["logged_at"])[11:23]
        click.echo(f"{stamp} {r['level']:<7} {r['asset']} | {r['message']}")
    if not rows:
        click.echo(
            f"run {full} logged nothing" + (f" for asset '{asset}'" if asset else ""), err=True
        )


@click.command()
@click.option(
    "--repair",
    is_flag=True,
    help="Fix what can be: mark unfinished runs abandoned, move corrupt files aside (their "
    "assets become stale), remove orphan and temporary files. Valid data is never touched.",
)
@click.option("--quick", is_flag=True, help="Read only each file's footer, not all of its data.")
@json_option
@click.pass_obj
def doctor(opts: Options, repair: bool, quick: bool, as_json: bool) -> None:
    """Check the store and the catalog against each other: missing or corrupt files,
    orphan files, temporary files and unfinished runs left by a crash.

    Exits 1 when a problem is left (without --repair, or one it could not fix), else 0.
    """
    exam = opts.load().doctor(repair=repair, verify=not quick)
    if as_json:
        _emit_json(
            {
                "healthy": exam.healthy,
                "files_checked": exam.files_checked,
                "findings": [f.as_dict() for f in exam.findings],
                "note": exam.note,
            }
        )
    else:
        for f in exam.findings:
            where = f" {f.path}" if f.path else ""
            done = f" -> {f.repaired}" if f.repaired else ""
            click.echo(f"{f.kind:<10} {f.detail}{where}{done}")
        if exam.note:
            click.echo(f"note: {exam.note}", err=True)
        from vibepiper.text import plural

        left = [f for f in exam.findings if not f.repaired]
        fixed = len(exam.findings) - len(left)
        verdict = f"{plural(exam.files_checked, 'published file')} checked: "
        if not exam.findings:
            verdict += "no problem found"
        else:
            verdict += plural(len(exam.findings), "problem") + (
                f", {fixed} repaired" if fixed else ""
            )
            if any(f.kind != "missing" for f in left) and not repair:
                verdict += "; run `vibepiper doctor --repair` to fix them"
            elif any(f.kind in ("missing", "corrupt") for f in exam.findings):
                verdict += "; run `vibepiper materialize` to recompute what is missing"
        click.echo(verdict, err=True)
    if not exam.healthy:
        sys.exit(EXIT_FAILED)


TABLE_ROWS = 1000  # what `query` shows as a table unless --limit says otherwise


@click.command()
@click.argument("sql")
@click.option("--json", "fmt", flag_value="json", help="Print an array of objects.")
@click.option("--csv", "fmt", flag_value="csv", help="Print CSV.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    help=f"At most N rows (default: {TABLE_ROWS} for the table, all for --json and --csv, "
    "which stream them).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop the query after this long (exit 1).",
)
@click.pass_obj
def query(
    opts: Options, sql: str, fmt: str | None, limit: int | None, timeout: float | None
) -> None:
    """Run read-only SQL over the catalog and one view per asset (its current data).

    Tables: runs, materializations, lineage, check_results, current_materializations.
    Each asset is a view by its name (always also as assets.NAME); the rows quarantine
    removed from it are quarantine.NAME. Nothing can be written. Ctrl-C stops the query
    (exit 130).
    """
    writer = {"json": _QueryJson, "csv": _QueryCsv}.get(fmt or "", _QueryTable)(limit)
    opts.load().query_stream(sql, writer, timeout=timeout, iso=fmt is not None)
    writer.finish()


class _QueryOutput:
    """Writes the rows of `query` as they come, up to `limit` of them."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.names: list[str] = []
        self.count = 0
        self.more = False  # rows were left out by the limit

    def __call__(self, names: list[str], batches: Any) -> None:
        self.names = names
        self.start()
        for batch in batches:
            if self.limit is not None and self.count + len(batch) > self.limit:
                batch, self.more = batch[: self.limit - self.count], True
            self.count += len(batch)
            self.write(batch)
            if self.more:
                return

    def start(self) -> None: ...

    def write(self, rows: list[tuple[Any, ...]]) -> None: ...

    def finish(self) -> None:
        if self.more:
            click.echo(
                f"(stopped at {self.count} rows: --limit N shows more, "
                "--json and --csv stream them all)",
                err=True,
            )


class _QueryJson(_QueryOutput):
    """An array of objects, one per line, written as the rows come."""

    separator = "[\n"

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        for row in rows:
            item = {n: _json_value(v) for n, v in zip(self.names, row, strict=True)}
            text = json.dumps(item, default=_json_default, allow_nan=False)
            click.echo(self.separator + text, nl=False)
            self.separator = ",\n"

    def finish(self) -> None:
        click.echo("\n]" if self.count else "[]")
        super().finish()


class _QueryCsv(_QueryOutput):
    def start(self) -> None:
        import csv

        self.csv = csv.writer(sys.stdout)
        self.csv.writerow(self.names)

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        self.csv.writerows(
            [
                [
                    _json_default(v)
                    if v is not None and not isinstance(v, str | int | float | bool)
                    else v
                    for v in row
                ]
                for row in rows
            ]
        )


class _QueryTable(_QueryOutput):
    """An aligned table of the first rows (all of them are needed to align it)."""

    def __init__(self, limit: int | None) -> None:
        super().__init__(TABLE_ROWS if limit is None else limit)
        self.rows: list[tuple[Any, ...]] = []

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows.extend(rows)

    def finish(self) -> None:
        from vibepiper.reporting.console import print_table

        print_table([dict(zip(self.names, row, strict=True)) for row in self.rows], self.names)
        if not self.more:
            click.echo(f"({self.count} row{'s' if self.count != 1 else ''})", err=True)
        super().finish()


def _json_value(value: Any) -> Any:
    """`value` with what JSON has no literal for as a string: NaN, Infinity, -Infinity."""
    if isinstance(value, float) and (value != value or value in (_INF, -_INF)):
        return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


_INF = float("inf")


COMMANDS = [
    init,
    list_,
    status,
    explain,
    materialize,
    check,
    lineage,
    show,
    history,
    runs,
    logs,
    query,
    doctor,
    docs,
]
