"""The obstore-backed adapter shared by S3 and Azure Blob (GCS uses Google's own client).

obstore runs every request on one process-wide tokio runtime, which does not survive
``fork()``: a forked child that calls it hangs forever. The engine forks job processes
after the runner has used its stores, so a process that did not start the runtime itself
sends its calls to a fresh interpreter instead (see :mod:`._isolated`).
"""

from __future__ import annotations

import abc
import builtins
import os
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from sparkwing.errors import PreconditionFailedError, StorageError
from sparkwing.surfaces.objectstore.base import ObjectMeta, ObjectStore
from sparkwing.surfaces.objectstore.common import (
    DEFAULT_RETRY,
    MISSING_BUCKET_CODES,
    ErrorContext,
    RetryPolicy,
    check_list_prefix,
    check_object_key,
    chunked,
    describe_location,
    http_reason,
    listing_dir,
    normalize_prefix,
    write_atomically,
)

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

    from sparkwing.surfaces.objectstore._isolated import IsolatedClient

T = TypeVar("T")

# Multipart part size and parallelism for put_file: at most PART * CONCURRENCY bytes of a
# file are in memory at once, whatever the file's size.
PART_SIZE = 8 * 1024 * 1024
PART_CONCURRENCY = 4
_READ_CHUNK = 1024 * 1024
_BULK = 1000

# Which process first made a request through obstore's runtime. It is process-global
# because the runtime is: a child forked after that must not touch it.
_runtime_pid: int | None = None


def _runtime_usable() -> bool:
    global _runtime_pid
    pid = os.getpid()
    if _runtime_pid is None:
        _runtime_pid = pid
    return _runtime_pid == pid


