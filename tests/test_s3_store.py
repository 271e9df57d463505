"""The store on S3-compatible object storage (SPEC §11), against a real SeaweedFS server
the tests start on 127.0.0.1: the example project end to end through the real CLI, bad
input, conditional creates, concurrent publishers, a SIGKILL in a multipart upload,
doctor and `store gc`."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import catalog_rows, copy_example, run_cli, write_project
from tests.helpers.s3server import S3Store
from vibepiper.errors import StoreError
from vibepiper.loader import StoreSettings
from vibepiper.storage.object_store import ObjectStore
from vibepiper.units import Unit


def example(root: Path, store: S3Store) -> Path:
    copy_example(root)
    with open(root / "pyproject.toml", "a") as toml:
        toml.write(store.toml)
    return root


def settings(store: S3Store) -> StoreSettings:
    return StoreSettings(store.bucket, store.prefix, store.server.endpoint)


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], result.stderr


# -- the server really enforces what the store relies on ---------------------------------


def test_the_server_enforces_conditional_creates(s3_store: S3Store) -> None:
    """A second If-None-Match create must fail with 412, for a PUT and for a multipart
    upload's completion: some emulators ignore the condition, and publishing relies on it."""
    from botocore.exceptions import ClientError

    client, bucket = s3_store.server.client(), s3_store.bucket
    client.put_object(Bucket=bucket, Key="k", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as second:
        client.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch="*")
    assert second.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"
    upload = client.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    part = client.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=1, Body=b"x")
    with pytest.raises(ClientError) as completed:
        client.complete_multipart_upload(
            Bucket=bucket,
            Key="k",
            UploadId=upload,
            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
            IfNoneMatch="*",
        )
    assert completed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"


# -- the example project, end to end ------------------------------------------------------


