"""LD_PRELOAD shims built for this machine, and the lost-commit race they provoke.

`duckdb_prelock_delay.c` (in the `shared/tools` folder beside the repository) sleeps
before DuckDB takes its file lock, which widens the window in which a commit can be lost
without VibePiper's own lock (FACTS.md). `enospc_shim.c` (here) fails writes to chosen
files with ENOSPC: a full disk where a container refuses to mount a tmpfs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from vibepiper.catalog.catalog import Catalog

HELPERS = Path(__file__).resolve().parent
SHARED = HELPERS.parents[2] / "shared"  # beside the repository: <parent>/shared
PRELOCK_DELAY = "duckdb_prelock_delay.c"


def build_shim(source: Path, out_dir: Path) -> Path:
    """Compile `source` into a shared library in `out_dir`; skip if there is no compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip(f"no C compiler (cc or gcc): cannot build the LD_PRELOAD shim {source.name}")
    library = out_dir / f"{source.stem}.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"],
        check=True,
        capture_output=True,
    )
    return library


def build_prelock_delay(out_dir: Path) -> Path:
    """The shim that delays DuckDB's file lock; skip if `shared/tools` does not hold it."""
    source = SHARED / "tools" / PRELOCK_DELAY
    if not source.is_file():
        pytest.skip(
            f"{PRELOCK_DELAY} is not in {SHARED / 'tools'} (the shared folder beside the "
            "repository): cannot reproduce the lock race"
        )
    return build_shim(source, out_dir)


def build_enospc(out_dir: Path) -> Path:
    """The shim that fails writes with ENOSPC (see enospc_shim.c for its variables)."""
    return build_shim(HELPERS / "enospc_shim.c", out_dir)


def preloading(shim: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) with `shim` first in LD_PRELOAD."""
    env = dict(os.environ if env is None else env)
    env["LD_PRELOAD"] = " ".join(filter(None, [str(shim), env.get("LD_PRELOAD", "")]))
    return env


@dataclass
class Contention:
    """What rounds of writers and readers on one catalog acknowledged, and what was lost."""

    acknowledged: set[str] = field(default_factory=set)
    present: set[str] | None = None  # after the last round; None: the catalog did not open
    lost: set[str] = field(default_factory=set)  # acknowledged, then missing after a round
    failures: list[str] = field(default_factory=list)


def run_ids(home: Path) -> set[str] | None:
    """The run ids in the catalog, read straight through duckdb; None if it will not open."""
    try:
        con = duckdb.connect(str(home / "catalog.duckdb"), read_only=True)
        try:
            return {row[0] for row in con.execute("SELECT run_id FROM runs").fetchall()}
        finally:
            con.close()
    except duckdb.Error:
        return None


def contend(
    home: Path,
    shim: Path,
    *,
    writers: int,
    readers: int,
    cycles: int,
    rounds: int = 1,
    raw: bool = False,
) -> Contention:
    """Rounds of fresh catalog_worker.py processes taking turns on one catalog, DuckDB's
    lock delayed 20 ms; after each round, every row acknowledged so far is looked for.
    Writer `w` of round `r` acknowledges rows `r{r}w{w}-{cycle}`. With `raw`, the workers
    go straight to duckdb, without our lock (the control experiment)."""
    Catalog(home).ensure()
    # Lost commits are what is measured, not waiting: on a loaded machine a reader may
    # wait longer than the default 60 s for its turn, which is not a failure here.
    env = {**preloading(shim), "LOCK_DELAY_US": "20000", "VIBEPIPER_LOCK_TIMEOUT": "900"}
    seen = Contention()
    for r in range(rounds):
        names = [("writer", f"r{r}w{i}") for i in range(writers)]
        names += [("reader", f"r{r}r{i}") for i in range(readers)]
        procs = []
        for role, name in names:
            command = [sys.executable, str(HELPERS / "catalog_worker.py"), str(home), role]
            command += [name, str(cycles), *(["--raw"] if raw else [])]
            with (home / f"{name}.out").open("w") as out, (home / f"{name}.err").open("w") as err:
                procs.append((name, subprocess.Popen(command, stdout=out, stderr=err, env=env)))
        for name, proc in procs:
            if proc.wait(timeout=600) != 0:
                error = (home / f"{name}.err").read_text()
                seen.failures.append(f"{name} exited {proc.returncode}: {error}")
        for name, _ in procs:
            seen.acknowledged |= set((home / f"{name}.out").read_text().split())
        seen.present = run_ids(home)
        seen.lost |= seen.acknowledged - (seen.present or set())
    return seen


def expected_ids(writers: int, cycles: int, rounds: int = 1) -> set[str]:
    """The rows `contend` acknowledges when nothing fails."""
    return {f"r{r}w{w}-{i}" for r in range(rounds) for w in range(writers) for i in range(cycles)}
