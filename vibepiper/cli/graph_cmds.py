"""The commands that describe the project: `init`, `list`, `status`, `explain`, `lineage`
and `docs`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from vibepiper.cli.common import emit_json, json_option, overrides, select_argument, set_option
from vibepiper.errors import UsageError

if TYPE_CHECKING:
    from vibepiper.cli.main import Options


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
    folder = opts.folder()
    rows = opts.listing(folder) if not select else None  # every asset: the snapshot may do
    if rows is None:
        project = opts.load(folder)
        rows = project.list_rows(project.select(select))
    if as_json:
        emit_json(rows)
        return
    from vibepiper.reporting.console import print_table

    columns = ["name", "deps", "group", "tags", "checks"]
    if any(r.get("partitions") for r in rows):
        columns.append("partitions")
    print_table(rows, columns)


@click.command()
@select_argument
@json_option
@set_option
@click.pass_obj
def status(
    opts: Options, select: tuple[str, ...], as_json: bool, settings: tuple[str, ...]
) -> None:
    """Show whether each asset is fresh or stale, and why it is stale (for a run with the
    --set values given, if any)."""
    config = overrides(settings)
    verdicts = opts.load().status(select, config=config)
    rows = [
        {"name": name, "fresh": v.fresh, "reasons": list(v.reasons)} for name, v in verdicts.items()
    ]
    if as_json:
        emit_json(rows)
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
@click.option(
    "--columns",
    is_flag=True,
    help="Column lineage instead: which upstream columns each column of ASSET (a SQL "
    "asset) comes from, traced up through SQL assets (text or json).",
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
    columns: bool,
) -> None:
    """The asset graph around ASSET (by default both ways), with each asset's last state
    and freshness; or, with --version, the data lineage of one version of ASSET; or,
    with --columns, the column lineage of a SQL asset."""
    project = opts.load()
    if columns:
        if version is not None or downstream or fmt in ("dot", "mermaid"):
            raise UsageError(
                "--columns goes with --format text or json, and not with --version or --downstream",
                "e.g. vibepiper lineage daily_revenue --columns --format json",
            )
        from vibepiper.reporting.lineage import render_columns

        click.echo(render_columns(asset, project.column_lineage(asset, depth), fmt))
        return
    if version is not None:
        from vibepiper.reporting.lineage import render_made

        made = project.data_lineage(asset, version)
        if fmt == "json":
            emit_json(made.as_dict())
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
    assets = site_assets(project.graph, project.catalog, project.status())
    index = write_site(folder, project.root.name, project.graph, assets)
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
@set_option
@click.pass_obj
def explain(opts: Options, asset: str, as_json: bool, settings: tuple[str, ...]) -> None:
    """Why ASSET is stale or fresh (for a run with the --set values given, if any), traced
    up the graph to the root causes, and why it was recomputed, skipped, blocked or failed
    in its last run."""
    from vibepiper.reporting.explain import render

    config = overrides(settings)
    cause, run = opts.load().explain(asset, config=config)
    if as_json:
        emit_json({**cause.as_dict(), "last_run": run})
        return
    for line in render(cause, run):
        click.echo(line)
