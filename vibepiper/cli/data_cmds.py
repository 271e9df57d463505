"""The commands that read what was made: `show`, `history`, `runs` and `logs`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from vibepiper.cli.common import emit_json, json_option, limit_option

if TYPE_CHECKING:
    from vibepiper.cli.main import Options


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
    from vibepiper.catalog.reads import history_rows

    project = opts.load()
    project.require_asset(asset)
    rows = history_rows(project.catalog, asset, limit)
    if as_json:
        emit_json(rows)
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
    from vibepiper.catalog.reads import run_rows

    rows = run_rows(opts.load().catalog, limit)
    if as_json:
        emit_json(rows)
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
    from vibepiper.catalog.reads import log_rows

    project = opts.load()
    if asset is not None:
        project.require_asset(asset)
    full, rows = log_rows(project.catalog, run_id, asset)
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        stamp = str(r["logged_at"])[11:23]
        click.echo(f"{stamp} {r['level']:<7} {r['asset']} | {r['message']}")
    if not rows:
        click.echo(
            f"run {full} logged nothing" + (f" for asset '{asset}'" if asset else ""), err=True
        )