def test_example_project_end_to_end_on_s3(tmp_path: Path, s3_store: S3Store) -> None:
    root = example(tmp_path / "shop", s3_store)
    first = run_cli(root, "materialize")
    assert first.returncode == 0, first.stderr
    keys = s3_store.objects()
    assert len([k for k in keys if k.count("/") == 2]) == 10, keys  # vp/<asset>/<v>.parquet
    assert not (root / ".vibepiper" / "store").exists()  # the data lives in the bucket only

    again = run_cli(root, "materialize")
    assert again.returncode == 0 and "nothing to do" in again.stdout + again.stderr
    # a new machine's cache, or a lost one: everything is fetched again, verified
    import shutil

    shutil.rmtree(root / ".vibepiper" / "cache")
    shown = run_cli(root, "show", "orders", "--limit", "1000", "--json")
    assert shown.returncode == 0, shown.stderr
    assert len(json.loads(shown.stdout)) == 99
    query = run_cli(root, "query", "select count(*) as n from customers", "--json")
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout) == [{"n": 100}]
    assert run_cli(root, "check").returncode == 0
    doctor = run_cli(root, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "10 published files checked: no problem found" in doctor.stderr

    # bad data is blocked: a duplicate order id fails stg_orders' check
    with open(root / "assets_example" / "data" / "raw_orders.csv", "a") as raw:
        raw.write("1,1,2018-01-01,returned\n")
    blocked = run_cli(root, "materialize")
    assert blocked.returncode == 1
    assert "blocked" in blocked.stdout
    history = run_cli(root, "history", "stg_orders", "--json")
    statuses = [row["status"] for row in json.loads(history.stdout)]
    assert statuses[:2] == ["check_failed", "succeeded"], statuses
    still = run_cli(root, "show", "orders", "--limit", "1000", "--json")  # the published data stays
    assert len(json.loads(still.stdout)) == 99
    assert any("/rejected/" in k for k in s3_store.objects())  # kept aside, in the bucket
    assert run_cli(root, "doctor").returncode == 0


@pytest.mark.parametrize(
    "executor", ["processes", "threads", pytest.param("dask", marks=pytest.mark.slow)]
)
@pytest.mark.slow
def test_every_executor_matches_in_process_on_s3(
    tmp_path: Path, s3_store: S3Store, executor: str
) -> None:
    """The workers read their inputs from the bucket and (dask) upload their outputs."""
    root = example(tmp_path / "shop", s3_store)
    made = run_cli(root, "materialize", "--executor", executor, "--workers", "2")
    assert made.returncode == 0, made.stderr
    local = copy_example(tmp_path / "local")
    assert run_cli(local, "materialize").returncode == 0
    versions = "select asset, data_version from current_materializations order by asset"
    on_s3 = json.loads(run_cli(root, "query", versions, "--json").stdout)
    assert on_s3 == json.loads(run_cli(local, "query", versions, "--json").stdout)


# -- damage, doctor, gc -------------------------------------------------------------------


@pytest.mark.slow
def test_a_damaged_object_is_found_set_aside_and_recomputed(
    tmp_path: Path, s3_store: S3Store
) -> None:
    root = example(tmp_path / "shop", s3_store)
    assert run_cli(root, "materialize").returncode == 0
    client, bucket = s3_store.server.client(), s3_store.bucket
    key = next(k for k in s3_store.objects() if k.startswith("vp/orders/"))
    good = client.get_object(Bucket=bucket, Key=key)
    body, metadata = good["Body"].read(), good["Metadata"]
    flipped = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]  # same size, same metadata
    client.put_object(Bucket=bucket, Key=key, Body=flipped, Metadata=metadata)
    import shutil

    shutil.rmtree(root / ".vibepiper" / "cache")

    shown = run_cli(root, "show", "orders")
    assert shown.returncode == 1
    assert "orders" in shown.stderr and f"s3://{bucket}/{key}" in shown.stderr
    found = run_cli(root, "doctor", "--json")
    assert found.returncode == 1
    kinds = [f["kind"] for f in json.loads(found.stdout)["findings"]]
    assert kinds == ["corrupt"], found.stdout
    repaired = run_cli(root, "doctor", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert key not in s3_store.objects()
    assert any("/orders/corrupt/" in k for k in s3_store.objects())  # kept to look at
    again = run_cli(root, "materialize")
    assert again.returncode == 0, again.stderr
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert run_cli(root, "doctor").returncode == 0


def test_publishing_over_other_content_reports_a_damaged_store(
    tmp_path: Path, s3_store: S3Store
) -> None:
    import pyarrow as pa

    from vibepiper.versioning.data_version import table_version

    store = ObjectStore(settings(s3_store), tmp_path / "cache")
    data = pa.table({"a": [1, 2, 3]})
    version = table_version(data)
    key = store.key(Unit("t"), version)
    s3_store.server.client().put_object(
        Bucket=s3_store.bucket, Key=key, Body=b"PAR1 not this data PAR1"
    )
    staged = store.stage(Unit("t"), version, data)
    with pytest.raises(StoreError, match="the store is damaged") as raised:
        store.publish(staged)
    assert "doctor --repair" in raised.value.hint
    # --force replaces it
    store.publish(store.stage(Unit("t"), version, data), replace=True)
    assert store.read_table(Unit("t"), version).equals(data)


def test_store_gc_removes_only_old_unreferenced_objects(tmp_path: Path, s3_store: S3Store) -> None:
    root = example(tmp_path / "shop", s3_store)
    assert run_cli(root, "materialize").returncode == 0
    referenced = s3_store.objects()
    client = s3_store.server.client()
    orphan = "vp/orders/" + "ab" * 16 + ".parquet"
    client.copy_object(
        Bucket=s3_store.bucket,
        Key=orphan,
        CopySource={"Bucket": s3_store.bucket, "Key": referenced[0]},
    )
    stray = "vp/notes.txt"  # not the store's: never removed
    client.put_object(Bucket=s3_store.bucket, Key=stray, Body=b"mine")
    upload = client.create_multipart_upload(Bucket=s3_store.bucket, Key="vp/orders/x.parquet")

    young = run_cli(root, "store", "gc", "--json")  # default grace: 1 hour
    assert young.returncode == 0, young.stderr
    assert json.loads(young.stdout)["removed"] == []
    assert json.loads(young.stdout)["spared_young"] == 2

    dry = run_cli(root, "store", "gc", "--grace", "0", "--dry-run", "--json")
    listed = json.loads(dry.stdout)["would_remove"]
    assert sorted(g["kind"] for g in listed) == ["published", "temporary"]
    assert orphan in s3_store.objects() and s3_store.uploads()

    done = run_cli(root, "store", "gc", "--grace", "0")
    assert done.returncode == 0, done.stderr
    assert "removed 2 entries" in done.stderr
    assert s3_store.objects() == sorted([*referenced, stray])
    assert all(u["UploadId"] != upload["UploadId"] for u in s3_store.uploads())
    assert run_cli(root, "materialize").returncode == 0  # nothing referenced was lost
    bad = run_cli(root, "store", "gc", "--grace", "soon")
    one_line_error(bad, "--grace")


# -- concurrency and crashes --------------------------------------------------------------


def _publisher(store: S3Store, rows: int, start: Path, *slow: str) -> subprocess.Popen[str]:
    given = json.dumps(
        {"bucket": store.bucket, "prefix": store.prefix, "endpoint_url": store.server.endpoint}
    )
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.s3_publish", given, str(rows), str(start), *slow],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "VIBEPIPER_CACHE": str(start.parent / f"cache-{os.urandom(4).hex()}")},
        start_new_session=True,
    )


