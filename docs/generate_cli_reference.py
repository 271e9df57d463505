"""Regenerate docs/cli.md from the real `--help` of every command.

    python docs/generate_cli_reference.py          # rewrite docs/cli.md
    python docs/generate_cli_reference.py --check  # exit 1 if docs/cli.md is out of date

A test runs the check, so the reference cannot drift from the CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.testing import CliRunner

from vibepiper.cli.main import cli

TARGET = Path(__file__).with_name("cli.md")

INTRO = """\
# CLI reference

Generated from the commands' own `--help` by `docs/generate_cli_reference.py`; a test
fails when this page and the CLI disagree. For a guided tour, see getting-started.md.

Exit codes, for every command: `0` success (everything selected succeeded or was fresh);
`1` something failed, failed its checks or was blocked, or the catalog could not be used
(for example it stayed locked by another process for longer than `VIBEPIPER_LOCK_TIMEOUT`
seconds, default 60), or a `query` ran past its `--timeout`; `2` a usage or definition error: unknown asset or option, bad
selector, dependency cycle, an asset module that does not import, an asset defined
twice in a module, a `schema=` that is not a pandera schema, a SQL error in `query`; `130` a `materialize` cancelled by Ctrl-C or SIGTERM, or a `query` stopped by Ctrl-C. Errors are one line on
stderr, starting with `error:`, naming the culprit and the fix.

Environment: `VIBEPIPER_HOME` (where the store and catalog live, like `--home`),
`VIBEPIPER_LOCK_TIMEOUT` (seconds to wait for the catalog lock).
"""


def help_text(*path: str) -> str:
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="vibepiper", terminal_width=100)
    return result.output.rstrip() + "\n"


def render() -> str:
    parts = [INTRO, "## vibepiper\n", "```text\n" + help_text() + "```\n"]
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        parts.append(f"## vibepiper {name}\n")
        parts.append("```text\n" + help_text(name) + "```\n")
    return "\n".join(parts)


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not TARGET.is_file() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