class ObstoreObjectStore(ObjectStore):
    """Common operations over an obstore store; subclasses say how to build the store."""

    scheme: ClassVar[str]

    def __init__(
        self, bucket: str, prefix: str | None, *, role: str = "", retry: RetryPolicy = DEFAULT_RETRY
    ) -> None:
        if not bucket:
            raise StorageError(f"{self.scheme} store needs a bucket name")
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        self.role = role
        self.retry = retry
        self._errors = ErrorContext(describe_location(self.scheme, bucket, self.prefix), role)
        self._obstore: Any = None
        self._isolated: IsolatedClient | None = None
        self._bucket_exists = False  # proven by a successful listing or write

    # -- subclass hooks ----------------------------------------------------------------
    @abc.abstractmethod
    def _build(self, client_options: ClientConfig, retry_config: RetryConfig) -> Any:
        """The obstore store for ``self.bucket`` (prefix applied by this class)."""

    @abc.abstractmethod
    def init_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this adapter in another process."""

    def _allow_http(self) -> bool:
        return False

    # -- plumbing --------------------------------------------------------------------
    def _store(self) -> Any:
        if self._obstore is None:
            policy = self.retry
            client: ClientConfig = {
                "connect_timeout": timedelta(seconds=policy.connect_timeout),
                "timeout": timedelta(seconds=policy.request_timeout),
            }
            if self._allow_http():
                client["allow_http"] = True
            retry: RetryConfig = {
                "max_retries": policy.max_retries,
                "retry_timeout": timedelta(seconds=policy.timeout),
                "backoff": {
                    "init_backoff": timedelta(seconds=policy.initial_backoff),
                    "max_backoff": timedelta(seconds=policy.max_backoff),
                    "base": 2,
                },
            }
            self._obstore = self._build(client, retry)
        return self._obstore

    def _forked(self, method: str, *args: Any) -> tuple[bool, Any]:
        """(True, result) when this call had to run in a fresh interpreter."""
        if _runtime_usable():
            return False, None
        if self._isolated is None or self._isolated.pid_owner != os.getpid():
            from sparkwing.surfaces.objectstore._isolated import IsolatedClient

            self._isolated = IsolatedClient(type(self), self.init_kwargs())
        return True, self._isolated.call(method, *args)

    def _path(self, key: str) -> str:
        return check_object_key(key)

    def _fail(self, exc: Exception, action: str, key: str | None) -> StorageError:
        from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

        message = str(exc)
        status, reason = http_reason(message)
        if any(code in message for code in MISSING_BUCKET_CODES):
            reason = "the bucket does not exist"
        elif status in (401, 403) or isinstance(exc, UnauthenticatedError | PermissionDeniedError):
            reason = f"access denied ({reason}); check the credentials"
        return self._errors.error(action, key, reason)

    def _missing(self, exc: FileNotFoundError, action: str, key: str) -> None:
        """A 404 is a missing object unless the bucket itself is missing. A HEAD answer has
        no body to tell, so the first bodiless miss costs one listing of the bucket."""
        if any(code in str(exc) for code in MISSING_BUCKET_CODES):
            raise self._fail(exc, action, key) from None
        if self._bucket_exists:
            return
        import obstore

        try:
            self._run(action, key, lambda: obstore.list_with_delimiter(self._store(), "-"))
        except FileNotFoundError as listing:
            raise self._fail(listing, action, key) from None
        self._bucket_exists = True

    def _meta(self, key: str, raw: Any) -> ObjectMeta:
        modified = raw.get("last_modified")
        return ObjectMeta(
            key=key,
            size=int(raw.get("size") or 0),
            etag=str(raw.get("e_tag") or raw.get("version") or ""),
            modified=modified.timestamp() if modified is not None else time.time(),
        )

    def _run(self, action: str, key: str | None, fn: Callable[[], T]) -> T:
        from obstore.exceptions import BaseError

        try:
            return fn()
        except (BaseError, OSError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise self._fail(exc, action, key) from None

    # -- reads -----------------------------------------------------------------------
    def get(self, key: str) -> tuple[bytes, ObjectMeta] | None:
        path = self._path(key)
        forked, result = self._forked("get", key)
        if forked:
            return result  # type: ignore[no-any-return]
        import obstore

        try:
            got = self._run("read", key, lambda: obstore.get(self._store(), path))
            data = self._run("read", key, lambda: bytes(got.bytes()))
        except FileNotFoundError as exc:
            self._missing(exc, "read", key)
            return None
        return data, self._meta(key, got.meta)

    def get_range(self, key: str, start: int, end: int | None = None) -> bytes | None:
        path = self._path(key)
        forked, result = self._forked("get_range", key, start, end)
        if forked:
            return result  # type: ignore[no-any-return]
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range [{start}, {end})")
        if end == start:
            return b"" if self.head(key) is not None else None
        import obstore
        from obstore.exceptions import BaseError

        bounds: Any = (start, end) if end is not None else {"offset": start}
        try:
            got = obstore.get(self._store(), path, options={"range": bounds})
            return bytes(got.bytes())
        except FileNotFoundError as exc:
            self._missing(exc, "read", key)
            return None
        except BaseError as exc:
            status, _ = http_reason(str(exc))
            # The range starts at or after the end of the object (Azure's check is local).
            if status == 416 or "StartTooLarge" in str(exc):
                return b""
            raise self._fail(exc, "read", key) from None

    def head(self, key: str) -> ObjectMeta | None:
        path = self._path(key)
        forked, result = self._forked("head", key)
        if forked:
            return result  # type: ignore[no-any-return]
        import obstore

        try:
            raw = self._run("stat", key, lambda: obstore.head(self._store(), path))
        except FileNotFoundError as exc:
            self._missing(exc, "stat", key)
            return None
        return self._meta(key, raw)

    def get_file(self, key: str, dest: Path) -> ObjectMeta | None:
        path = self._path(key)
        forked, result = self._forked("get_file", key, Path(dest).absolute())
        if forked:
            return result  # type: ignore[no-any-return]
        import obstore

        try:
            got = self._run("read", key, lambda: obstore.get(self._store(), path))
        except FileNotFoundError as exc:
            self._missing(exc, "read", key)
            return None
        meta = self._meta(key, got.meta)

        def fill(fh: Any) -> None:
            for chunk in got.stream(min_chunk_size=_READ_CHUNK):
                fh.write(chunk)

        self._run("read", key, lambda: write_atomically(Path(dest), fill))
        return meta

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectMeta]:
        check_list_prefix(prefix, start_after)
        forked, result = self._forked("list_all", prefix, start_after)
        if forked:
            return iter(result)
        return self._list(prefix, start_after)

    def list_all(
        self, prefix: str = "", start_after: str | None = None
    ) -> builtins.list[ObjectMeta]:
        """:meth:`list` materialised (what a forked child receives from its helper)."""
        return list(self.list(prefix, start_after=start_after))

    def _list(self, prefix: str, start_after: str | None) -> Iterator[ObjectMeta]:
        import obstore

        folder = listing_dir(prefix)
        # Start the listing just before the prefix: keys that start with it sort after its
        # own prefix minus one character (a folder path would be normalised away).
        bounds = [b for b in (start_after, prefix[:-1]) if b and not b.endswith("/")]
        offset = max(bounds) if bounds else None
        try:
            stream = self._run(
                "list",
                prefix or "/",
                lambda: obstore.list(self._store(), folder or None, offset=offset),
            )
            batches = iter(stream)
            while True:
                batch = self._run("list", prefix or "/", lambda: next(batches, None))
                if batch is None:
                    return
                for raw in batch:
                    path = raw["path"]
                    if not path.startswith(prefix):
                        if path > prefix:
                            return  # listings are sorted: past the block of matches
                        continue
                    if start_after is not None and path <= start_after:
                        continue
                    yield self._meta(path, raw)
        except FileNotFoundError as exc:
            raise self._fail(exc, "list", prefix or "/") from None

    # -- writes ----------------------------------------------------------------------
    def _put(self, action: str, key: str, data: bytes, mode: Any) -> ObjectMeta:
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        path = self._path(key)
        try:
            result = obstore.put(self._store(), path, data, mode=mode, use_multipart=False)
        except AlreadyExistsError:
            raise PreconditionFailedError(f"object {key!r} already exists") from None
        except PreconditionError:
            raise PreconditionFailedError(f"object {key!r} changed or does not exist") from None
        except FileNotFoundError as exc:
            if mode != "overwrite" and not any(c in str(exc) for c in MISSING_BUCKET_CODES):
                raise PreconditionFailedError(f"object {key!r} does not exist") from None
            raise self._fail(exc, action, key) from None
        except Exception as exc:
            from obstore.exceptions import BaseError

            if isinstance(exc, BaseError | OSError):
                raise self._fail(exc, action, key) from None
            raise
        return ObjectMeta(
            key=key, size=len(data), etag=str(result.get("e_tag") or ""), modified=time.time()
        )

    def put(self, key: str, data: bytes) -> ObjectMeta:
        self._path(key)
        forked, result = self._forked("put", key, bytes(data))
        if forked:
            return result  # type: ignore[no-any-return]
        return self._put("write", key, bytes(data), "overwrite")

    def put_if_absent(self, key: str, data: bytes) -> ObjectMeta:
        self._path(key)
        forked, result = self._forked("put_if_absent", key, bytes(data))
        if forked:
            return result  # type: ignore[no-any-return]
        return self._put("create", key, bytes(data), "create")

    def put_if_match(self, key: str, data: bytes, etag: str) -> ObjectMeta:
        self._path(key)
        forked, result = self._forked("put_if_match", key, bytes(data), etag)
        if forked:
            return result  # type: ignore[no-any-return]
        return self._put("replace", key, bytes(data), {"e_tag": etag})

    def put_file(self, key: str, src: Path) -> ObjectMeta:
        path = self._path(key)
        size = Path(src).stat().st_size  # a missing source is the caller's error
        forked, result = self._forked("put_file", key, Path(src).absolute())
        if forked:
            return result  # type: ignore[no-any-return]
        import obstore

        try:
            put = self._run(
                "upload",
                key,
                lambda: obstore.put(
                    self._store(),
                    path,
                    Path(src),
                    chunk_size=PART_SIZE,
                    max_concurrency=PART_CONCURRENCY,
                ),
            )
        except FileNotFoundError as exc:
            raise self._fail(exc, "upload", key) from None
        etag = str(put.get("e_tag") or "")
        return ObjectMeta(key=key, size=size, etag=etag, modified=time.time())

    def delete(self, key: str) -> bool:
        path = self._path(key)
        forked, result = self._forked("delete", key)
        if forked:
            return result  # type: ignore[no-any-return]
        import obstore

        # S3 answers a delete of a missing key with success, so ask first.
        if self.head(key) is None:
            return False
        try:
            self._run("delete", key, lambda: obstore.delete(self._store(), path))
        except FileNotFoundError as exc:
            self._missing(exc, "delete", key)
            return False
        return True

    def delete_many(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` in bulk requests; keys already gone are ignored."""
        for key in keys:
            self._path(key)
        forked, _ = self._forked("delete_many", list(keys))
        if forked:
            return
        import obstore

        def bulk(batch: list[str]) -> None:
            obstore.delete(self._store(), batch)

        for batch in chunked(list(keys), _BULK):
            try:
                self._run("delete", batch[0], lambda: bulk(batch))  # noqa: B023
            except FileNotFoundError as exc:
                self._missing(exc, "delete", batch[0])
                # Azure reports each missing key of a batch; finish the batch one by one.
                for key in batch:
                    try:
                        obstore.delete(self._store(), key)
                    except FileNotFoundError:
                        pass

    def describe(self) -> str:
        return describe_location(self.scheme, self.bucket, self.prefix)

    def close(self) -> None:
        if self._isolated is not None:
            self._isolated.close()
            self._isolated = None
