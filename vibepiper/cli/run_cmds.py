"""The commands that compute or judge the data: `materialize`, `check` and `doctor`."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from vibepiper.cli.common import (
    emit_json,
    exclude_option,
    json_option,
    overrides,
    select_argument,
    set_option,
)
from vibepiper.errors import EXIT_CANCELLED, EXIT_FAILED
from vibepiper.execution import EXECUTORS

if TYPE_CHECKING:
    from vibepiper.cli.main import Options


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
@click.option(
    "--partition",
    metavar="KEY",
    help="Of the selected partitioned assets, run only this partition (e.g. 2026-03-01).",
)
@click.option(
    "--partitions",
    "span",
    metavar="FROM..TO",
    help="Of the selected partitioned assets, run these partitions (both ends included).",
)
@set_option
@click.option("--trigger", default="manual", hidden=True)  # set by `vibepiper serve`
@click.option("--run-id", hidden=True)  # set by `vibepiper serve`
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Also list the fresh (skipped) assets when nothing else happens.",
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
    partition: str | None,
    span: str | None,
    settings: tuple[str, ...],
    trigger: str,
    run_id: str | None,
    verbose: bool,
) -> None:
    """Compute the selected assets that are stale, validate and publish them.

    Of a partitioned asset, every missing or stale partition up to now is computed,
    unless --partition or --partitions names which (SPEC §7).

    Ctrl-C (or SIGTERM) cancels: no new asset starts, running ones are stopped and recorded
    as failed ("cancelled"), and the exit code is 130; a second Ctrl-C exits at once.
    Nothing half-written is ever published.
    """
    config = overrides(settings)
    _check_launch(trigger, run_id)
    project = opts.load()
    # what both a dry run and a run are given
    chosen: dict[str, Any] = {"exclude": exclude, "force": force, "config": config}
    chosen.update(partition=partition, partitions=span)
    if dry_run:
        _print_plan(project.plan(select, **chosen))
        return
    from vibepiper.execution.recorder import RunNotRecorded
    from vibepiper.reporting.console import ConsoleReporter, install_log_handler, summary

    install_log_handler()
    reporter = ConsoleReporter(verbose=verbose)
    unrecorded: RunNotRecorded | None = None
    try:
        run = project.materialize(
            select,
            **chosen,
            fail_fast=fail_fast,
            reporter=reporter,
            executor=executor,
            workers=workers,
            address=address,
            signals=True,
            trigger=trigger,
            run_id=run_id,
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
    if reporter.held:  # nothing but skipping happened
        from vibepiper.text import units_counted

        fresh = units_counted(r.label for r in reporter.held)
        click.echo(f"nothing to do: {fresh} fresh (-v lists them)")
    _annotate(findings)
    if unrecorded is not None:
        raise unrecorded
    if run.cancelled:
        sys.exit(EXIT_CANCELLED)
    if not run.ok:
        sys.exit(EXIT_FAILED)


def _check_launch(trigger: str, run_id: str | None) -> None:
    """The options `vibepiper serve` launches a run with: a run id as ours are made, and a
    trigger of SPEC §8's forms."""
    from vibepiper.errors import UsageError
    from vibepiper.execution.recorder import RUN_ID

    if run_id is not None and not RUN_ID.match(run_id):
        raise UsageError(f"--run-id {run_id!r} is not a run id", "leave it to vibepiper serve")
    kind = trigger.partition(":")[0]
    if (
        kind not in ("manual", "schedule", "sensor", "automation", "freshness")
        or len(trigger) > 500
    ):
        raise UsageError(f"--trigger {trigger[:80]!r} is not a trigger", "leave it to serve")


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
@set_option
@click.pass_obj
def check(
    opts: Options,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    junit_xml: str | None,
    require_fresh: bool,
    settings: tuple[str, ...],
) -> None:
    """Re-validate the current data of the selected assets, without recomputing (for CI).

    Exits 1 if an error-severity check fails (or, with --require-fresh, if an asset is
    stale or was never materialized). Under GitHub Actions (GITHUB_ACTIONS=true), failures
    are also printed as workflow annotations.
    """
    from pathlib import Path

    from vibepiper.reporting import quality

    config = overrides(settings)  # what --require-fresh judges freshness for
    project = opts.load()
    result = project.check(select, exclude=exclude, require_fresh=require_fresh, config=config)
    findings = quality.from_audit(result)
    for line in quality.report_lines(findings):
        click.echo(line)
    outcomes = [o for a in result.audits for o in a.outcomes]
    failed = sum(1 for o in outcomes if o.blocking)
    warned = sum(1 for o in outcomes if not o.passed and not o.blocking)
    problems = sum(1 for a in result.audits if a.problem_fails)
    from vibepiper.text import plural, units_counted

    click.echo(
        f"checked {units_counted(a.asset for a in result.audits)}: "
        f"{plural(len(outcomes), 'check')}, "
        f"{failed} failed, {plural(warned, 'warning')}"
        + (f", {problems} not fresh or unreadable" if problems else "")
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
        emit_json(
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


@click.group(name="store")
def store() -> None:
    """Look after the store (local folder or S3 bucket, [tool.vibepiper.store])."""


@store.command(name="gc")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed; remove nothing.")
@click.option(
    "--grace",
    default="1h",
    show_default=True,
    metavar="AGE",
    help="Spare what is younger than this (30s, 15m, 1h, 7d; 0: nothing is spared): a run "
    "going on now publishes data a moment before it records it.",
)
@json_option
@click.pass_obj
def store_gc(opts: Options, dry_run: bool, grace: str, as_json: bool) -> None:
    """Remove stored data that no materialization refers to (and what a run kept aside
    under an id the catalog does not know, and unfinished uploads), once older than
    --grace. Data the catalog refers to, in its whole history, is never removed."""
    from vibepiper.execution.store_gc import grace_seconds

    seconds = grace_seconds(grace)
    project = opts.load()
    done = project.store_gc(grace=seconds, dry_run=dry_run)
    if as_json:
        emit_json(
            {
                "store": project.store.describe(),
                "dry_run": dry_run,
                "removed" if not dry_run else "would_remove": [g.as_dict() for g in done.found],
                "spared_young": done.kept_young,
                "note": done.note,
            }
        )
        return
    verb = "would remove" if dry_run else "removed"
    for g in done.found:
        click.echo(f"{verb:<12} {g.kind:<10} {g.location}")
    if done.note:
        click.echo(f"note: {done.note}", err=True)
    young = f"; {_entries(done.kept_young)} younger than {grace} spared" if done.kept_young else ""
    click.echo(f"{project.store.describe()}: {verb} {_entries(len(done.found))}{young}", err=True)


def _entries(count: int) -> str:
    return f"{count} {'entry' if count == 1 else 'entries'}"
