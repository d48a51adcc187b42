"""Backups as objects in an S3-compatible bucket (aiobotocore; see docs/benchmarks.md for why).

A writer streams a backup as a multipart upload: parts of a bounded size (8 MiB by default) are
cut from what is written, at most ``max_inflight_parts`` are uploading at once (``write`` waits
for the oldest when that many are out), so memory stays bounded whatever the backup's size. Each
part carries its ``x-amz-checksum-sha256``, which the server checks (``BadDigest``) and echoes,
and which is checked again here. Nothing is visible under the key until ``commit()`` completes the
upload (a small backup, under one part, is a single ``PutObject``); then the stored size is read
back. Any failure aborts the upload; an upload that could not be aborted (the server was down, the
process died) is found by ``remove_orphan_temporaries`` (the reconciler) and aborted later.

Keys are validated as for local storage and live under an optional ``prefix``. Errors are
``StorageError`` with a message a person can act on: wrong keys, a missing bucket, no permission,
an unreachable endpoint. The secret key is never in a message, a ``repr`` or a log line.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from app.storage.base import StorageError
from app.storage.local import validate_key

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MiB
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
DEFAULT_INFLIGHT_PARTS = 2
PROBE_PREFIX = ".dbkeep-probe-"
_READ_RESUMES = 3

_NOT_FOUND = {"NoSuchKey", "NotFound", "404"}
_WRONG_SECRET = {"SignatureDoesNotMatch"}
_WRONG_KEY_ID = {"InvalidAccessKeyId", "InvalidToken", "ExpiredToken", "InvalidClientTokenId"}
_DENIED = {"AccessDenied", "AllAccessDisabled", "Forbidden", "403", "AccountProblem"}
_BUSY = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ServiceUnavailable",
    "InternalError",
    "503",
    "500",
    "502",
    "504",
}
_BAD_DIGEST = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"}
_WRONG_REGION = {"AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraint"}


def part_size_for(number: int, base: int) -> int:
    """The size of part ``number`` (1-based): ``base`` for the first 5,000 parts, then doubled
    (7,500) and doubled again, so that 10,000 parts hold 20,000 times ``base`` (160 GiB at 8 MiB)
    while memory stays at a few parts."""
    if number <= 5_000:
        size = base
    elif number <= 7_500:
        size = base * 2
    else:
        size = base * 4
    return min(size, MAX_PART_SIZE)


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def _error_code(exc: BaseException) -> tuple[str, int]:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", "") or "")
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def _is_not_found(exc: BaseException) -> bool:
    code, status = _error_code(exc)
    return code in _NOT_FOUND or (status == 404 and code != "NoSuchBucket")


class S3Storage:
    """Backups stored as objects under ``prefix`` in ``bucket``."""

    def __init__(
        self,
        *,
        bucket: str,
        access_key_id: str,
        secret_access_key: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        prefix: str = "",
        force_path_style: bool | None = None,
        storage_class: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        max_inflight_parts: int = DEFAULT_INFLIGHT_PARTS,
        max_attempts: int = 5,
        retry_mode: str = "adaptive",
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        resolver: Any = None,
    ) -> None:
        if not bucket:
            raise ValueError("an s3 destination needs a bucket")
        if not access_key_id or not secret_access_key:
            raise ValueError("an s3 destination needs an access key ID and a secret access key")
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError("the part size must be between 5 MiB and 5 GiB")
        if max_inflight_parts < 1:
            raise ValueError("at least one part must be allowed in flight")
        if retry_mode not in {"standard", "adaptive", "legacy"}:
            raise ValueError("retry_mode must be standard, adaptive or legacy")
        self.bucket = bucket
        self.endpoint_url = endpoint_url or None
        self.region = region or "us-east-1"
        self.prefix = _normalize_prefix(prefix)
        self.storage_class = storage_class or None
        self.part_size = part_size
        self.max_inflight_parts = max_inflight_parts
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        if force_path_style is None:
            self.addressing_style = "auto"
        else:
            self.addressing_style = "path" if force_path_style else "virtual"
        self._config_args: dict[str, Any] = {
            "region_name": self.region,
            "signature_version": "s3v4",
            "s3": {"addressing_style": self.addressing_style},
            "retries": {"max_attempts": max_attempts, "mode": retry_mode},
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_pool_connections": max_inflight_parts + 2,
            # The SHA-256 of every part is ours, sent and checked explicitly; no extra CRCs.
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
            "user_agent_extra": "dbkeep",
        }
        if resolver is not None:
            self._config_args["connector_args"] = {"resolver": resolver}
        self._session: Any = None

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint={self.where!r})"

    @property
    def where(self) -> str:
        """The endpoint's host (no credentials, no path), for messages."""
        if not self.endpoint_url:
            return f"s3.{self.region}.amazonaws.com"
        parts = urlsplit(self.endpoint_url)
        return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "?"

    def object_key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def client(self) -> Any:
        """A new aiobotocore S3 client (an async context manager)."""
        from aiobotocore.config import AioConfig
        from aiobotocore.session import AioSession

        if self._session is None:
            session = AioSession()
            # Nothing from the environment's AWS profile files: only this destination's config.
            session.set_config_variable("config_file", "/dev/null")
            session.set_config_variable("credentials_file", "/dev/null")
            self._session = session
        return self._session.create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self._access_key_id,
            aws_secret_access_key=self._secret_access_key,
            config=AioConfig(**self._config_args),
        )

    def error(self, action: str, exc: BaseException) -> StorageError:
        """``exc`` as a ``StorageError`` naming what to fix; never the secret, never the raw
        server message."""
        return _storage_error(action, exc, bucket=self.bucket, where=self.where)

    async def check_writable(self) -> None:
        """Write and delete a probe object: wrong keys, a missing bucket or no permission fail
        here, before any work starts."""
        key = f"{self.prefix}{PROBE_PREFIX}{secrets.token_hex(6)}"
        async with self.client() as client:
            try:
                await client.put_object(Bucket=self.bucket, Key=key, Body=b"")
            except Exception as exc:
                raise self.error("write to the bucket", exc) from None
            try:
                await client.delete_object(Bucket=self.bucket, Key=key)
            except Exception as exc:
                raise self.error("delete from the bucket", exc) from None

    async def open_writer(self, key: str) -> S3Writer:
        object_key = self.object_key(key)
        stack = AsyncExitStack()
        client = await stack.enter_async_context(self.client())
        return S3Writer(self, key, object_key, client, stack)

    async def read(
        self, key: str, *, chunk_size: int = MiB, offset: int = 0
    ) -> AsyncIterator[bytes]:
        """Stream the object from ``offset`` in chunks of ``chunk_size`` (the last shorter);
        ``FileNotFoundError`` when it is gone. A connection lost mid-stream is resumed with a
        ranged request for the same version (``If-Match`` its ETag), a few times at most."""
        object_key = self.object_key(key)
        if chunk_size < 1 or offset < 0:
            raise ValueError("chunk_size must be positive and offset not negative")
        position = offset
        etag: str | None = None
        resumes = 0
        total: int | None = None
        pending = bytearray()
        async with self.client() as client:
            while True:
                params: dict[str, Any] = {"Bucket": self.bucket, "Key": object_key}
                if position:
                    params["Range"] = f"bytes={position}-"
                if etag:
                    params["IfMatch"] = etag
                try:
                    response = await client.get_object(**params)
                except Exception as exc:
                    code, status = _error_code(exc)
                    if _is_not_found(exc):
                        raise FileNotFoundError(f"no backup object under {key}") from None
                    if code == "InvalidRange" or status == 416:
                        break  # offset at the end: nothing more
                    if code == "PreconditionFailed" or status == 412:
                        raise StorageError(
                            "the backup object changed while it was being read"
                        ) from None
                    raise self.error("read the backup object", exc) from None
                etag = etag or response.get("ETag")
                if total is None:
                    total = position + int(response.get("ContentLength") or 0)
                body = response["Body"]
                pieces = body.iter_chunks(chunk_size)
                broken = False
                try:
                    while True:
                        try:
                            piece = await pieces.__anext__()
                        except StopAsyncIteration:
                            break
                        except Exception as exc:
                            resumes += 1
                            if resumes > _READ_RESUMES:
                                raise self.error("read the backup object", exc) from None
                            broken = True
                            break
                        position += len(piece)
                        pending += piece
                        while len(pending) >= chunk_size:
                            out = bytes(pending[:chunk_size])
                            del pending[:chunk_size]
                            yield out
                finally:
                    body.close()
                if not broken and position < total:  # the connection ended early
                    resumes += 1
                    if resumes > _READ_RESUMES:
                        raise StorageError("the backup object's download kept ending early")
                    broken = True
                if broken:
                    await asyncio.sleep(0.2 * 2**resumes)
                    continue  # resume from ``position``, same version
                break
        if pending:
            yield bytes(pending)

    async def size(self, key: str) -> int | None:
        """The stored size, or ``None`` when the object does not exist (a missing bucket is an
        error, not a vanished object)."""
        object_key = self.object_key(key)
        async with self.client() as client:
            try:
                response = await client.head_object(Bucket=self.bucket, Key=object_key)
            except Exception as exc:
                if _is_not_found(exc):
                    await self._bucket_exists(client)
                    return None
                error = await self._explained("read the backup object", exc, client, object_key)
                raise error from None
        return int(response["ContentLength"])

    async def _explained(
        self, action: str, exc: BaseException, client: Any, object_key: str
    ) -> StorageError:
        """The error of a HEAD request, which has no body to name its cause: a bare 403 is
        asked again as a one-byte GET, whose answer says whether the key or the secret is
        wrong or the permission missing."""
        code, status = _error_code(exc)
        if status == 403 and code in {"403", "Forbidden", ""}:
            try:
                response = await client.get_object(
                    Bucket=self.bucket, Key=object_key, Range="bytes=0-0"
                )
                response["Body"].close()
            except Exception as detailed:
                if _error_code(detailed)[0] not in {"", "403"}:
                    return self.error(action, detailed)
        return self.error(action, exc)

    async def _bucket_exists(self, client: Any) -> None:
        """Raise a clear ``StorageError`` when the bucket itself is missing (a HEAD on an object
        answers a bare 404 either way)."""
        try:
            await client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            code, status = _error_code(exc)
            if code in {"404", "NoSuchBucket", "NotFound"} or status == 404:
                raise StorageError(f"the bucket {self.bucket!r} does not exist") from None
            raise self.error("read the bucket", exc) from None

    async def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        object_key = self.object_key(key)
        async with self.client() as client:
            try:
                await client.delete_object(Bucket=self.bucket, Key=object_key)
            except Exception as exc:
                if _is_not_found(exc):
                    return
                raise self.error("delete the backup object", exc) from None

    async def remove_orphan_temporaries(self, *, older_than: timedelta) -> int:
        """Abort multipart uploads under the prefix started more than ``older_than`` ago (left by
        a writer that died or could not reach the server to abort) and delete stale probe
        objects; return how many."""
        cutoff = datetime.now(UTC) - older_than
        removed = 0
        async with self.client() as client:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
            while True:
                try:
                    page = await client.list_multipart_uploads(**params)
                except Exception as exc:
                    raise self.error("list unfinished uploads", exc) from None
                for upload in page.get("Uploads", []):
                    initiated = upload.get("Initiated")
                    if isinstance(initiated, datetime):
                        if initiated.tzinfo is None:
                            initiated = initiated.replace(tzinfo=UTC)
                        if initiated > cutoff:
                            continue
                    try:
                        await client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                    except Exception as exc:
                        if _error_code(exc)[0] == "NoSuchUpload":
                            continue
                        raise self.error("abort an unfinished upload", exc) from None
                    removed += 1
                if not page.get("IsTruncated"):
                    break
                params["KeyMarker"] = page.get("NextKeyMarker", "")
                params["UploadIdMarker"] = page.get("NextUploadIdMarker", "")
            removed += await self._remove_stale_probes(client, cutoff)
        return removed

    async def _remove_stale_probes(self, client: Any, cutoff: datetime) -> int:
        """Probe objects ``check_writable`` left when it was interrupted between its write and
        its delete."""
        removed = 0
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + PROBE_PREFIX}
        while True:
            try:
                page = await client.list_objects_v2(**params)
            except Exception as exc:
                raise self.error("list probe objects", exc) from None
            for item in page.get("Contents", []):
                modified = item.get("LastModified")
                if isinstance(modified, datetime):
                    if modified.tzinfo is None:
                        modified = modified.replace(tzinfo=UTC)
                    if modified > cutoff:
                        continue
                try:
                    await client.delete_object(Bucket=self.bucket, Key=item["Key"])
                except Exception as exc:
                    raise self.error("delete a probe object", exc) from None
                removed += 1
            if not page.get("IsTruncated") or not page.get("NextContinuationToken"):
                return removed
            params["ContinuationToken"] = page["NextContinuationToken"]

    async def free_bytes(self) -> int | None:
        """A bucket has no free space to tell."""
        return None


