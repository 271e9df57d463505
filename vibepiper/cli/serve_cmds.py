"""The automation commands (SPEC §8): `serve`, `schedules` and `ticks`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from vibepiper.cli.common import emit_json, json_option, limit_option
from vibepiper.errors import UsageError

if TYPE_CHECKING:
    from vibepiper.cli.main import Options


@click.command()
@click.option("--once", is_flag=True, help="Evaluate one round, run what is due, and exit.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Where the web UI listens (another address than loopback is warned about).",
)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--no-ui", is_flag=True, help="Serve no web UI.")
@click.option("--read-only", is_flag=True, help="The UI refuses to start runs.")
@click.option("--no-schedules", is_flag=True, help="Serve the UI only: run nothing by itself.")
@click.pass_obj
def serve(
    opts: Options,
    once: bool,
    host: str,
    port: int,
    no_ui: bool,
    read_only: bool,
    no_schedules: bool,
) -> None:
    """Keep the project's assets fresh by themselves, and serve the web UI
    (http://127.0.0.1:8765/): run schedules ([tool.vibepiper.schedules.NAME] or
    schedule(...)), watched source files (source_file(..., watch=True)), eager and
    missing assets (@asset(automation=...)) and max_age.

    Runs are launched one at a time, as `vibepiper materialize` runs; each due tick is
    recorded in the catalog before its run starts, so it runs exactly once, even across
    a crash and a restart. One serve per project. Ctrl-C or SIGTERM cancels the run in
    progress and exits 130. With --once (no UI): exit 1 if a run it launched did not
    succeed.

    For tests, VIBEPIPER_CLOCK sets a fake clock: START[*RATE][@EPOCH], e.g.
    2026-03-29T00:30:00+01:00*60 (60 fake seconds per real second).
    """
    from vibepiper import clock
    from vibepiper.automation.daemon import Daemon, serve_lock

    clock.fake()  # a bad VIBEPIPER_CLOCK is refused before anything starts
    clock.pin()
    if once and no_schedules:
        raise UsageError("--once and --no-schedules together do nothing", "drop one of them")
    project = opts.load()
    folder = str(project.root)
    args = ["--project", str(project.root), "--home", str(project.home)]
    for module in opts.modules:
        args += ["--module", module]

    def say(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    with serve_lock(project.home):
        daemon = Daemon(
            lambda: _reload(opts, folder), once=once, say=say, cli_args=args, first=project
        )
        with daemon.signals_handled():  # before the UI says where it is: a stop is heard
            ui = None
            if not (once or no_ui):
                ui = _start_ui(opts, folder, project, host, port, read_only, args, say)
            try:
                code = daemon.wait() if no_schedules else daemon.serve()
            finally:
                if ui is not None:
                    ui.stop()
    if code:
        if code == 130:
            click.echo("interrupted", err=True)
        sys.exit(code)


def _start_ui(
    opts: Options,
    folder: str,
    project: Any,
    host: str,
    port: int,
    read_only: bool,
    args: list[str],
    say: Any,
) -> Any:
    """Start the web UI in a thread (a warning, and no UI, if its libraries are missing)."""
    from vibepiper.ui import server

    if not server.available():
        click.echo(f"warning: {server.MISSING}; serving without it", err=True)
        return None
    if not server.loopback(host):
        click.echo(
            f"warning: the UI listens on {host}, reachable from other machines; it has no "
            "login (use --read-only, or a proxy that authenticates)",
            err=True,
        )
    from vibepiper.ui.app import build_app

    current = server.Current(lambda: _reload(opts, folder), _reload(opts, folder))
    judging = server.Current(lambda: _reload(opts, folder), _reload(opts, folder))
    launcher = None if read_only else server.Launcher(project.root, args)
    hosts = ("127.0.0.1", "localhost", host) if server.loopback(host) else ("*",)
    app = build_app(
        current,
        judging=judging,
        schedules=lambda: _schedule_rows(current(), 3),
        launch=launcher,
        read_only=read_only,
        hosts=hosts,
    )
    ui = server.Server(app, host, port, launcher)
    ui.start()
    say(f"UI: http://{host}:{ui.server.servers[0].sockets[0].getsockname()[1]}/")
    return ui


def _reload(opts: Options, folder: str) -> Any:
    from vibepiper.project import Project

    return Project(folder, modules=opts.modules or None, home=opts.home)


@click.command()
@json_option
@click.option("--count", default=3, show_default=True, type=click.IntRange(1, 100))
@click.pass_obj
def schedules(opts: Options, as_json: bool, count: int) -> None:
    """Each schedule: its cron, time zone, selection, catch-up policy, next fire times
    (in its time zone) and its latest tick."""
    project = opts.load()
    rows = _schedule_rows(project, count)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no schedules: add [tool.vibepiper.schedules.NAME] to pyproject.toml", err=True)
    for row in rows:
        selection = row["select"] or "everything"
        if row["exclude"]:
            selection += f" --exclude {row['exclude']}"
        click.echo(
            f"{row['name']}: {row['cron']} ({row['timezone']}), {selection}, "
            f"catchup {row['catchup']}"
        )
        click.echo(f"  next: {', '.join(row['next'])}")
        last = row["last_tick"]
        if last is not None:
            click.echo(
                f"  last tick: {str(last['scheduled_for'])[:16]} UTC, {last['status']}"
                + (f" (run {last['run_id']})" if last["run_id"] else "")
            )


def _schedule_rows(project: Any, count: int) -> list[dict[str, Any]]:
    """Each schedule, with its next `count` fire times and its latest tick."""
    from vibepiper import clock
    from vibepiper.catalog import ticks

    found = project.schedules()
    latest = ticks.latest(project.catalog) if project.catalog.path.is_file() else {}
    now = clock.now()
    rows: list[dict[str, Any]] = []
    for s in found:
        zone = s.zone()
        last = latest.get(s.name)
        rows.append(
            {
                "name": s.name,
                "cron": s.cron,
                "timezone": s.timezone,
                "select": " ".join(s.select),
                "exclude": " ".join(s.exclude),
                "catchup": s.catchup,
                "max_catchup": s.max_catchup,
                "next": [t.astimezone(zone).isoformat() for t in s.next(now, count)],
                "last_tick": None
                if last is None
                else {
                    "scheduled_for": last["scheduled_for"],
                    "status": last["status"],
                    "run_id": last["run_id"],
                },
            }
        )
    return rows


@click.command()
@limit_option("ticks")
@click.option("--schedule", metavar="NAME", help="Only this schedule's (or trigger's) ticks.")
@json_option
@click.pass_obj
def ticks(opts: Options, limit: int, schedule: str | None, as_json: bool) -> None:
    """What `vibepiper serve` evaluated lately, newest first: each due schedule tick and
    each sensor, automation and freshness trigger, with what it launched."""
    from vibepiper.catalog.ticks import recent

    project = opts.load()
    rows = recent(project.catalog, limit, schedule) if project.catalog.path.is_file() else []
    if as_json:
        emit_json(rows)
        return
    from vibepiper.reporting.console import print_table

    shown = [
        {
            **r,
            "scheduled_for": str(r["scheduled_for"])[:19],
            "evaluated_at": str(r["evaluated_at"])[:19],
            "run_id": r["run_id"] or "",
            "reason": r["reason"] or "",
        }
        for r in rows
    ]
    columns = ["schedule", "scheduled_for", "evaluated_at", "status", "run_id", "reason"]
    print_table(shown, columns)
    if not rows:
        click.echo("no ticks yet: `vibepiper serve` records them", err=True)