@pytest.mark.slow  # (CI runs it with the slow tests)
def test_eight_processes_publish_the_same_content_once(tmp_path: Path, s3_store: S3Store) -> None:
    """All 8 succeed, exactly one creates the object, and a reader polling meanwhile
    only ever sees the whole object."""
    start = tmp_path / "go"
    writers = [_publisher(s3_store, 2_000_000, start) for _ in range(8)]  # ~30 MiB: multipart
    client, seen, stop = s3_store.server.client(), [], threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for key in s3_store.objects():
                body = client.get_object(Bucket=s3_store.bucket, Key=key)["Body"].read()
                seen.append((key, len(body), hashlib.sha256(body).hexdigest()))

    reader = threading.Thread(target=poll)
    reader.start()
    start.touch()
    try:
        results = [w.communicate(timeout=240) for w in writers]
    finally:
        stop.set()
        reader.join()
    assert all(w.returncode == 0 for w in writers), [r[1][-2000:] for r in results]
    outcomes = [json.loads(out.splitlines()[-1]) for out, _ in results]
    assert sum(o["created"] for o in outcomes) == 1
    keys = s3_store.objects()
    assert keys == [f"vp/big/{outcomes[0]['version']}.parquet"]
    whole = client.get_object(Bucket=s3_store.bucket, Key=keys[0])["Body"].read()
    assert {(len(whole), hashlib.sha256(whole).hexdigest())} >= {(s, h) for _, s, h in seen}
    assert not s3_store.uploads()  # the losers' uploads were aborted


