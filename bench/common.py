"""What the benchmark scripts share: CPU accounting, the git state, the machine, timing in
process and of whole processes (a run made again when other processes disturbed it), saving.

The scripts run as `python bench/<name>.py`, which puts this folder on `sys.path`, so they
import it as `common`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BUSY_SHARE = 0.10  # the machine is busy when other processes use more than this share of it

T = TypeVar("T")


def cpu_count() -> int:
    """The number of CPUs (1 when unknown)."""
    return os.cpu_count() or 1


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (None without /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal ...; guest time is inside user
    ticks = [int(v) for v in fields[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process and of the children it has waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class OtherCpu:
    """The CPU that other processes use from now on (from /proc/stat).

    This process's CPU, and its waited-for children's, is not counted as other.
    """

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.busy = busy_cpu_seconds()
        self.own = own_cpu_seconds()

    def seconds(self) -> float | None:
        """CPU seconds other processes used so far (None without /proc/stat)."""
        now_busy = busy_cpu_seconds()
        if self.busy is None or now_busy is None:
            return None
        return max(0.0, (now_busy - self.busy) - (own_cpu_seconds() - self.own))

    def share(self) -> float | None:
        """`seconds()` as a share of all the CPUs over the time so far."""
        others = self.seconds()
        if others is None:
            return None
        return others / ((time.perf_counter() - self.wall) * cpu_count())


def git_state(package: Path) -> dict[str, Any]:
    """Which code was measured: its folder, its commit ("" outside a git checkout), whether it
    had local edits and which (`git status --porcelain`; None outside a checkout)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=package, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    changes = git("status", "--porcelain", "--", ".") if commit else None
    return {"package": str(package), "commit": commit, "dirty": bool(changes), "changes": changes}


def report_disturbances(
    others: float | None, git_before: dict[str, Any], git_after: dict[str, Any]
) -> None:
    """Say how much CPU other processes used, and warn if the machine was busy or
    vibepiper's files changed while the benchmark ran."""
    if others is not None:
        print(f"CPU used by other processes during the benchmark: {others:.0%} of the machine")
        if others > BUSY_SHARE:
            print("WARNING: the machine was busy; see the per-run figures", file=sys.stderr)
    if git_after != git_before:
        print("WARNING: vibepiper's files changed during the benchmark", file=sys.stderr)


def own_peak_rss_mib() -> float:
    """This process's peak RSS so far, in MiB.

    Linux starts a child's peak RSS at its parent's (vfork, then exec): a script timing whole
    processes must stay below every peak it measures.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def environment(packages: tuple[str, ...], **extra: Any) -> dict[str, Any]:
    """The machine, this Python and the installed version of each of `packages` (None if
    not installed), plus `extra`."""
    import importlib.metadata

    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {**machine(), "python_executable": PYTHON, **extra, "versions": versions}


def machine() -> dict[str, Any]:
    """The machine and Python the figures were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def time_runs(work: Callable[[], T], repeat: int) -> tuple[T, list[float]]:
    """Run `work` once to warm up, then `repeat` timed times: the warm-up's value, the times."""
    first = work()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return first, times


def save_report(report: dict[str, Any], name: str, path: Path | None, started: dt.datetime) -> Path:
    """Write `report` as JSON to `path`, by default to results/<name>-<UTC start time>.json."""
    out = path or RESULTS_DIR / f"{name}-{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return out


# -- running and timing whole processes --------------------------------------------------

BIN_DIR = Path(sys.executable).parent  # the venv's bin: its python and its `vibepiper`
PYTHON = sys.executable
VIBEPIPER = str(BIN_DIR / "vibepiper")
BUSY_SLACK_S = 0.05  # ... plus this many CPU seconds (/proc/stat counts in 10 ms ticks)
ATTEMPTS = 3  # tries per timed run before a disturbed one is kept (and flagged)
TIMEOUT_S = 600.0  # one process
QUIET_WAIT_S = 60.0  # how long to wait for a quiet machine before a (re)run


@dataclass
class Run:
    wall_s: float
    cpu_s: float  # the child's user + system time (its threads and waited-for children too)
    peak_rss_mib: float  # the child's (or its largest waited-for descendant's), from wait4
    other_cpu_s: float | None  # CPU seconds other processes used meanwhile
    attempts: int = 1

    @property
    def other_share(self) -> float | None:
        if self.other_cpu_s is None:
            return None
        return self.other_cpu_s / (self.wall_s * cpu_count())

    @property
    def disturbed(self) -> bool:
        if self.other_cpu_s is None:
            return False
        allowed = BUSY_SHARE * self.wall_s * cpu_count() + BUSY_SLACK_S
        return self.other_cpu_s > allowed


class CommandFailed(RuntimeError):
    pass


def package_dir() -> Path:
    """The folder of the `vibepiper` package these benchmarks measure (not imported)."""
    spec = importlib.util.find_spec("vibepiper")
    if spec is None or spec.origin is None:
        raise SystemExit("vibepiper is not importable from this Python")
    return Path(spec.origin).resolve().parent