class S3Writer:
    """One backup as a multipart upload (or one PutObject when it fits in a part); visible under
    its key only once ``commit()`` completed it."""

    def __init__(
        self, storage: S3Storage, key: str, object_key: str, client: Any, stack: AsyncExitStack
    ) -> None:
        self.key = key
        self._storage = storage
        self._object_key = object_key
        self._client = client
        self._stack: AsyncExitStack | None = stack
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: dict[int, dict[str, Any]] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        self._next_part = 1
        self._size = 0
        self._failure: StorageError | None = None
        self._done = False

    @property
    def upload_id(self) -> str | None:
        return self._upload_id

    def thread_writer(self) -> Callable[[memoryview], None] | None:
        return None  # the client lives on the event loop

    def _check_open(self) -> None:
        if self._done:
            raise StorageError("the backup upload is already closed")
        if self._failure is not None:
            raise self._failure

    async def write(self, chunk: bytes | memoryview) -> None:
        if self._done:
            raise StorageError("the backup upload is already closed")
        try:
            self._check_open()  # a part that failed meanwhile fails the writer (and aborts)
            self._buffer += chunk
            self._size += len(chunk)
            while len(self._buffer) >= (size := part_size_for(self._next_part, self._part_base)):
                # A slot first, the copy after: at most max_inflight_parts parts exist besides
                # the buffer, however fast the writer and however slow the bucket.
                await self._reserve_slot()
                with memoryview(self._buffer) as view:
                    part = bytes(view[:size])
                del self._buffer[:size]
                self._start_part(part)
        except BaseException:
            await self._abort_after_failure()
            raise

    @property
    def _part_base(self) -> int:
        return self._storage.part_size

    async def _reserve_slot(self) -> None:
        """Start the multipart upload if needed and wait until another part may be sent."""
        if self._next_part > MAX_PARTS:
            raise StorageError("the backup is too large for a multipart upload with this part size")
        if self._upload_id is None:
            await self._create_upload()
        # Larger parts (past part 5,000) go out fewer at a time: the bytes in flight stay at
        # max_inflight_parts base-sized parts, so memory does not grow with the backup.
        size = part_size_for(self._next_part, self._part_base)
        allowed = max(1, self._storage.max_inflight_parts * self._part_base // size)
        while len(self._inflight) >= allowed:
            await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
            self._check_open()

    def _start_part(self, data: bytes) -> None:
        number = self._next_part
        self._next_part += 1
        task = asyncio.create_task(self._upload_part(number, data))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _create_upload(self) -> None:
        params: dict[str, Any] = {
            "Bucket": self._storage.bucket,
            "Key": self._object_key,
            "ChecksumAlgorithm": "SHA256",
        }
        if self._storage.storage_class:
            params["StorageClass"] = self._storage.storage_class
        try:
            response = await self._client.create_multipart_upload(**params)
        except Exception as exc:
            raise self._storage.error("start the upload", exc) from None
        self._upload_id = response["UploadId"]

    async def _upload_part(self, number: int, data: bytes) -> None:
        try:
            digest = await asyncio.to_thread(_sha256_b64, data)
            response = await self._client.upload_part(
                Bucket=self._storage.bucket,
                Key=self._object_key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=data,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=digest,
            )
            echoed = response.get("ChecksumSHA256")
            if echoed is not None and echoed != digest:
                raise StorageError(f"the S3 server stored part {number} with another checksum")
            self._parts[number] = {
                "PartNumber": number,
                "ETag": response["ETag"],
                "ChecksumSHA256": digest,
            }
        except asyncio.CancelledError:
            raise
        except StorageError as exc:
            self._failure = self._failure or exc
        except Exception as exc:
            self._failure = self._failure or self._storage.error("upload a part", exc)

    async def _wait_parts(self) -> None:
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        self._check_open()

    async def commit(self) -> int:
        """Upload what is left, complete the upload, check the stored size; return it."""
        if self._done:
            raise StorageError("the backup upload is already closed")
        try:
            self._check_open()
            if self._upload_id is None:
                await self._put_whole()
            else:
                if self._buffer:
                    await self._reserve_slot()
                    data, self._buffer = bytes(self._buffer), bytearray()
                    self._start_part(data)
                await self._wait_parts()
                await self._complete()
            stored = await self._stored_size()
            if stored != self._size:
                with contextlib.suppress(Exception):
                    await self._client.delete_object(
                        Bucket=self._storage.bucket, Key=self._object_key
                    )
                raise StorageError(
                    f"the S3 server stored {stored} bytes of {self._size}: the copy was removed"
                )
        except BaseException:
            await self._abort_after_failure()
            raise
        self._done = True
        await self._close_client()
        return self._size

    async def _put_whole(self) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        digest = await asyncio.to_thread(_sha256_b64, data)
        params: dict[str, Any] = {
            "Bucket": self._storage.bucket,
            "Key": self._object_key,
            "Body": data,
            "ChecksumAlgorithm": "SHA256",
            "ChecksumSHA256": digest,
        }
        if self._storage.storage_class:
            params["StorageClass"] = self._storage.storage_class
        try:
            response = await self._client.put_object(**params)
        except Exception as exc:
            raise self._storage.error("upload the backup", exc) from None
        echoed = response.get("ChecksumSHA256")
        if echoed is not None and echoed != digest:
            raise StorageError("the S3 server stored the backup with another checksum")

    async def _complete(self) -> None:
        numbers = sorted(self._parts)
        if numbers != list(range(1, self._next_part)):
            raise StorageError("a part of the backup upload is missing")
        parts = [self._parts[n] for n in numbers]
        try:
            response = await self._client.complete_multipart_upload(
                Bucket=self._storage.bucket,
                Key=self._object_key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
            )
        except Exception as exc:
            raise self._storage.error("complete the upload", exc) from None
        echoed = response.get("ChecksumSHA256")
        if echoed and "-" in echoed:  # composite: SHA-256 of the parts' digests, "-N"
            joined = b"".join(base64.b64decode(p["ChecksumSHA256"]) for p in parts)
            expected = f"{_sha256_b64(joined)}-{len(parts)}"
            if echoed != expected:
                with contextlib.suppress(Exception):
                    await self._client.delete_object(
                        Bucket=self._storage.bucket, Key=self._object_key
                    )
                raise StorageError("the S3 server assembled the parts with another checksum")
        self._upload_id = None  # completed: nothing left to abort

    async def _stored_size(self) -> int:
        try:
            head = await self._client.head_object(Bucket=self._storage.bucket, Key=self._object_key)
        except Exception as exc:
            raise self._storage.error("check the uploaded backup", exc) from None
        return int(head["ContentLength"])

    async def _abort_after_failure(self) -> None:
        with contextlib.suppress(Exception):
            await self.abort()

    async def abort(self) -> None:
        """Stop the parts still uploading and abort the multipart upload. Safe to call twice or
        after a failed commit; if the server can't be reached the upload stays until
        ``remove_orphan_temporaries`` aborts it."""
        if self._done:
            return
        self._done = True
        self._buffer = bytearray()
        for task in list(self._inflight):
            task.cancel()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        upload_id, self._upload_id = self._upload_id, None
        try:
            if upload_id is not None:
                with contextlib.suppress(Exception):
                    await self._client.abort_multipart_upload(
                        Bucket=self._storage.bucket, Key=self._object_key, UploadId=upload_id
                    )
        finally:
            await self._close_client()

    async def _close_client(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.aclose()


def _normalize_prefix(prefix: str | None) -> str:
    prefix = (prefix or "").strip("/")
    if not prefix:
        return ""
    for segment in prefix.split("/"):
        if segment in {"", ".", ".."} or any(ord(c) < 32 for c in segment):
            raise ValueError("the prefix must be a plain /-separated path")
    return prefix + "/"


def _storage_error(action: str, exc: BaseException, *, bucket: str, where: str) -> StorageError:
    if isinstance(exc, StorageError):
        return exc
    from botocore import exceptions as bx

    code, status = _error_code(exc)
    if isinstance(exc, bx.ClientError):
        if code in _WRONG_SECRET:
            return StorageError(
                "the S3 server refused the secret access key (the signature does not match)"
            )
        if code in _WRONG_KEY_ID:
            return StorageError("the S3 server does not know this access key ID")
        if code == "NoSuchBucket":
            return StorageError(f"the bucket {bucket!r} does not exist")
        if code in _WRONG_REGION:
            return StorageError(f"the bucket {bucket!r} is in another region than the one set")
        if code in _DENIED or status == 403:
            return StorageError(f"no permission to {action} (bucket {bucket!r}: access denied)")
        if code in _BAD_DIGEST:
            return StorageError(
                f"could not {action}: the S3 server received other bytes than were sent",
                transient=True,
            )
        if code in _BUSY or status >= 500:
            return StorageError(
                f"could not {action}: the S3 server is busy or failing ({code or status})",
                transient=True,
            )
        if code == "NoSuchUpload":
            return StorageError(f"could not {action}: the upload was aborted on the server")
        return StorageError(f"could not {action}: the S3 server answered {code or status}")
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return StorageError("the S3 access key ID or secret access key is missing")
    if isinstance(
        exc,
        bx.EndpointConnectionError
        | bx.ConnectTimeoutError
        | bx.ReadTimeoutError
        | bx.ConnectionClosedError
        | bx.HTTPClientError
        | bx.ResponseStreamingError
        | TimeoutError
        | ConnectionError,
    ):
        return StorageError(
            f"could not {action}: the S3 endpoint {where} can't be reached", transient=True
        )
    try:
        import aiohttp

        if isinstance(exc, aiohttp.ClientError):
            return StorageError(
                f"could not {action}: the S3 endpoint {where} can't be reached", transient=True
            )
    except ImportError:  # pragma: no cover - aiohttp comes with aiobotocore
        pass
    if isinstance(exc, bx.ParamValidationError):
        return StorageError(f"could not {action}: the request was refused by the S3 client")
    return StorageError(f"could not {action}: {type(exc).__name__}")


_TUNING = {
    "part_size",
    "max_inflight_parts",
    "max_attempts",
    "retry_mode",
    "connect_timeout",
    "read_timeout",
}


def s3_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """``S3Storage`` keyword arguments from an ``s3`` destination's config (contract part 2:
    ``endpoint_url``, ``bucket``, ``prefix``, ``region``, ``access_key_id``,
    ``secret_access_key``, ``force_path_style``, ``storage_class``; optionally ``part_size``,
    ``max_inflight_parts``, ``max_attempts``, ``retry_mode``, ``connect_timeout``,
    ``read_timeout``)."""
    bucket = config.get("bucket")
    if not isinstance(bucket, str) or not bucket:
        raise ValueError("an s3 destination needs a bucket")
    key_id, secret = config.get("access_key_id"), config.get("secret_access_key")
    if not isinstance(key_id, str) or not key_id or not isinstance(secret, str) or not secret:
        raise ValueError("an s3 destination needs an access key ID and a secret access key")
    endpoint = config.get("endpoint_url") or None
    if endpoint is not None:
        parts = urlsplit(str(endpoint))
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("the endpoint URL must be http(s)://host[:port]")
    force = config.get("force_path_style")
    options: dict[str, Any] = {
        "bucket": bucket,
        "access_key_id": key_id,
        "secret_access_key": secret,
        "endpoint_url": endpoint,
        "region": config.get("region") or None,
        "prefix": config.get("prefix") or "",
        "force_path_style": None if force is None else bool(force),
        "storage_class": config.get("storage_class") or None,
    }
    for name in _TUNING:
        if config.get(name) is not None:
            options[name] = config[name]
    return options