def test_sigkill_during_a_multipart_upload_leaves_no_object(
    tmp_path: Path, s3_store: S3Store
) -> None:
    root = write_project(
        tmp_path / "proj",
        {"assets": "from vibepiper import asset\n"},
        tool=s3_store.toml,
    )
    start = tmp_path / "go"
    start.touch()
    writer = _publisher(s3_store, 4_000_000, start, "0.5")  # ~60 MiB in 5 MiB parts
    assert writer.stdout is not None
    first = writer.stdout.readline()  # a part is uploaded: the upload is under way
    assert json.loads(first) == {"part": 1}, writer.stderr.read() if writer.stderr else ""
    os.killpg(writer.pid, signal.SIGKILL)
    writer.wait()
    assert s3_store.objects() == []  # nothing visible
    assert len(s3_store.uploads()) == 1

    found = run_cli(root, "doctor", "--json")
    assert found.returncode == 1
    findings = json.loads(found.stdout)["findings"]
    assert [f["kind"] for f in findings] == ["temporary"]
    assert "never finished" in findings[0]["detail"]
    repaired = run_cli(root, "doctor", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert not s3_store.uploads()
    healthy = run_cli(root, "doctor")
    assert healthy.returncode == 0 and "no problem found" in healthy.stderr


# -- bad input: one line, exit 2 ----------------------------------------------------------

BAD_SETTINGS = [
    ('url = "http://bucket/x"', "is not an s3:// URL"),
    ('url = "s3://B_d/x"', "does not name a valid bucket"),
    ('url = "s3://bucket/../x"', "has an invalid prefix"),
    ('url = "s3://AKIAX:secret@bucket/x"', "holds credentials"),
    ('url = "s3://bucket/x"\naws_secret_access_key = "shh"', "holds a secret"),
    ('url = "s3://bucket/x"\naccess_key_id = "AKIA"', "holds a secret"),
    ('url = "s3://bucket/x"\nendpoint_url = "http://k:s@127.0.0.1:1"', "holds credentials"),
    ('url = "s3://bucket/x"\nendpoint_url = "ftp://127.0.0.1"', "is not an http(s) URL"),
    ('url = "s3://bucket/x"\nendpoint = "http://127.0.0.1:1"', "did you mean 'endpoint_url'"),
    ('endpoint_url = "http://127.0.0.1:1"', "has no url"),
    ("url = 3", "is not a string"),
]


@pytest.mark.parametrize(
    ("lines", "said"), BAD_SETTINGS, ids=[f"setting{i}" for i in range(len(BAD_SETTINGS))]
)
def test_bad_store_settings_are_one_line_exit_2(tmp_path: Path, lines: str, said: str) -> None:
    root = write_project(
        tmp_path / "proj",
        {"assets": "from vibepiper import asset\n"},
        tool=f"\n[tool.vibepiper.store]\n{lines}\n",
    )
    one_line_error(run_cli(root, "materialize"), said, "[tool.vibepiper.store]")


def test_a_missing_bucket_is_one_line_exit_2(tmp_path: Path, s3_store: S3Store) -> None:
    root = write_project(
        tmp_path / "proj",
        {"assets": "from vibepiper import asset\n\n@asset\ndef a() -> int:\n    return 1\n"},
        tool=s3_store.toml.replace(s3_store.bucket, "no-such-bucket-here"),
    )
    one_line_error(run_cli(root, "materialize"), "no-such-bucket-here", "does not exist")


def test_wrong_credentials_are_one_line_exit_2(tmp_path: Path, s3_store: S3Store) -> None:
    root = example(tmp_path / "shop", s3_store)
    result = run_cli(root, "materialize", env={"AWS_SECRET_ACCESS_KEY": "not-the-secret"})
    one_line_error(result, "refused the credentials", "AWS_SECRET_ACCESS_KEY")


def test_an_endpoint_that_does_not_answer_is_one_line_exit_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    root = copy_example(tmp_path / "shop")
    with open(root / "pyproject.toml", "a") as toml:
        toml.write(
            f'\n[tool.vibepiper.store]\nurl = "s3://bucket/x"\nendpoint_url = "http://127.0.0.1:{port}"\n'
        )
    env = {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    one_line_error(run_cli(root, "materialize", env=env), "does not answer", "endpoint_url")


def test_no_credentials_at_all_is_one_line_exit_2(tmp_path: Path, s3_store: S3Store) -> None:
    root = example(tmp_path / "shop", s3_store)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("VIBEPIPER_HOME", "HOME")
    }
    env.update(HOME=str(tmp_path / "home"), AWS_EC2_METADATA_DISABLED="true")
    result = subprocess.run(
        [sys.executable, "-m", "vibepiper", "materialize"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    one_line_error(result, "no credentials", "AWS_ACCESS_KEY_ID")


@pytest.mark.slow  # (CI runs it with the slow tests)
def test_partitioned_assets_on_s3(tmp_path: Path, s3_store: S3Store) -> None:
    from tests.test_partitions import DAYS, PIPELINE, day_csv

    root = write_project(
        tmp_path / "proj",
        {"pipeline": PIPELINE},
        {f"data/events/{d}.csv": day_csv(d) for d in DAYS},
        tool=s3_store.toml,
    )
    first = run_cli(root, "materialize", timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert json.loads(run_cli(root, "show", "rollup", "--json").stdout) == [
        {"days": 90, "amount": 900}
    ]
    counted = run_cli(root, "query", "select count(*) as n from daily_orders", "--json")
    assert json.loads(counted.stdout) == [{"n": 360}]
    (root / "data" / "events" / f"{DAYS[3]}.csv").write_text(day_csv(DAYS[3], duplicate=True))
    blocked = run_cli(root, "materialize")
    assert blocked.returncode == 1
    assert json.loads(run_cli(root, "show", "rollup", "--json").stdout) == [
        {"days": 90, "amount": 900}
    ]
    assert run_cli(root, "doctor").returncode == 0


@pytest.mark.slow  # (CI runs it with the slow tests)
def test_other_data_in_a_versions_place_fails_the_asset_until_forced(
    tmp_path: Path, s3_store: S3Store
) -> None:
    """The run recomputes an asset whose object is damaged; publishing it finds other
    data there (412, another hash): that asset fails, saying so, and --force replaces it."""
    import shutil

    root = example(tmp_path / "shop", s3_store)
    assert run_cli(root, "materialize").returncode == 0
    key = next(k for k in s3_store.objects() if k.startswith("vp/customers/"))
    s3_store.server.client().put_object(Bucket=s3_store.bucket, Key=key, Body=b"garbage")
    shutil.rmtree(root / ".vibepiper" / "cache")
    failed = run_cli(root, "materialize")
    assert failed.returncode == 1
    assert "9 skipped, 1 failed" in failed.stdout + failed.stderr
    [(status, error)] = catalog_rows(
        root,
        "SELECT status, error FROM materializations WHERE asset = 'customers' "
        "ORDER BY started_at DESC LIMIT 1",
    )
    assert status == "failed" and "the store is damaged" in error
    forced = run_cli(root, "materialize", "customers", "--force")
    assert forced.returncode == 0, forced.stderr
    assert run_cli(root, "doctor").returncode == 0