def child_env() -> dict[str, str]:
    """The environment of every command: ours, as a user's shell would have it."""
    env = dict(os.environ)
    env.pop("VIBEPIPER_HOME", None)  # the project's own .vibepiper, always
    # Cache bytecode as a user's Python does: with PYTHONDONTWRITEBYTECODE set (as in some
    # sandboxes and CI images), every run would compile vibepiper and the assets module.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["COLUMNS"] = "120"
    return env


def json_of(cmd: list[str], root: Path, what: str) -> Any:
    """What `cmd`, run in `root`, printed as JSON; CommandFailed (naming `what`) if it failed."""
    done = subprocess.run(
        cmd, cwd=root, env=child_env(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise CommandFailed(f"{what} exited {done.returncode}: {done.stderr}")
    return json.loads(done.stdout)


def query_catalog(root: Path, sql: str) -> list[dict[str, Any]]:
    """The rows of read-only SQL over the catalog of the project in `root` (`vibepiper query`)."""
    rows: list[dict[str, Any]] = json_of(
        [VIBEPIPER, "query", "--json", sql], root, "vibepiper query"
    )
    return rows


def wait_quiet(limit_s: float = QUIET_WAIT_S) -> float | None:
    """Wait (up to `limit_s`) until other processes use less than BUSY_SHARE of the machine
    over half a second; return the last share seen."""
    deadline = time.monotonic() + limit_s
    while True:
        cpu = OtherCpu()
        time.sleep(0.5)
        share = cpu.share()
        if share is None or share < BUSY_SHARE or time.monotonic() > deadline:
            return share


def run_process(
    cmd: list[str],
    cwd: Path,
    log: Path,
    reap: Callable[[], float] | None = None,
    timeout_s: float = TIMEOUT_S,
) -> Run:
    """Run `cmd` to its end (its output to `log`; killed after `timeout_s`): its wall time,
    CPU time and peak RSS (from wait4). `reap`, called once the command has exited, waits
    for what it left behind and returns their CPU seconds, which count as the command's."""
    others = OtherCpu()  # the child, once waited for, counts as ours
    start = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=child_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        killer = threading.Timer(timeout_s, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    left_behind_cpu = reap() if reap is not None else 0.0
    other_cpu_s = others.seconds()
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise CommandFailed(f"{' '.join(cmd)} exited {proc.returncode} in {cwd}:\n{tail}")
    cpu = usage.ru_utime + usage.ru_stime + left_behind_cpu
    return Run(wall, cpu, usage.ru_maxrss / 1024, other_cpu_s)  # ru_maxrss: KiB on Linux


@dataclass
class Measure:
    """One named figure: timed runs of one command (each prepared the same way).

    A run during which other processes used the machine is made again, up to `tries` runs in
    all; one still disturbed is kept and flagged.
    """

    name: str
    cmd: list[str]
    cwd: Path
    prepare: Callable[[], None] | None = None
    after: Callable[[], Any] | None = None  # untimed, after each kept run; its value is kept
    reap: Callable[[], float] | None = None  # see run_process
    tries: int = ATTEMPTS
    timeout_s: float = TIMEOUT_S  # one run
    runs: list[Run] = field(default_factory=list)
    extras: list[Any] = field(default_factory=list)

    def once(self, log: Path, timed: bool = True) -> None:
        for attempt in range(1, self.tries + 1):
            if self.prepare is not None:
                self.prepare()
            run = run_process(self.cmd, self.cwd, log, self.reap, self.timeout_s)
            run.attempts = attempt
            if not run.disturbed or not timed:
                break
            share = run.other_share or 0.0
            if self.tries == 1:  # no second try wanted: the summary counts it as disturbed
                break
            if attempt < self.tries:
                print(
                    f"    {self.name}: other processes used {share:.0%} of the machine "
                    f"during the run ({run.wall_s:.3f} s): running it again",
                    file=sys.stderr,
                )
                wait_quiet()
            else:
                print(
                    f"WARNING: {self.name}: disturbed in {self.tries} tries "
                    f"({share:.0%} of the machine used by others): kept, and flagged",
                    file=sys.stderr,
                )
        extra = self.after() if self.after is not None else None
        if timed:
            self.runs.append(run)
            if self.after is not None:
                self.extras.append(extra)

    def summary(self) -> dict[str, Any]:
        times = [r.wall_s for r in self.runs]
        return {
            "command": " ".join(self.cmd),
            "median_s": statistics.median(times),
            "min_s": min(times),
            "max_s": max(times),
            "times_s": times,
            "cpu_s": [r.cpu_s for r in self.runs],
            "peak_rss_mib": max(r.peak_rss_mib for r in self.runs),
            "peak_rss_mib_runs": [r.peak_rss_mib for r in self.runs],
            "other_cpu_share": [r.other_share for r in self.runs],
            "attempts": [r.attempts for r in self.runs],
            "disturbed_runs": sum(1 for r in self.runs if r.disturbed),
        }


def interleaved(
    measures: list[Measure],
    repeat: int,
    log: Path,
    quick: bool = False,
    *,
    patient: bool = True,
    warm_up: bool = True,
) -> None:
    """One untimed warm-up of each, then `repeat` rounds of one run of each, in turn, so
    that a slow spell of the machine hits every figure of a comparison alike.

    `quick` (a smoke test, not figures): only the first measure warms up, and not
    `patient`. Not `patient`: no waiting for a quiet machine, no second try of a disturbed
    run (it is kept and flagged). Without `warm_up`, the caller has warmed up otherwise.
    """
    if warm_up:
        for m in measures[:1] if quick else measures:
            print(f"  {m.name} (warm-up) ...", file=sys.stderr, flush=True)
            m.once(log, timed=False)
    if quick or not patient:
        for m in measures:
            m.tries = 1
    else:
        wait_quiet()
    for round_ in range(repeat):
        names = ", ".join(m.name for m in measures)
        print(f"  round {round_ + 1}/{repeat}: {names}", file=sys.stderr)
        for m in measures:
            m.once(log)


# -- a benchmark's report ----------------------------------------------------------------


class Session:
    """One run of the benchmark `name`, as its report describes it: when it started and how
    long it took, which code it measured (git before and after), and the share of the machine
    that other processes used meanwhile (the children waited for count as ours)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = dt.datetime.now(dt.UTC)
        self.git_before = git_state(package_dir())
        self.cpu = OtherCpu()
        self.wall = time.perf_counter()
        self.elapsed = 0.0
        self.others: float | None = None
        self.git_after: dict[str, Any] = {}

    def end(self) -> None:
        """Stop the clock and the count of other processes' CPU; read the git state again."""
        self.others = self.cpu.share()
        self.elapsed = time.perf_counter() - self.wall
        self.git_after = git_state(package_dir())

    def report(self, settings: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
        """The report: the benchmark's name, start and length, `settings`, the git state
        before and after, other processes' share of the machine, then `measured`."""
        return {
            "benchmark": self.name,
            "started": self.started.isoformat(timespec="seconds"),
            "elapsed_s": self.elapsed,
            **settings,
            "git": self.git_before,
            "git_after": self.git_after,
            "other_processes_cpu_share": self.others,
            **measured,
        }

    def save(self, report: dict[str, Any], path: Path | None) -> None:
        """Warn of what disturbed the benchmark, then save `report` (see save_report)."""
        report_disturbances(self.others, self.git_before, self.git_after)
        out = save_report(report, self.name, path, self.started)
        print(f"saved {out}")


def finish(
    session: Session,
    settings: dict[str, Any],
    measured: dict[str, Any],
    packages: tuple[str, ...],
    print_report: Callable[[dict[str, Any]], None],
    path: Path | None,
) -> None:
    """End a benchmark of a series of sizes (scale.py, partitions.py): its report (`settings`;
    the environment, with this script's own peak RSS; the load average; `measured`), shown
    by `print_report` with that peak and the time taken, then saved to `path`."""
    session.end()
    own_peak_mib = own_peak_rss_mib()
    env = environment(
        packages,
        pythonpath=os.environ.get("PYTHONPATH"),
        children_cache_bytecode=True,  # see child_env
        script_peak_rss_mib=own_peak_mib,
    )
    report = session.report(
        {**settings, "environment": env}, {"load_average_1_5_15min": os.getloadavg(), **measured}
    )
    print_report(report)
    print(f"\nthis script's own peak RSS: {own_peak_mib:.0f} MiB; {session.elapsed:.0f} s in all")
    session.save(report, path)


@contextlib.contextmanager
def workspace(prefix: str, keep: Path | None) -> Iterator[tuple[Path, Path]]:
    """The folder for the projects (a temporary one, or `keep`, which is kept) and the log of
    the last command run (in the temporary folder)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield keep or Path(tmp), Path(tmp) / "last-command.log"


@contextlib.contextmanager
def failure_noted(failed: dict[str, str], key: str, what: str) -> Iterator[None]:
    """Run the block; if a command in it fails, warn (naming `what`), keep the end of its
    output in `failed[key]` and go on, so that the other parts' figures are kept."""
    try:
        yield
    except CommandFailed as exc:
        print(f"WARNING: {what}: {exc}", file=sys.stderr)
        failed[key] = str(exc)[-3000:]


# -- the options of a benchmark of sizes -------------------------------------------------


def size_list(text: str) -> list[int]:
    """An option's comma-separated sizes: `10000,30000` -> [10000, 30000]."""
    return [int(v) for v in text.split(",") if v.strip()]


def add_run_options(parser: argparse.ArgumentParser, name: str, quick_help: str) -> None:
    """--no-wait, --json, --keep and --quick (described by `quick_help`)."""
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="on a busy machine: no waiting for a quiet one, no second try of a disturbed run "
        "(such runs are kept and flagged)",
    )
    parser.add_argument("--json", type=Path, help=f"default: bench/results/{name}-<time>.json")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="write the projects in DIR and keep them"
    )
    parser.add_argument("--quick", action="store_true", help=quick_help)
