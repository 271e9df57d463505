"""The commands that read what was made: `show`, `history`, `runs` and `logs`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from vibepiper.cli.common import emit_json, frame_records, json_default, json_option, limit_option
from vibepiper.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from vibepiper.cli.main import Options
    from vibepiper.project import Project


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
@click.option(
    "--partition",
    metavar="KEY",
    help="Of a partitioned asset, this partition (default: every partition, in key order).",
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
    partition: str | None,
    as_json: bool,
) -> None:
    """Preview an asset's current data (or an older, rejected or quarantined version)."""
    project = opts.load()
    if partition is not None and (version is not None or rejected or quarantined):
        raise UsageError(
            "--partition cannot be combined with --version, --rejected or --quarantined",
            "a data version names the data of one partition already; drop --partition",
        )
    if version is not None and not (rejected or quarantined):
        frame = _read_version(project, asset, version)
        head, total = frame.head(limit), len(frame)
    elif rejected or quarantined or version is not None:
        frame = project.read(asset, version=version, rejected=rejected, quarantined=quarantined)
        head, total = frame.head(limit), len(frame)
    else:
        head, total = project.head(asset, limit, partition)
    if as_json:
        click.echo(json.dumps(frame_records(head), default=json_default, allow_nan=False))
        return
    from vibepiper.reporting.console import visible_frame

    click.echo(visible_frame(head).to_string(max_cols=30, max_colwidth=40))
    click.echo(f"({len(head)} of {total} rows, {head.shape[1]} columns)", err=True)


def _read_version(project: Project, asset: str, version: str) -> pd.DataFrame:
    """The data at `version` of `asset`: published, or rejected by its checks (the output
    kept for inspection, said so on stderr)."""
    from vibepiper.catalog.reads import find_version
    from vibepiper.units import whole

    project.require_asset(asset)
    made = find_version(project.catalog, asset, version)
    if made["status"] == "succeeded":
        return project.read(asset, version=made["data_version"])
    frame = project.store.read_kept(whole(asset), made["materialization_id"], "rejected")
    checks = ", ".join(made["failed_checks"]) or "its checks"
    click.echo(
        f"data version {made['data_version'][:12]} of asset '{asset}' was rejected by "
        f"{checks} in run {made['run_id']} and never published: this is the output kept "
        "for inspection",
        err=True,
    )
    return frame


@click.command()
@click.argument("asset")
@limit_option("materializations")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Also the runs that computed nothing for ASSET (skipped: it was fresh; blocked: "
    "an upstream failed).",
)
@click.option(
    "--errors",
    is_flag=True,
    help="Only its failed materializations (failed, check_failed), each with its full "
    "error: the traceback.",
)
@click.option("--partition", metavar="KEY", help="Of a partitioned asset, only this partition's.")
@json_option
@click.pass_obj
def history(
    opts: Options,
    asset: str,
    limit: int,
    show_all: bool,
    errors: bool,
    partition: str | None,
    as_json: bool,
) -> None:
    """The materializations of ASSET, newest first: run, time, state, rows, versions,
    inputs, checks (skipped and blocked rows with --all; full errors with --errors)."""
    from vibepiper.catalog.reads import history_rows, status_counts

    project = opts.load()
    project.require_asset(asset)
    parts = project.graph.assets[asset].partitions
    if partition is not None:
        if parts is None:
            raise UsageError(f"asset '{asset}' is not partitioned", "drop --partition")
        parts.check_key(partition, f"asset '{asset}'")
    statuses = FAILED if errors else None if show_all else MADE
    rows = history_rows(project.catalog, asset, limit, statuses, partition)
    if as_json:
        emit_json(rows)
    elif errors:
        _print_errors(rows)
    else:
        _print_history(rows)
    hidden: list[str] = []
    if not (show_all or errors):
        counts = status_counts(project.catalog, asset)
        hidden = [f"{counts[s]} {s}" for s in NO_OPS if counts.get(s)]
    if hidden:
        click.echo(f"not shown: {', '.join(hidden)} (--all shows them)", err=True)
    elif not rows:
        what = "failed materializations" if errors else "materializations yet"
        click.echo(f"asset '{asset}' has no {what}", err=True)


MADE = ("succeeded", "failed", "check_failed")  # the states of an attempt to compute it
FAILED = ("failed", "check_failed")
NO_OPS = ("skipped", "blocked")  # nothing was computed: it was fresh, or an upstream failed


def _print_history(rows: list[dict[str, Any]]) -> None:
    from vibepiper.reporting.console import print_table

    keyed = any(r.get("partition_key") for r in rows)
    shown = [
        {
            "run": r["run_id"],
            **({"partition": r.get("partition_key") or ""} if keyed else {}),
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
    columns = ["run", "finished", "status", "rows", "code", "data", "inputs", "note"]
    print_table(shown, [*columns[:1], "partition", *columns[1:]] if keyed else columns)


def _print_errors(rows: list[dict[str, Any]]) -> None:
    """Each failed materialization: when and how it ended, then its whole error."""
    from vibepiper.reporting.console import visible

    for i, r in enumerate(rows):
        click.echo(
            ("\n" if i else "")
            + f"{r['status']} in run {r['run_id']} at {str(r['finished_at'])[:19]}:"
        )
        for line in visible((r["error"] or "(no error recorded)").rstrip()).splitlines():
            click.echo(f"  {line}")


@click.command()
@limit_option("runs")
@json_option
@click.pass_obj
def runs(opts: Options, limit: int, as_json: bool) -> None:
    """The latest runs, newest first: their kind (materialize, or check: validating
    without computing), status, duration and how their assets ended."""
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
    columns = ["run_id", "kind", "trigger", "status", "started", "seconds", "assets", "succeeded"]
    print_table(shown, [*columns, "skipped", "failed", "blocked", "selection"])
    if not rows:
        click.echo("no runs yet", err=True)


@click.command()
@click.argument("run_id", metavar="RUN_ID")
@click.argument("asset", required=False)
@json_option
@click.pass_obj
def logs(opts: Options, run_id: str, asset: str | None, as_json: bool) -> None:
    """What the assets of a run logged, or only ASSET's lines.

    RUN_ID: an id from `vibepiper runs`, a unique prefix of one, or `latest`: the latest
    materialize run (a check run computes nothing, so it logs nothing)."""
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


@click.command()
@click.argument("asset")
@click.option(
    "--status",
    "wanted",
    type=click.Choice(["missing", "failed", "stale", "fresh"]),
    help="Only the partitions in this state.",
)
@json_option
@click.pass_obj
def partitions(opts: Options, asset: str, wanted: str | None, as_json: bool) -> None:
    """The partitions of ASSET up to now, as ranges of the same state (fresh, stale,
    missing, failed) with the reasons; --json: one object per partition."""
    from vibepiper.execution.partition_status import range_lines

    project = opts.load()
    rows = project.partitions(asset)
    if as_json:
        emit_json([r for r in rows if wanted is None or r["status"] == wanted])
        return
    lines = range_lines(rows, wanted)
    for line in lines:
        click.echo(line)
    if not lines:
        what = f"no {wanted} partitions" if wanted else "no partitions yet"
        click.echo(f"asset '{asset}' has {what}", err=True)
