"""docs/getting-started.md is a tested document: this test follows it as a new user
would, in a fresh folder, and compares what each command prints with what the guide
shows.

The guide's conventions, which this test reads:
- a ```console block holds commands (`$ ...`) each followed by its output (stdout and
  stderr, as a terminal shows them); a line `...` stands for any number of lines;
- run ids, times and durations may differ: they are compared as RUN, TIME and N s;
- `<!-- test: append FILE -->` before a ```python block: the block is added to FILE;
  `<!-- test: in FILE -->`: every line of the block is in FILE (an excerpt of it);
  `<!-- test: run -->`: the block is run with Python and must succeed;
- other blocks (```bash: installing; ```python without a directive) are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .conftest import cli_env

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "getting-started.md"

BLOCK = re.compile(
    r"(?:<!-- test: (?P<directive>[^>]*?) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S
)
VOLATILE = [
    (re.compile(r"\b\d{8}T\d{6}\.\d{3}-[0-9a-f]{6}\b"), "RUN"),
    (re.compile(r"\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?: UTC)?"), "TIME"),
    (re.compile(r"\b\d+\.\d+ s\b"), "N s"),
    (re.compile(r"\b\d\d:\d\d:\d\d(?:\.\d{3}| UTC)\b"), "TIME"),
]


@dataclass
class Step:
    """One thing the guide has the reader do."""

    kind: str  # "command", "append", "in" or "python"
    text: str  # the command, or the code
    expected: list[str] = field(default_factory=list)  # a command's output
    target: str = ""  # the file `append` adds to


def steps(markdown: str) -> list[Step]:
    found: list[Step] = []
    for block in BLOCK.finditer(markdown):
        directive, lang, body = block["directive"] or "", block["lang"], block["body"]
        if lang == "console":
            for line in body.splitlines():
                if line.startswith("$ "):
                    found.append(Step("command", line[2:]))
                elif found and found[-1].kind == "command":
                    found[-1].expected.append(line)
        elif lang == "python" and directive.split(" ")[0] in ("append", "in"):
            kind, target = directive.split(" ", 1)
            found.append(Step(kind, body, target=target))
        elif lang == "python" and directive == "run":
            found.append(Step("python", body))
    return found


def normalized(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        for pattern, placeholder in VOLATILE:
            line = pattern.sub(placeholder, line)
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return out


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether `actual` is `expected`, where a `...` line stands for any lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and actual[0] == expected[0] and matches(expected[1:], actual[1:])


def run(step: Step, cwd: Path, env: dict[str, str]) -> Path:
    """Do one step in `cwd`; return the folder the next step runs in."""
    if step.kind == "append":
        with (cwd / step.target).open("a") as file:
            file.write("\n" + step.text)
        return cwd
    if step.kind == "in":
        have = (cwd / step.target).read_text().splitlines()
        missing = [line for line in step.text.splitlines() if line.strip() and line not in have]
        assert not missing, f"{step.target} has no line {missing[0]!r}"
        return cwd
    if step.kind == "python":
        done = subprocess.run(
            [sys.executable, "-c", step.text], cwd=cwd, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"the guide's Python failed:\n{step.text}\n{done.stderr}"
        return cwd
    if step.text.startswith("cd "):
        return cwd / step.text[3:].strip()
    done = subprocess.run(
        ["bash", "-c", step.text],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    expected, actual = normalized(step.expected), normalized(done.stdout.splitlines())
    assert matches(expected, actual), (
        f"`{step.text}` printed (exit {done.returncode}):\n"
        + "\n".join(actual)
        + "\n\nbut the guide shows:\n"
        + "\n".join(expected)
    )
    return cwd


def test_the_guide_has_steps_to_follow() -> None:
    found = steps(GUIDE.read_text())
    commands = [s.text for s in found if s.kind == "command"]
    assert "vibepiper init cities" in commands and "vibepiper materialize" in commands
    kinds = {s.kind for s in found}
    assert {"append", "in", "python"} <= kinds


@pytest.mark.timeout(900)
def test_following_the_guide_gives_what_it_shows(tmp_path: Path) -> None:
    env = cli_env(None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "100"
    cwd = tmp_path
    for step in steps(GUIDE.read_text()):
        cwd = run(step, cwd, env)


def update(guide: Path, workdir: Path) -> None:
    """Write each command's actual output into the guide (for its authors: review the
    diff). Outputs that hold a `...` line are left as written."""
    env = cli_env(None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    text, cwd = guide.read_text(), workdir
    outputs: list[list[str]] = []
    for step in steps(text):
        if step.kind == "command" and not step.text.startswith("cd "):
            done = subprocess.run(
                ["bash", "-c", step.text],
                cwd=cwd,
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            lines = [line.rstrip() for line in done.stdout.splitlines()]
            outputs.append(step.expected if "..." in step.expected else lines)
            continue
        if step.kind == "command":
            outputs.append([])
        cwd = run(step, cwd, env)

    def block(match: re.Match[str]) -> str:
        if match["lang"] != "console":
            return match[0]
        body = []
        for line in match["body"].splitlines():
            if line.startswith("$ "):
                body += [line, *outputs.pop(0)]
        head = match[0][: match.start("body") - match.start()]
        return head + "\n".join(body) + "\n```"

    guide.write_text(BLOCK.sub(block, text))


if __name__ == "__main__":  # python -m tests.test_getting_started --update
    import tempfile

    assert sys.argv[1:] == ["--update"], "usage: python -m tests.test_getting_started --update"
    with tempfile.TemporaryDirectory() as scratch:
        update(GUIDE, Path(scratch))
