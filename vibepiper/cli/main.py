"""The `vibepiper` command. Its start-up imports only click: every command imports what
it needs (pandas, DuckDB, rich...) when it runs, so `vibepiper --help` stays instant."""

from __future__ import annotations

import functools
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from vibepiper import engine
from vibepiper.errors import EXIT_CANCELLED, ProjectLoadError, VibePiperError


@dataclass
class Options:
    """The global options, handed to every command."""

    project: str | None  # None: the nearest folder up from here with [tool.vibepiper]
    modules: tuple[str, ...]
    home: str | None

    def load(self, folder: str | None = None) -> Any:
        """The project (in `folder`: what `folder()` gave, if called already)."""
        from vibepiper.project import Project

        folder = self.folder() if folder is None else folder
        return Project(folder, modules=self.modules or None, home=self.home)

    def listing(self, folder: str) -> list[dict[str, Any]] | None:
        """Every asset's `list` row from the project's snapshot, if it stands whole."""
        from vibepiper.project import snapshot_listing

        return snapshot_listing(folder, modules=self.modules or None, home=self.home)

    def folder(self) -> str:
        """--project, else the project this folder is in: the nearest pyproject.toml with
        a [tool.vibepiper] table, here or above (as git and dbt find theirs). Which file
        was used is said on stderr when it is not the current folder's."""
        if self.project is not None:
            return self.project
        here = Path.cwd()
        found = find_project(here)
        if found is None and not self.modules and not (here / "pyproject.toml").exists():
            raise ProjectLoadError(
                f"no VibePiper project here: no pyproject.toml with [tool.vibepiper] in {here} "
                "or a folder above it",
                "cd into a project, pass --project DIR, or create one with `vibepiper init DIR`",
            )
        if found is None or found == here:
            return "."
        click.echo(f"using the project in {found / 'pyproject.toml'}", err=True)
        return str(found)


def find_project(start: Path) -> Path | None:
    """The nearest folder from `start` up whose pyproject.toml has [tool.vibepiper]."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _declares_project(candidate):
            return folder
    return None


def _declares_project(pyproject: Path) -> bool:
    try:
        with pyproject.open("rb") as file:
            table = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError):
        return True  # stop here: loading it will say what is wrong with it
    tool = table.get("tool")
    return isinstance(tool, dict) and "vibepiper" in tool


# The options of `vibepiper` itself, which may also be written after the command
# (`vibepiper status --project ..`), and whether each takes a value.
GLOBAL_OPTIONS = {"--project": True, "--home": True, "--module": True, "-m": True}


def hoist_global_options(args: list[str], commands: set[str]) -> list[str]:
    """`args` with the global options written after the command moved before it."""
    at = _command_at(args, commands)
    if at is None:
        return args
    before, after, rest = args[: at + 1], [], args[at + 1 :]
    hoisted: list[str] = []
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "--":
            after.extend(rest[i:])
            break
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg
        if name in GLOBAL_OPTIONS and ("=" in arg or i + 1 < len(rest)):
            taken = 1 if "=" in arg else 2
            hoisted.extend(rest[i : i + taken])
            i += taken
            continue
        after.append(arg)
        i += 1
    return [*hoisted, *before, *after]


def _command_at(args: list[str], commands: set[str]) -> int | None:
    """Where the command's name is in `args` (after the global options), if anywhere."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in GLOBAL_OPTIONS:
            i += 2
        elif arg.startswith("-"):
            i += 1
        else:
            return i if arg in commands else None
    return None


