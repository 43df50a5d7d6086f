"""Google Cloud Storage through the official client (obstore's GCS store is rejected by
fake-gcs-server). Compare-and-swap uses generation preconditions; the etag is the
object's generation.

``STORAGE_EMULATOR_HOST`` selects an emulator, used with anonymous credentials; otherwise
Google's default credentials and ``GOOGLE_CLOUD_PROJECT`` apply. Conditional writes go up
as single-request uploads (fake-gcs-server ignores preconditions on resumable ones);
larger files stream through a resumable session in one request, never held in memory.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, TypeVar

from sparkwing.errors import PreconditionFailedError, StorageError
from sparkwing.surfaces.objectstore.base import ObjectMeta, ObjectStore
from sparkwing.surfaces.objectstore.common import (
    DEFAULT_RETRY,
    ErrorContext,
    RetryPolicy,
    check_list_prefix,
    check_object_key,
    describe_location,
    normalize_prefix,
    write_atomically,
)

T = TypeVar("T")

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
EMULATOR_PROJECT = "test"
SINGLE_REQUEST_BYTES = 8 * 1024 * 1024  # files up to this go up as one multipart request
_CONTENT_TYPE = "application/octet-stream"


class _ChecksummedReader:
    """A file whose bytes update a CRC32C as an HTTP client streams them out."""

    def __init__(self, fh: BinaryIO, checksum: Any) -> None:
        self._fh = fh
        self._checksum = checksum

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._checksum.update(data)
        return data


class GcsObjectStore(ObjectStore):
    scheme: ClassVar[str] = "gcs"

    def __init__(
        self,
        bucket: str,
        prefix: str | None = None,
        *,
        endpoint: str | None = None,
        project: str | None = None,
        role: str = "",
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        if not bucket:
            raise StorageError("gcs store needs a bucket name")
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.project = project
        self.role = role
        self.retry = retry
        self._errors = ErrorContext(describe_location(self.scheme, bucket, self.prefix), role)
        self._local = threading.local()
        self._clients: list[tuple[int, Any]] = []
        self._clients_lock = threading.Lock()
        self._bucket_exists = False

    @classmethod
    def from_env(
        cls,
        bucket: str,
        prefix: str | None = None,
        *,
        role: str = "",
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> GcsObjectStore:
        return cls(
            bucket,
            prefix,
            endpoint=os.environ.get(EMULATOR_ENV) or None,
            project=os.environ.get("GOOGLE_CLOUD_PROJECT") or None,
            role=role,
            retry=retry,
        )

    # -- plumbing --------------------------------------------------------------------
    def _bucket(self) -> Any:
        # A client per thread (a client's HTTP session is not thread-safe) and per process
        # (a forked child must not share its parent's pooled sockets).
        bucket = getattr(self._local, "bucket", None)
        if bucket is None or self._local.pid != os.getpid():
            from google.cloud import storage  # type: ignore[import-untyped]

            if self.endpoint:
                from google.auth.credentials import AnonymousCredentials

                # Explicit anonymous credentials: the client never looks for real ones
                # (nor asks a metadata server) when talking to an emulator.
                client = storage.Client(
                    project=self.project or EMULATOR_PROJECT,
                    credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                    client_options={"api_endpoint": self.endpoint},
                )
            else:
                client = storage.Client(project=self.project)
            bucket = client.bucket(self.bucket)
            self._local.bucket, self._local.pid = bucket, os.getpid()
            with self._clients_lock:
                self._clients.append((os.getpid(), client))
        return bucket

    def _retry(self) -> Any:
        from google.cloud.storage.retry import (  # type: ignore[import-untyped]
            DEFAULT_RETRY as GOOGLE_RETRY,
        )

        policy = self.retry
        return GOOGLE_RETRY.with_delay(
            initial=policy.initial_backoff, maximum=policy.max_backoff, multiplier=2.0
        ).with_timeout(policy.timeout)

    def _timeout(self) -> tuple[float, float]:
        return (self.retry.connect_timeout, self.retry.request_timeout)

    def _name(self, key: str) -> str:
        return self.prefix + check_object_key(key)

    def _fail(self, exc: Exception, action: str, key: str | None) -> StorageError:
        from google.api_core import exceptions as gex

        if isinstance(exc, gex.NotFound):
            reason = "the bucket does not exist"
        elif isinstance(exc, gex.Unauthorized | gex.Forbidden):
            reason = f"access denied (HTTP {exc.code}); check the credentials"
        elif isinstance(exc, gex.GoogleAPICallError):
            reason = f"HTTP {exc.code} {type(exc).__name__}"
        elif isinstance(exc, gex.RetryError):
            reason = "endpoint unreachable or failing (gave up after retries)"
        else:
            reason = f"endpoint unreachable ({type(exc).__name__})"
        return self._errors.error(action, key, reason)

    def _call(self, action: str, key: str | None, fn: Callable[[], T]) -> T:
        """Run ``fn``, mapping transport and server errors (a 404 or a lost precondition
        is left to the caller, which knows what it means there)."""
        import requests
        from google.api_core import exceptions as gex
        from google.auth import exceptions as auth_exc

        try:
            return fn()
        except (gex.NotFound, gex.PreconditionFailed, gex.RequestRangeNotSatisfiable):
            raise
        except (
            gex.GoogleAPICallError,
            gex.RetryError,
            requests.RequestException,
            auth_exc.TransportError,
            ConnectionError,
        ) as exc:
            raise self._fail(exc, action, key) from None

    def _missing(self, action: str, key: str) -> None:
        """A 404 on an object: fine, unless the bucket itself is gone (checked once)."""
        if self._bucket_exists:
            return
        bucket = self._bucket()
        found = self._call(
            action,
            key,
            lambda: bucket.client.lookup_bucket(
                self.bucket, retry=self._retry(), timeout=self._timeout()
            ),
        )
        if found is None:
            raise self._errors.error(action, key, "the bucket does not exist")
        self._bucket_exists = True

    def _meta(self, key: str, blob: Any, size: int | None = None) -> ObjectMeta:
        updated = blob.updated
        return ObjectMeta(
            key=key,
            size=int(blob.size if blob.size is not None else (size or 0)),
            etag=str(blob.generation or ""),
            modified=updated.timestamp() if updated is not None else time.time(),
        )

    # -- reads -----------------------------------------------------------------------
    def get(self, key: str) -> tuple[bytes, ObjectMeta] | None:
        from google.api_core.exceptions import NotFound

        blob = self._bucket().blob(self._name(key))
        try:
            data: bytes = self._call(
                "read",
                key,
                lambda: blob.download_as_bytes(retry=self._retry(), timeout=self._timeout()),
            )
        except NotFound:
            self._missing("read", key)
            return None
        return data, self._meta(key, blob, len(data))

    def get_range(self, key: str, start: int, end: int | None = None) -> bytes | None:
        from google.api_core.exceptions import NotFound, RequestRangeNotSatisfiable

        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range [{start}, {end})")
        if end == start:
            return b"" if self.head(key) is not None else None
        blob = self._bucket().blob(self._name(key))
        last = end - 1 if end is not None else None  # the client's end is inclusive
        try:
            data: bytes = self._call(
                "read",
                key,
                lambda: blob.download_as_bytes(
                    start=start, end=last, retry=self._retry(), timeout=self._timeout()
                ),
            )
        except NotFound:
            self._missing("read", key)
            return None
        except RequestRangeNotSatisfiable:  # the range starts at or after the end
            return b""
        return data

    def head(self, key: str) -> ObjectMeta | None:
        bucket = self._bucket()
        name = self._name(key)
        blob = self._call(
            "stat",
            key,
            lambda: bucket.get_blob(name, retry=self._retry(), timeout=self._timeout()),
        )
        if blob is None:
            self._missing("stat", key)
            return None
        return self._meta(key, blob)

    def get_file(self, key: str, dest: Path) -> ObjectMeta | None:
        from google.api_core.exceptions import NotFound

        blob = self._bucket().blob(self._name(key))

        def fill(fh: Any) -> None:
            blob.download_to_file(fh, retry=self._retry(), timeout=self._timeout())

        try:
            self._call("read", key, lambda: write_atomically(Path(dest), fill))
        except NotFound:
            self._missing("read", key)
            return None
        return self._meta(key, blob, Path(dest).stat().st_size)

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectMeta]:
        check_list_prefix(prefix, start_after)
        return self._list(prefix, start_after)

    def _list(self, prefix: str, start_after: str | None) -> Iterator[ObjectMeta]:
        from google.api_core.exceptions import NotFound

        bucket = self._bucket()
        after = self.prefix + start_after if start_after is not None else None
        kwargs: dict[str, Any] = {"prefix": self.prefix + prefix}
        if after is not None:
            kwargs["start_offset"] = after  # inclusive, hence the check below
        pages = bucket.client.list_blobs(
            bucket, retry=self._retry(), timeout=self._timeout(), **kwargs
        )
        blobs = iter(pages)
        try:
            while True:
                blob = self._call("list", prefix or "/", lambda: next(blobs, None))
                if blob is None:
                    return
                if after is not None and blob.name <= after:
                    continue
                yield self._meta(blob.name[len(self.prefix) :], blob)
        except NotFound as exc:
            raise self._fail(exc, "list", prefix or "/") from None

    # -- writes ----------------------------------------------------------------------
    def _upload(self, action: str, key: str, data: bytes, generation: int | None) -> ObjectMeta:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        blob = self._bucket().blob(self._name(key))
        try:
            self._call(
                action,
                key,
                lambda: blob.upload_from_string(
                    data,
                    content_type=_CONTENT_TYPE,
                    if_generation_match=generation,
                    retry=self._retry(),
                    timeout=self._timeout(),
                ),
            )
        except PreconditionFailed:
            raise PreconditionFailedError(f"object {key!r} exists or changed") from None
        except NotFound as exc:
            raise self._fail(exc, action, key) from None
        return self._meta(key, blob, len(data))

    def put(self, key: str, data: bytes) -> ObjectMeta:
        return self._upload("write", key, bytes(data), None)

    def put_if_absent(self, key: str, data: bytes) -> ObjectMeta:
        return self._upload("create", key, bytes(data), 0)

    def put_if_match(self, key: str, data: bytes, etag: str) -> ObjectMeta:
        check_object_key(key)
        try:
            generation = int(etag)
        except ValueError:
            raise PreconditionFailedError(f"object {key!r} changed (etag mismatch)") from None
        if generation <= 0:
            raise PreconditionFailedError(f"object {key!r} changed (etag mismatch)")
        return self._upload("replace", key, bytes(data), generation)

    def put_file(self, key: str, src: Path) -> ObjectMeta:
        from google.api_core.exceptions import NotFound

        name = self._name(key)
        size = Path(src).stat().st_size  # a missing source is the caller's error
        if size <= SINGLE_REQUEST_BYTES:
            return self._upload("upload", key, Path(src).read_bytes(), None)
        try:
            doc = self._call(
                "upload", key, lambda: self._retry()(self._stream_file)(name, src, size)
            )
        except NotFound as exc:
            raise self._fail(exc, "upload", key) from None
        updated = doc.get("updated")
        return ObjectMeta(
            key=key,
            size=size,
            etag=str(doc.get("generation") or ""),
            modified=datetime.fromisoformat(updated.replace("Z", "+00:00")).timestamp()
            if isinstance(updated, str)
            else time.time(),
        )

    def _stream_file(self, name: str, src: Path, size: int) -> dict[str, Any]:
        """One resumable session fed by a single streaming PUT: the file is read in small
        blocks as it goes out (never held in memory) and its CRC32C checked against the
        stored object's. A failed attempt starts over with a new session (retried)."""
        import base64

        import google_crc32c
        from google.api_core.exceptions import from_http_response

        blob = self._bucket().blob(name)
        session = blob.create_resumable_upload_session(
            content_type=_CONTENT_TYPE, size=size, timeout=self._timeout()
        )
        checksum: Any = google_crc32c.Checksum()  # type: ignore[no-untyped-call]
        with Path(src).open("rb") as fh:
            response = self._http().put(
                session,  # the session URL authorises the upload by itself
                data=_ChecksummedReader(fh, checksum),
                headers={"Content-Length": str(size), "Content-Type": _CONTENT_TYPE},
                timeout=self._timeout(),
            )
        if response.status_code >= 400:
            raise from_http_response(response)  # type: ignore[no-untyped-call]
        doc: dict[str, Any] = response.json()
        stored = doc.get("crc32c")
        if int(doc.get("size", -1)) != size or (
            isinstance(stored, str) and base64.b64decode(stored) != checksum.digest()
        ):
            raise self._errors.error("upload", name, "the stored object does not match the file")
        return doc

    def _http(self) -> Any:
        session = getattr(self._local, "http", None)
        if session is None or self._local.http_pid != os.getpid():
            import requests

            session = requests.Session()
            self._local.http, self._local.http_pid = session, os.getpid()
        return session

    def delete(self, key: str) -> bool:
        from google.api_core.exceptions import NotFound

        blob = self._bucket().blob(self._name(key))
        try:
            self._call(
                "delete", key, lambda: blob.delete(retry=self._retry(), timeout=self._timeout())
            )
        except NotFound:
            self._missing("delete", key)
            return False
        return True

    def delete_many(self, keys: Sequence[str]) -> None:
        """Delete ``keys``; keys already gone are ignored."""
        for key in keys:
            check_object_key(key)
        for key in keys:
            self.delete(key)

    def describe(self) -> str:
        return describe_location(self.scheme, self.bucket, self.prefix)

    def close(self) -> None:
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for pid, client in clients:
            if pid == os.getpid():
                client.close()
        self._local = threading.local()
