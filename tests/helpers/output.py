"""What the CLI prints when it refuses: one line on stderr, `error: ...`, no traceback."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from click.testing import Result


def error_line(stderr: str) -> str:
    """The one line of a CLI error: no traceback, a single non-empty line, `error: `."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {stderr!r}"
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Assert exit code 2 (SPEC §4: a usage or definition error) with a single `error: ...`
    line on stderr naming `words`."""
    assert result.returncode == 2, result.stdout + result.stderr
    line = error_line(result.stderr)
    for word in words:
        assert word in line, (word, line)
    return line


def ok_json(proc: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a command printed, after checking it exited 0 without a traceback."""
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}: {proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def summary_line(stdout: str, name: str) -> str:
    """The line of `materialize`'s summary that says how `name` failed."""
    found = [line for line in stdout.splitlines() if line.startswith(f"  {name} failed: ")]
    assert len(found) == 1, stdout
    return found[0]


def check_cli_result(result: Result) -> None:
    """A CliRunner result ended as a command should: a documented exit code (SPEC §4), no
    traceback, and something on stderr when it failed."""
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code:
        assert result.stderr.strip(), result.output