class Group(click.Group):
    """Turns our errors into one line on stderr and the exit code they carry."""

    def invoke(self, ctx: click.Context) -> Any:
        with engine.noticing_interrupts():
            try:
                return super().invoke(ctx)
            except VibePiperError as exc:
                click.echo(f"error: {exc}", err=True)
                ctx.exit(exc.exit_code)
            except KeyboardInterrupt:
                click.echo("interrupted", err=True)
                ctx.exit(EXIT_CANCELLED)
            except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
                raise
            except Exception:
                if not engine.interrupted():  # else DuckDB's form of a Ctrl-C
                    raise
                click.echo("interrupted", err=True)
                ctx.exit(EXIT_CANCELLED)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """As click's, but its usage errors are one line too: `error: ...; see --help`."""
        base: Any = super()  # click types main() with overloads on standalone_mode
        if not standalone_mode:
            return base.main(*args, standalone_mode=False, **kwargs)
        try:
            code = base.main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:  # bare `vibepiper`: its help
            click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
            sys.exit(0)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "vibepiper"
            message = " ".join(exc.format_message().split()).rstrip(".")
            click.echo(f"error: {message}; see `{where} --help`", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt):  # Ctrl-C outside click's own try
            click.echo("interrupted", err=True)
            sys.exit(EXIT_CANCELLED)
        sys.exit(code if isinstance(code, int) else 0)  # ctx.exit(n) comes back as n

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args, set(self.commands)))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they were added, not alphabetical

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """As click's, but dbt's and Prefect's words for a run point to `materialize`."""
        if args and args[0] in DBT_HABITS and args[0] not in self.commands:
            raise click.UsageError(
                f"there is no command '{args[0]}': to compute assets, use `vibepiper "
                f"materialize` ({DBT_HABITS[args[0]]})",
                ctx,
            )
        return super().resolve_command(ctx, args)


# What users of dbt and Prefect type to run a pipeline, and what ours does instead.
DBT_HABITS = {
    "run": "it computes the stale assets, like dbt run",
    "build": "it computes and checks the stale assets, like dbt build",
}


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    "project",
    default=None,
    metavar="DIR",
    help=(
        "The project folder (with pyproject.toml; default: the nearest folder, here or "
        "above, whose pyproject.toml has [tool.vibepiper]). Global options may also be "
        "written after the command."
    ),
)
@click.option(
    "--module",
    "-m",
    "modules",
    multiple=True,
    metavar="MODULE",
    help="An asset module to load (repeatable); default: [tool.vibepiper] modules.",
)
@click.option(
    "--home",
    envvar="VIBEPIPER_HOME",
    metavar="DIR",
    show_envvar=True,
    help=(
        "Where the store and catalog live, relative to the current folder like --project "
        "(default: [tool.vibepiper] home, relative to the project, else DIR/.vibepiper)."
    ),
)
@click.version_option(package_name="vibepiper", prog_name="vibepiper")
@click.pass_context
def cli(
    ctx: click.Context, project: str | None, modules: tuple[str, ...], home: str | None
) -> None:
    """VibePiper: data assets with data quality built in.

    Write functions decorated with @asset; VibePiper computes the stale ones in dependency
    order, stores each result as Parquet, and records runs, versions and lineage in a
    DuckDB catalog you can query.

    Selection (SELECT) works as in dbt: `orders`, `stg_*`, `tag:core`, `group:marts`,
    `+orders` (with its ancestors), `orders+` (with its descendants), `@orders`; terms
    separated by spaces are a union, joined by commas an intersection.
    """
    ctx.obj = Options(project, modules, home)


def _add_commands() -> None:
    from vibepiper.cli import commands

    for command in commands.COMMANDS:
        _accept_select_option(command)
        cli.add_command(command)


def _accept_select_option(command: click.Command) -> None:
    """Commands that take a selection also take it as dbt writes it: `--select/-s`."""
    if not any(isinstance(p, click.Argument) and p.name == "select" for p in command.params):
        return
    command.params.insert(
        1 + next(i for i, p in enumerate(command.params) if p.name == "select"),
        click.Option(
            ["--select", "-s", "select_option"],
            multiple=True,
            metavar="SELECT",
            help="The selection, written as in dbt (the same as SELECT; repeatable).",
        ),
    )
    callback = command.callback
    assert callback is not None

    @functools.wraps(callback)
    def merged(*args: Any, select: tuple[str, ...] = (), **kwargs: Any) -> Any:
        written = kwargs.pop("select_option", ())
        return callback(*args, select=(*select, *written), **kwargs)

    command.callback = merged


_add_commands()


def main() -> None:
    cli(prog_name="vibepiper")


if __name__ == "__main__":  # pragma: no cover
    main()
