"""The store on S3-compatible object storage (SPEC §11): `ObjectStore` implements `Store`.

Layout under `s3://bucket/prefix/` (an internal detail, as the local store's is):

    <asset>/<data_version>.parquet               published data, never modified
    <asset>/rejected/<materialization>.parquet   outputs that failed their checks
    <asset>/quarantine/<materialization>.parquet rows that quarantine removed, with reasons
    <asset>/corrupt/<data_version>.<token>.parquet  damaged data `doctor --repair` set aside

The files are the local store's: Parquet with page checksums, recording their content's
hash and the asset and version they were written as; every read verifies them.

Publishing renames nothing (object stores cannot): an output is staged as a local file,
then uploaded to its final key by a conditional create (`If-None-Match: *`), in one PUT
or, for a large file, a multipart upload completed with the same condition. Either the
whole object appears or nothing does: a killed upload leaves only an unfinished multipart
upload, which no reader sees and which `doctor --repair` (or, past a grace period, any
run and `store gc`) aborts. A 412 means an object of that version is there already: its
recorded hash is compared with ours, and different content is a damaged store, reported
(`doctor --repair` sets it aside). A put is durable when it returns, so `sync` has
nothing to do: the catalog never points at an object that was not fully written.

Reads go through a local cache of whole files, named by data version like the local
store's files (a version's data never changes, so a cached copy is never stale), each
verified on every read as any stored file is; a copy found damaged is fetched again. The
cache is `<home>/cache` for the machine that runs the project; a worker on another machine
(`for_workers()`) keeps its own in its temporary folder. Deleting a cache loses nothing.

Only the well-kept client is used (boto3); errors of configuration (no bucket, refused
credentials, an endpoint that does not answer after bounded retries) are UsageErrors,
naming the store and what to fix; anything else going wrong is a StoreError.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vibepiper.definitions.asset import NAME_RE
from vibepiper.errors import StoreError, UsageError
from vibepiper.storage import parquet_files as files
from vibepiper.storage.parquet_store import (
    KEPT,
    MATERIALIZATION_RE,
    TMP_SUFFIX,
    VERSION_RE,
    ParquetStore,
    StagedFile,
)
from vibepiper.storage.store import Entry, Kept, Staged, Store
from vibepiper.text import first_line
from vibepiper.units import Unit

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from vibepiper.loader import StoreSettings

PART_SIZE = 16 * 1024 * 1024  # a multipart upload's parts; a smaller file is one PUT
MULTIPART_AT = 32 * 1024 * 1024
GRACE_SECONDS = 3600.0  # an unfinished upload this old is a dead writer's, whoever started it
HANDED_OVER = "handed-over:"  # a staged output a worker elsewhere uploaded (Staged.location)
SOUND_MEMO = "sound-objects.json"  # in the cache: key -> ETag of objects found sound
SHA_KEY = "vibepiper-sha256"  # the object's metadata: the file's hash, its asset and version
ASSET_KEY = "vibepiper-asset"
VERSION_KEY = "vibepiper-version"
_CONFIG_ERRORS = {
    "NoSuchBucket": "does not exist",
    "InvalidAccessKeyId": "refused the credentials (unknown access key)",
    "SignatureDoesNotMatch": "refused the credentials (wrong secret key)",
    "AccessDenied": "refused the credentials (access denied)",
    "403": "refused the credentials (access denied)",
    "404": "does not exist",
    "InvalidBucketName": "does not exist",
}


class ObjectStore:
    """The data of every unit in an S3-compatible bucket, read through a local cache."""

    def __init__(
        self, settings: StoreSettings, cache: Path | None = None, *, grace: float = GRACE_SECONDS
    ) -> None:
        self.settings = settings
        self.grace = grace  # an unfinished upload older than this is a dead writer's
        self.bucket, self.prefix = settings.bucket, settings.prefix
        self.cache_root = cache if cache is not None else worker_cache(settings)
        # the cache (and the staging area: files are written next to their cached place)
        self.cache = ParquetStore(self.cache_root)
        self._client: Any = None
        self._guard = threading.Lock()
        self._sound: dict[str, str] | None = None  # key -> ETag of an object found sound
        self.created = 0  # objects this store's conditional creates made (others found theirs)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _reopen, (self.settings, self.cache_root, self.grace)

    def hand_over(self, staged: Staged, materialization_id: str, *, rejected: bool) -> Staged:
        """On a worker of another machine: upload the output now (see `Store.hand_over`).
        The run's machine keeps the decision of recording it: an output published here
        that the run does not record (it was cancelled) is an orphan for `store gc`."""
        if rejected:
            self.reject(staged, materialization_id)
        else:
            self.publish(staged)
        return Staged(staged.unit, staged.data_version, HANDED_OVER + staged.location)

    def for_workers(self) -> ObjectStore:
        """This store as a worker on another machine opens it: its own local cache."""
        return _DetachedStore(self.settings, grace=self.grace)

    # -- the client ----------------------------------------------------------------------

    def client(self) -> Any:
        """The S3 client, made (and the bucket checked to answer) on first use."""
        with self._guard:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise UsageError(
                f"the store {self.settings.url} needs boto3, which is not installed",
                "pip install 'vibepiper[s3]'",
            ) from None
        config = Config(
            connect_timeout=3,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},  # bounded: then an error
            s3={"addressing_style": "path"} if self.settings.endpoint_url else {},
        )
        session = boto3.session.Session()
        region = self.settings.region or session.region_name or "us-east-1"
        client = session.client(
            "s3", endpoint_url=self.settings.endpoint_url, region_name=region, config=config
        )
        self._call(client.head_bucket, Bucket=self.bucket)  # wrong bucket, credentials, endpoint
        return client

    def _call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        """`method(**kwargs)`, its configuration errors as UsageErrors that say what to fix."""
        from botocore import exceptions as aws

        where = self._where()
        try:
            return method(**kwargs)
        except aws.NoCredentialsError:
            raise UsageError(
                f"no credentials for the store {where}",
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the "
                "environment",
            ) from None
        except (aws.EndpointConnectionError, aws.ConnectTimeoutError) as exc:
            raise UsageError(
                f"the store's endpoint does not answer ({where}, after 3 attempts): "
                f"{first_line(exc)}",
                "check endpoint_url in [tool.vibepiper.store] and that the server is running",
            ) from None
        except aws.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            what = _CONFIG_ERRORS.get(code)
            if what is None or method.__name__ not in ("head_bucket", "list_objects_v2"):
                raise
            fix = (
                "create the bucket, or fix url in [tool.vibepiper.store]"
                if "exist" in what
                else "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) "
                "in the environment"
            )
            raise UsageError(f"the bucket of the store {where} {what}", fix) from None
        except aws.BotoCoreError as exc:
            raise StoreError(
                f"the store {where} failed: {type(exc).__name__}: {first_line(exc)}",
                "try again; `vibepiper doctor` checks the store",
            ) from None

    def _where(self) -> str:
        endpoint = self.settings.endpoint_url
        return self.settings.url + (f" at {endpoint}" if endpoint else "")

    def _s3(self, op: str, **kwargs: Any) -> Any:
        client = self.client()
        return self._call(getattr(client, op), Bucket=self.bucket, **kwargs)

    # -- where things are ----------------------------------------------------------------

    def key(self, unit: Unit | str, data_version: str) -> str:
        """The key of `unit`'s published data at `data_version` (names checked first: they
        come from the catalog, which may have been edited by hand)."""
        path = self.cache.path_for(unit, data_version)  # checks both names
        return f"{self.prefix}{path.parent.name}/{path.name}"

    def _kept_key(self, unit: Unit, materialization_id: str, kind: Kept) -> str:
        path = self.cache._kept_path(unit, materialization_id, kind)
        return f"{self.prefix}{unit.asset}/{kind}/{path.name}"

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def location(self, unit: Unit, data_version: str) -> str:
        return self.url(self.key(unit, data_version))

    # -- writing -------------------------------------------------------------------------

    def stage(
        self, unit: Unit, data_version: str, table: pa.Table, *, content: str | None = None
    ) -> StagedFile:
        return self.cache.stage(unit, data_version, table, content=content)

    def stage_stream(
        self, unit: Unit, batches: Any, *, data_version: str | None = None
    ) -> tuple[StagedFile, Any]:
        return self.cache.stage_stream(unit, batches, data_version=data_version)

    def staged_path(self, staged: Staged) -> Path:
        return self.cache.staged_path(staged)

    def publish(self, staged: Staged, *, replace: bool = False) -> None:
        """Upload a staged file to its version's key, created only if absent (replaced with
        `replace`); the file then becomes the cached copy. An object of that version already
        there with other content is a damaged store: a StoreError (unless `replace`)."""
        key = self.key(staged.unit, staged.data_version)
        if staged.location.startswith(HANDED_OVER):  # a worker elsewhere uploaded it
            found = self._object(key)
            if found is None or _metadata_damage(found, staged.unit.asset, staged.data_version):
                raise StoreError(
                    f"the output of asset '{staged.unit.asset}' a worker uploaded is not in "
                    f"the store ({self.url(key)})",
                    "run `vibepiper materialize` again",
                )
            return
        temp = self.cache.staged_path(staged)
        final = self.cache.path_for(staged.unit, staged.data_version)
        if not temp.exists():
            if final.exists() and self._object(key) is not None:
                return  # published already
            raise StoreError(
                f"the staged data of asset '{staged.unit.asset}' is gone ({temp})",
                "run `vibepiper materialize` again",
            )
        digest = _sha256(temp)
        metadata = {
            SHA_KEY: digest,
            ASSET_KEY: staged.unit.asset,
            VERSION_KEY: staged.data_version,
        }
        if self._upload(temp, key, metadata, only_new=not replace):
            self.created += 1
            os.replace(temp, final)  # the cached copy: what the next reads of it find
            return
        found = self._object(key)
        if found is None and self._upload(temp, key, metadata, only_new=True):
            self.created += 1  # it was removed between our create and our look: made now
            os.replace(temp, final)
            return
        theirs = (found or {}).get("Metadata", {}).get(SHA_KEY)
        if found is not None and theirs == digest:
            os.replace(temp, final)  # the same file was published already
            return
        if found is not None and self._same_content(key, temp, staged):
            os.replace(temp, final)  # the same data, written by another writer
            return
        self.cache.discard(staged)
        raise StoreError(
            f"the store is damaged: {self.url(key)} holds other data than version "
            f"{staged.data_version[:12]} of asset '{staged.unit.asset}' (another size or hash)",
            "run `vibepiper doctor --repair` (it sets the object aside, to look at), or "
            f"replace it: `vibepiper materialize {staged.unit.asset} --force`",
        )

    def _same_content(self, key: str, temp: Path, staged: Staged) -> bool:
        """Whether the object at `key` holds, verified, the data of the staged file (the
        same rows in other bytes: another writer's library version)."""
        mine = files.read_verified(temp).schema.metadata or {}
        fetched = self._download(key, self.cache_root / staged.unit.asset)
        try:
            if files.problem(
                fetched, staged.unit.asset, staged.data_version, full=True, source=False
            ):
                return False
            theirs = files.read_verified(fetched).schema.metadata or {}
            return bool(theirs.get(files.CONTENT_KEY) == mine.get(files.CONTENT_KEY))
        except Exception:
            return False
        finally:
            fetched.unlink(missing_ok=True)

    def _upload(self, path: Path, key: str, metadata: dict[str, str], *, only_new: bool) -> bool:
        """Upload the file at `path` to `key`, whole or not at all; False if `only_new` and
        an object is there already (412)."""
        condition = {"IfNoneMatch": "*"} if only_new else {}
        size = path.stat().st_size
        try:
            if size < MULTIPART_AT:
                with open(path, "rb") as body:
                    self._s3("put_object", Key=key, Body=body, Metadata=metadata, **condition)
                return True
            return self._multipart(path, key, metadata, condition)
        except Exception as exc:
            if _code(exc) in ("PreconditionFailed", "412"):
                return False
            raise self._failed("upload", key, exc) from exc

    def _multipart(
        self, path: Path, key: str, metadata: dict[str, str], condition: dict[str, str]
    ) -> bool:
        upload = self._s3("create_multipart_upload", Key=key, Metadata=metadata)["UploadId"]
        try:
            parts = []
            with open(path, "rb") as body:
                number = 1
                while chunk := body.read(PART_SIZE):
                    done = self._s3(
                        "upload_part", Key=key, UploadId=upload, PartNumber=number, Body=chunk
                    )
                    parts.append({"ETag": done["ETag"], "PartNumber": number})
                    number += 1
            self._s3(
                "complete_multipart_upload",
                Key=key,
                UploadId=upload,
                MultipartUpload={"Parts": parts},
                **condition,
            )
            return True
        except BaseException:
            with contextlib.suppress(Exception):  # else `doctor --repair` aborts it
                self._s3("abort_multipart_upload", Key=key, UploadId=upload)
            raise

    def _failed(self, what: str, key: str, exc: Exception) -> Exception:
        if isinstance(exc, UsageError | StoreError):
            return exc
        return StoreError(
            f"could not {what} {self.url(key)}: {type(exc).__name__}: {first_line(exc)}",
            "check the store's server and try again",
        )

    def reject(self, staged: Staged, materialization_id: str) -> None:
        if staged.location.startswith(HANDED_OVER):
            return  # the worker kept it as rejected already
        temp = self.cache.staged_path(staged)
        key = self._kept_key(staged.unit, materialization_id, "rejected")
        if temp.exists():
            self._upload(temp, key, {SHA_KEY: _sha256(temp)}, only_new=False)
        self.cache.discard(staged)

    def discard(self, staged: Staged) -> None:
        """Drop a staged output (a worker's upload stays: an orphan `store gc` removes)."""
        if not staged.location.startswith(HANDED_OVER):
            self.cache.discard(staged)

    def keep_quarantine(self, unit: Unit, materialization_id: str, frame: Any) -> None:
        self.cache.keep_quarantine(unit, materialization_id, frame)
        path = self.cache.quarantine_path(unit, materialization_id)
        key = self._kept_key(unit, materialization_id, "quarantine")
        self._upload(path, key, {SHA_KEY: _sha256(path)}, only_new=False)

    def sync(self) -> None:
        """Nothing to do: an upload is durable when it returns."""

    # -- reading -------------------------------------------------------------------------

    def _cached(self, unit: Unit, data_version: str) -> Path:
        """The cached copy of the published data, fetched if the cache has none."""
        path = self.cache.path_for(unit, data_version)
        if not path.is_file():
            self._fetch(self.key(unit, data_version), path, unit.asset)
        return path

    def _cached_kept(self, unit: Unit, materialization_id: str, kind: Kept) -> Path:
        path = self.cache._kept_path(unit, materialization_id, kind)
        if not path.is_file():
            self._fetch(self._kept_key(unit, materialization_id, kind), path, unit.asset)
        return path

    def _fetch(self, key: str, path: Path, asset: str) -> None:
        """Download `key` to `path` (whole, or not at all); a StoreError naming the asset
        if there is no such object."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            temp = self._download(key, path.parent)
        except StoreError as exc:
            if "missing" in exc.message:
                raise StoreError(
                    f"the stored data of asset '{asset}' is missing ({self.url(key)})",
                    f"re-create it with `vibepiper materialize {asset} --force`",
                ) from None
            raise
        os.replace(temp, path)

    def _download(self, key: str, folder: Path) -> Path:
        """`key` downloaded to a temporary file in `folder` (removed if the writer dies)."""
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".fetch.{secrets.token_hex(4)}.{os.getpid()}{TMP_SUFFIX}"
        try:
            found = self._s3("get_object", Key=key)
            with open(temp, "wb") as out:
                for chunk in found["Body"].iter_chunks(1 << 20):
                    out.write(chunk)
        except Exception as exc:
            temp.unlink(missing_ok=True)
            if _code(exc) in ("NoSuchKey", "404"):
                raise StoreError(f"{self.url(key)} is missing", "") from None
            raise self._failed("read", key, exc) from exc
        return temp

    def _verified(self, path: Path, fetch: Callable[[], Path], read: Callable[[], Any]) -> Any:
        """`read()` of a cached copy; a copy that fails its verification is dropped and
        fetched again once (the object itself is then what is judged)."""
        try:
            return read()
        except StoreError:
            path.unlink(missing_ok=True)
            fetch()
            try:
                return read()
            except StoreError as exc:
                raise StoreError(
                    exc.message.replace(str(path), self._where_of(path)), exc.hint
                ) from None

    def _where_of(self, path: Path) -> str:
        rel = path.relative_to(self.cache_root).as_posix()
        return self.url(f"{self.prefix}{rel}")

    def read(self, unit: Unit, data_version: str) -> pd.DataFrame:
        frame: pd.DataFrame = self._read(unit, data_version, self.cache.read)
        return frame

    def read_table(self, unit: Unit, data_version: str) -> pa.Table:
        return self._read(unit, data_version, self.cache.read_table)

    def _read(self, unit: Unit, data_version: str, reader: Callable[[Unit, str], Any]) -> Any:
        """`reader` (the cache's read) of the published data, fetched if not cached."""
        path = self._cached(unit, data_version)
        return self._verified(
            path, lambda: self._cached(unit, data_version), lambda: reader(unit, data_version)
        )

    def read_kept(self, unit: Unit, materialization_id: str, kind: Kept) -> pd.DataFrame:
        path = self._cached_kept(unit, materialization_id, kind)
        return self._verified(
            path,
            lambda: self._cached_kept(unit, materialization_id, kind),
            lambda: self.cache.read_kept(unit, materialization_id, kind),
        )

    def local_path(self, unit: Unit, data_version: str) -> Path:
        path = self._cached(unit, data_version)
        if self.cache.damage(unit, data_version):
            path.unlink(missing_ok=True)
            self._cached(unit, data_version)
        return self.cache.local_path(unit, data_version)

    def dataset(self, unit: Unit, data_version: str) -> Any | None:
        try:
            self.local_path(unit, data_version)
        except StoreError as exc:
            if "is missing" in exc.message:
                return None
            raise
        return self.cache.dataset(unit, data_version)

    def kept_dataset(self, unit: Unit, materialization_id: str, kind: Kept) -> Any | None:
        try:
            self._cached_kept(unit, materialization_id, kind)
        except StoreError as exc:
            if "is missing" in exc.message:
                return None
            raise
        return self.cache.kept_dataset(unit, materialization_id, kind)

    # -- judging -------------------------------------------------------------------------

    def _object(self, key: str) -> dict[str, Any] | None:
        """The object's HEAD (size, ETag, metadata), or None if there is none."""
        try:
            found: dict[str, Any] = self._s3("head_object", Key=key)
        except Exception as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._failed("look at", key, exc) from exc
        return found

    def damage(self, unit: Unit, data_version: str) -> str:
        """ "missing", "damaged" (not an object this store wrote for that asset and
        version), or "": one HEAD of the object."""
        if not VERSION_RE.fullmatch(data_version):
            return f"missing (the catalog records an invalid data version {data_version!r})"
        found = self._object(self.key(unit, data_version))
        if found is None:
            return "missing"
        return _metadata_damage(found, unit.asset, data_version)

    def damage_many(self, versions: Mapping[Unit, str]) -> dict[Unit, str]:
        """`damage` of each: one listing of the store, and a HEAD only of the objects not
        found sound before with the same ETag (an object is never modified: one replaced
        has another ETag). What was found sound is remembered in the cache folder."""
        if not versions:
            return {}
        listed = {item["Key"]: item.get("ETag", "") for item in self._listing(self.prefix)}
        sound = self._sound_memo()
        before = dict(sound)
        found: dict[Unit, str] = {}
        for unit, version in versions.items():
            if not VERSION_RE.fullmatch(version):
                found[unit] = self.damage(unit, version)
                continue
            key = self.key(unit, version)
            etag = listed.get(key)
            if etag is None:
                found[unit] = "missing"
            elif sound.get(key) == etag:
                found[unit] = ""
            else:
                found[unit] = self.damage(unit, version)
                if not found[unit]:
                    sound[key] = etag
        if sound != before:
            self._save_sound(sound)
        return found

    def _sound_memo(self) -> dict[str, str]:
        if self._sound is None:
            try:
                loaded = json.loads((self.cache_root / SOUND_MEMO).read_text())
            except (OSError, ValueError):
                loaded = {}
            valid = isinstance(loaded, dict)
            self._sound = {k: v for k, v in (loaded.items() if valid else ()) if isinstance(v, str)}
        return self._sound

    def _save_sound(self, sound: dict[str, str]) -> None:
        """Written whole under a temporary name, then renamed (a lost update only costs
        HEADs again)."""
        path = self.cache_root / SOUND_MEMO
        temp = path.with_name(f".{SOUND_MEMO}.{os.getpid()}{TMP_SUFFIX}")
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            temp.write_text(json.dumps(sound))
            os.replace(temp, path)

    def verify(
        self, unit: Unit, data_version: str, *, full: bool = True, source: bool = False
    ) -> str:
        """What is wrong with the object (downloaded afresh, never the cached copy, with
        `full`; else its HEAD), or ""."""
        try:
            key = self.key(unit, data_version)
        except StoreError as exc:
            return exc.message
        damage = self.damage(unit, data_version)
        if damage or not full:
            return damage
        folder = self.cache_root / unit.asset
        try:
            temp = self._download(key, folder)
        except StoreError as exc:
            return exc.message
        try:
            problem = files.problem(temp, unit.asset, data_version, full=True, source=source)
            if not problem:
                os.replace(temp, self.cache.path_for(unit, data_version))
            return problem
        finally:
            temp.unlink(missing_ok=True)

    # -- looking after the store (doctor, gc) -------------------------------------------

    def _listing(self, prefix: str) -> Iterator[dict[str, Any]]:
        token: dict[str, str] = {}
        while True:
            page = self._s3("list_objects_v2", Prefix=prefix, **token)
            yield from page.get("Contents", [])
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def _uploads(self) -> Iterator[dict[str, Any]]:
        marker: dict[str, str] = {}
        while True:
            page = self._s3("list_multipart_uploads", Prefix=self.prefix, **marker)
            yield from page.get("Uploads", [])
            if not page.get("IsTruncated"):
                return
            marker = {
                "KeyMarker": page["NextKeyMarker"],
                "UploadIdMarker": page["NextUploadIdMarker"],
            }

    def entries(self) -> Iterator[Entry]:
        """Every object under the prefix, in key order (published, rejected, quarantined;
        what the store did not write is "foreign"), then every unfinished upload as a
        "temporary" entry: the store cannot tell a live writer's from a dead one's, so
        they are removed only when no run of the project is going on (doctor --repair
        waits for its turn) or when older than the grace period."""
        for item in self._listing(self.prefix):
            key = item["Key"]
            modified = item["LastModified"].timestamp()
            entry = self._entry_of(key[len(self.prefix) :], self.url(key), modified)
            if entry is not None:
                yield entry
        for upload in self._uploads():
            yield self._upload_entry(upload)

    def _upload_entry(self, upload: dict[str, Any]) -> Entry:
        rest = upload["Key"][len(self.prefix) :]
        asset = rest.split("/", 1)[0]
        return Entry(
            "temporary",
            Unit(asset) if NAME_RE.fullmatch(asset) else None,
            f"{rest}#{upload['UploadId']}",
            f"{self.url(upload['Key'])} (unfinished upload {upload['UploadId'][:16]})",
            modified=upload["Initiated"].timestamp(),
        )

    def _entry_of(self, rest: str, where: str, modified: float) -> Entry | None:
        parts = rest.split("/")
        asset = parts[0]
        unit = Unit(asset) if NAME_RE.fullmatch(asset) else None
        stem = parts[-1].removesuffix(".parquet")
        if unit is not None and parts[-1].endswith(".parquet"):
            if len(parts) == 2 and VERSION_RE.fullmatch(stem):
                return Entry("published", unit, stem, where, modified=modified)
            if len(parts) == 3 and parts[1] in KEPT and MATERIALIZATION_RE.fullmatch(stem):
                kind: Kept = "rejected" if parts[1] == "rejected" else "quarantine"
                return Entry(kind, unit, stem, where, modified=modified)
            if len(parts) == 3 and parts[1] == "corrupt":
                return None  # set aside by doctor, to look at
        detail = f"an object this store did not write ({where})"
        return Entry("foreign", unit, rest, where, detail, modified=modified)

    def remove(self, entry: Entry) -> None:
        """Remove an orphan object, or abort an unfinished upload (never a foreign one)."""
        if entry.kind == "foreign" or entry.unit is None:
            raise StoreError(
                f"{entry.location} is not removed: it is not the store's",
                "look at it, and remove it by hand if it should go",
            )
        if entry.kind == "temporary":
            rest, _, upload = entry.key.rpartition("#")
            if not rest.startswith(f"{entry.unit.asset}/") or not upload:
                raise StoreError(f"{entry.key!r} names no unfinished upload", "")
            self._abort(self.prefix + rest, upload)
            return
        if entry.kind == "published":
            key = self.key(entry.unit, entry.key)
            self.cache.path_for(entry.unit, entry.key).unlink(missing_ok=True)
        else:
            kind: Kept = "rejected" if entry.kind == "rejected" else "quarantine"
            key = self._kept_key(entry.unit, entry.key, kind)
        self._s3("delete_object", Key=key)

    def set_aside(self, entry: Entry) -> str:
        """Copy damaged published data to its asset's `corrupt/` folder, then delete it."""
        if entry.kind != "published" or entry.unit is None:
            raise OSError(f"{entry.location} is not published data: it is not moved")
        key = self.key(entry.unit, entry.key)
        aside = (
            f"{self.prefix}{entry.unit.asset}/corrupt/{entry.key}.{secrets.token_hex(4)}.parquet"
        )
        try:
            self._s3("copy_object", Key=aside, CopySource={"Bucket": self.bucket, "Key": key})
            self._s3("delete_object", Key=key)
        except StoreError as exc:
            raise OSError(exc.message) from None
        self.cache.path_for(entry.unit, entry.key).unlink(missing_ok=True)
        return self.url(aside)

    def begin_writing(self) -> str:
        self.clean_temp_files()  # (the cache is small; the uploads are one listing)
        return ""

    def end_writing(self, ticket: str, assets: Iterable[str]) -> None:
        return None  # what it left is for the next run's begin_writing

    def clean_temp_files(self) -> list[str]:
        """What dead local writers left staged, and the uploads unfinished for longer than
        the grace period (a run's own workers may be uploading: younger ones are left)."""
        removed = self.cache.clean_temp_files()
        now = time.time()
        for upload in self._uploads():
            if now - upload["Initiated"].timestamp() >= self.grace:
                self._abort(upload["Key"], upload["UploadId"])
                removed.append(self._upload_entry(upload).location)
        return removed

    def _abort(self, key: str, upload: str) -> None:
        with contextlib.suppress(Exception):  # finished or aborted meanwhile
            self._s3("abort_multipart_upload", Key=key, UploadId=upload)

    def is_linked(self) -> str:
        return ""

    def describe(self) -> str:
        return self._where()


class _DetachedStore(ObjectStore):
    """An `ObjectStore` sent to a worker: it opens its own cache where it runs."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _reopen, (self.settings, None, self.grace)


_: type[Store] = ObjectStore  # mypy checks that it implements the interface


def _reopen(settings: StoreSettings, cache: Path | None, grace: float) -> ObjectStore:
    """The store unpickled in a worker. With no cache given, it stays detached through
    every pickling on the way (Dask's scheduler unpickles and pickles tasks again): each
    machine that opens it picks a cache of its own."""
    if cache is None:
        return _DetachedStore(settings, grace=grace)
    return ObjectStore(settings, cache, grace=grace)


def worker_cache(settings: StoreSettings) -> Path:
    """The cache of a machine that is not the project's: `VIBEPIPER_CACHE`, else a folder
    of this user's in the temporary folder, one per store."""
    given = os.environ.get("VIBEPIPER_CACHE")
    base = Path(given) if given else Path(tempfile.gettempdir()) / f"vibepiper-cache-{os.getuid()}"
    which = hashlib.sha256(f"{settings.endpoint_url} {settings.url}".encode()).hexdigest()[:16]
    return base / which


def _metadata_damage(found: dict[str, Any], asset: str, version: str) -> str:
    meta = found.get("Metadata", {})
    if found.get("ContentLength", 0) < 12 or SHA_KEY not in meta:
        return "damaged"
    if meta.get(ASSET_KEY, asset) != asset or meta.get(VERSION_KEY, version) != version:
        return "damaged"
    return ""


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    code = str(response.get("Error", {}).get("Code", ""))
    return code or str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
