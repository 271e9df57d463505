"""What a person sees: live progress of a run, its summary, and tables of rows.

On a terminal, a rich progress bar with one line per finished asset; otherwise (CI logs,
pipes) plain lines, one when each asset starts (with the time) and one when it finishes,
that read well in a log file.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from vibepiper.execution import states
from vibepiper.execution.states import AssetResult, RunResult
from vibepiper.text import units_counted

STYLE = {
    states.SUCCEEDED: "green",
    states.SKIPPED: "dim",
    states.FAILED: "bold red",
    states.CHECK_FAILED: "bold red",
    states.BLOCKED: "yellow",
}
MARK = {
    states.SUCCEEDED: "✓",
    states.SKIPPED: "·",
    states.FAILED: "✗",
    states.CHECK_FAILED: "✗",
    states.BLOCKED: "⊘",
}


def is_terminal(stream: TextIO) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


def describe(result: AssetResult) -> str:
    """'99 rows, 0.05 s' or the one-line reason, for one finished asset."""
    if result.state == states.SUCCEEDED:
        retried = f", {result.attempts} attempts" if result.attempts > 1 else ""
        if result.revalidated:
            return f"{result.row_count} rows revalidated, {result.seconds:.2f} s"
        return f"{result.row_count} rows, {result.seconds:.2f} s{retried}"
    if result.state == states.SKIPPED:
        return "fresh"
    return result.message


class ConsoleReporter:
    """Progress of a run on `stream`: a live bar on a terminal, plain lines elsewhere.

    The lines of skipped assets are held back until something else happens: a run that
    has nothing to do prints its summary alone, not a line per fresh asset (`verbose`
    prints them all)."""

    def __init__(self, stream: TextIO | None = None, *, verbose: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.live = is_terminal(self.stream)
        self.verbose = verbose
        self.total = 0
        self.done = 0
        self.width = 0
        self._progress: Any = None
        self._task: Any = None
        self.running: dict[str, str] = {}  # asset -> its state, while it computes
        self.held: list[AssetResult] = []  # skipped, not shown while nothing else happened
        self.active = verbose  # whether anything but skipping happened (or all is shown)

    def run_started(self, run_id: str, names: list[str]) -> None:
        self.total = len(names)
        self.width = max((len(n) for n in names), default=0)
        self._echo(f"run {run_id}: {units_counted(names)}")
        if self.live and names:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            console = Console(file=self.stream, emoji=False)  # data is shown as it is
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console,
                transient=True,
            )
            self._task = self._progress.add_task("starting", total=len(names))
            self._progress.start()

    def asset_started(self, name: str, state: str) -> None:
        """`name` is now `state` (running, retrying, validating); several may run at once.
        Without a terminal (CI logs), each start is a line with the time, so a long asset
        does not look idle."""
        self._activate()
        first = name not in self.running
        self.running[name] = state
        if self._progress is not None:
            self._progress.update(self._task, description=self._running_text())
        elif state == states.RETRYING:
            self._echo(f"{self._blank_counter} {name} failed, retrying")
        elif first and state == states.RUNNING:
            at = datetime.now(UTC).strftime("%H:%M:%S UTC")
            self._echo(f"{self._blank_counter} {name:<{self.width}}  {'started':<12} at {at}")

    @property
    def _blank_counter(self) -> str:
        """Spaces as wide as the `[n/total]` counter of finished lines."""
        return " " * (2 * len(str(self.total)) + 3)

    def _running_text(self) -> str:
        """'running orders' or, with parallel executors, 'running orders, stg_x +3 more'."""
        if not self.running:
            return ""
        now = list(self.running.items())  # workers may add to it meanwhile
        names = [f"{n} ({s})" if s != states.RUNNING else n for n, s in now]
        shown = ", ".join(names[:3]) + (f" +{len(names) - 3} more" if len(names) > 3 else "")
        return _escape(f"running {shown}")

    def asset_finished(self, result: AssetResult) -> None:
        if not self.active and result.state == states.SKIPPED:
            self.held.append(result)
            if len(self.held) == self.total:
                self.close()
            return
        self._activate()
        if result.state == states.SKIPPED and result.partition and not self.verbose:
            self._count(result)  # fresh partitions are counted, not listed (-v lists them)
            return
        self._show(result)

    def _count(self, result: AssetResult) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1)
        if self.done == self.total:
            self.close()

    def _activate(self) -> None:
        """Something besides skipping happens: show what was held back, from now on all."""
        if self.active:
            return
        self.active = True
        held, self.held = self.held, []
        for result in held:
            if result.partition and not self.verbose:
                self._count(result)
            else:
                self._show(result)

    def _show(self, result: AssetResult) -> None:
        self.running.pop(result.label, None)
        self.done += 1
        counter = f"[{self.done:>{len(str(self.total))}}/{self.total}]"
        text = f"{result.label:<{self.width}}  {result.state:<12} {describe(result)}"
        if self._progress is not None:
            style = STYLE.get(result.state, "")
            mark = MARK.get(result.state, " ")
            self._progress.console.print(
                f"{counter} [{style}]{mark} {_escape(text)}[/]", highlight=False
            )
            self._progress.update(self._task, advance=1, description=self._running_text())
        else:
            self._echo(f"{counter} {text}")
        if self.done == self.total:
            self.close()

    def run_finished(self, run: RunResult) -> None:
        self.close()  # the summary is printed by the command, which knows what else to say

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _echo(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


SHOWN_FAILURES = 20  # failed units listed one per line; the rest are counted


def summary(run: RunResult, unrecorded: Iterable[str] | None = None) -> list[str]:
    """The closing lines of a run: counts per state, each failure, and how to resume.

    `unrecorded` is given when the run's last catalog write failed: the run is "not
    recorded", and so are the assets it names (published, yet not in the catalog).
    """
    not_recorded = "not recorded"
    missing = set(unrecorded or ())
    counts: dict[str, int] = {}
    for result in run.results.values():
        state = not_recorded if result.label in missing else result.state
        counts[state] = counts.get(state, 0) + 1
    order = [
        states.SUCCEEDED,
        not_recorded,
        states.SKIPPED,
        states.FAILED,
        states.CHECK_FAILED,
        states.BLOCKED,
    ]
    parts = [f"{counts[s]} {s}" for s in order if counts.get(s)]
    status = "failed" if unrecorded is not None and not run.cancelled else run.status
    lines = [f"run {run.run_id} {status}: " + (", ".join(parts) or "nothing selected")]
    failed = [r for r in run.results.values() if r.state in (states.FAILED, states.CHECK_FAILED)]
    for result in failed[:SHOWN_FAILURES]:
        lines.append(f"  {result.label} {result.state}: {result.message}")
    if len(failed) > SHOWN_FAILURES:
        lines.append(f"  and {len(failed) - SHOWN_FAILURES} more failures (vibepiper history)")
    blocked = [r.label for r in run.results.values() if r.state == states.BLOCKED]
    if blocked:
        shown = ", ".join(blocked[:8]) + (
            f" and {len(blocked) - 8} more" if len(blocked) > 8 else ""
        )
        lines.append(f"  blocked: {shown}")
    if run.cancelled:
        lines.append(
            "cancelled: run `vibepiper materialize` again to finish (what is fresh is skipped)"
        )
    elif failed:
        resume = " ".join(dict.fromkeys(f"{r.asset}+" for r in failed))
        lines.append(f"fix the failures, then resume with: vibepiper materialize '{resume}'")
        errors = [r.asset for r in failed if r.state == states.FAILED and r.error]
        lines += _traceback_hint(list(dict.fromkeys(errors)))
    return lines


def _traceback_hint(assets: Sequence[str]) -> list[str]:
    """Where the full tracebacks of the failed `assets` are: the exact command."""
    if len(assets) == 1:
        return [f"the full traceback is in the catalog: vibepiper history {assets[0]} --errors"]
    if assets:
        return [
            "the full tracebacks are in the catalog: vibepiper history ASSET --errors "
            f"(ASSET: {', '.join(assets[:8])}{' ...' if len(assets) > 8 else ''})"
        ]
    return []


def print_table(
    rows: Sequence[dict[str, Any]], columns: Iterable[str], stream: TextIO | None = None
) -> None:
    """Rows as an aligned table (rich on a terminal, plain text elsewhere)."""
    out = stream or sys.stdout
    names = list(columns)
    if not is_terminal(out):
        cells = [[visible(_text(row.get(name))) for name in names] for row in rows]
        plain = _plain_table(names, cells)
        if plain is not None:
            out.write(plain)
            out.flush()
            return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(
        box=box.SIMPLE_HEAD if is_terminal(out) else box.ASCII2,
        header_style="bold",
        pad_edge=False,
        show_edge=False,
    )
    for name in names:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(name)) for name in names))
    width = None if is_terminal(out) else 200
    Console(file=out, width=width, highlight=False, emoji=False).print(table)  # ":M:" stays


def _cell(value: Any) -> str:
    return _escape(visible(_text(value)))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


PLAIN_WIDTH = 180  # wider tables go to rich, which folds them within 200 columns


def _plain_table(names: list[str], rows: list[list[str]]) -> str | None:
    """The table rich draws for a log (the ASCII2 box without edges), written directly:
    thousands of rows in milliseconds. None when only rich can draw it the same: a cell
    on several lines or not plain ASCII (whose width on screen is not its length), or a
    table wider than PLAIN_WIDTH."""
    widths = [len(name) for name in names]
    for row in rows:
        for i, cell in enumerate(row):
            if len(cell) > widths[i]:
                widths[i] = len(cell)
    if sum(widths) + 3 * (len(widths) - 1) > PLAIN_WIDTH:
        return None
    every = "".join(names) + "".join(cell for row in rows for cell in row)
    if not every.isascii() or "\n" in every or "\t" in every:
        return None
    last = len(widths) - 1
    rule = "+".join("-" * (w + (i > 0) + (i < last)) for i, w in enumerate(widths))
    lines = [" | ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)), rule]
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines) + "\n"


# Control characters but tab and newline (terminal escapes, carriage returns...) and the
# bidirectional overrides that reorder what a terminal shows: written as Python would (\x1b).
_INVISIBLE = {
    code: repr(chr(code))[1:-1]
    for code in (*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))
    if chr(code) not in "\t\n"
}


def visible(text: str) -> str:
    """`text` with control characters escaped, so data cannot drive the terminal."""
    return text.translate(_INVISIBLE)


def visible_frame(frame: Any) -> Any:
    """A copy of a DataFrame whose strings (values and column names) are `visible`."""
    shown = frame.map(lambda v: visible(v) if isinstance(v, str) else v)
    shown.columns = [visible(c) if isinstance(c, str) else c for c in frame.columns]
    return shown


class EchoHandler(logging.Handler):
    """Asset log lines (`context.log`, or any logging under `vibepiper.asset`) to stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        asset = record.name.rpartition(".")[2]
        try:
            print(f"  {asset} | {record.getMessage()}", file=sys.stderr, flush=True)
        except Exception:
            self.handleError(record)


def install_log_handler() -> None:
    """Show asset log lines on stderr, and let INFO lines through if nobody set a level."""
    from vibepiper.execution.logs import log_informative

    log_informative()
    logger = logging.getLogger("vibepiper.asset")
    if not any(isinstance(h, EchoHandler) for h in logger.handlers):
        logger.addHandler(EchoHandler())
    logger.setLevel(logging.INFO)
