"""The cache on a plain HTTP store (``type: http``): GET / PUT / DELETE of one URL per key,
listing through nginx's JSON autoindex, as an nginx WebDAV location or an artifact server's
generic repository gives a team that has no bucket.

Such a store does not enforce ``If-None-Match`` / ``If-Match``; the adapter sends them anyway
and the probe shared with the object stores finds out, so the cache reports no conditional
writes and put-if-absent degrades exactly as on an S3 endpoint that ignores preconditions.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from sparkwing.errors import ConfigError, PreconditionFailedError
from sparkwing.surfaces.cache.objectstore import ObjectStoreCache
from sparkwing.surfaces.objectstore.base import ObjectMeta, ObjectStore
from sparkwing.surfaces.objectstore.common import (
    DEFAULT_RETRY,
    ErrorContext,
    RetryPolicy,
    check_list_prefix,
    check_object_key,
    listing_dir,
    normalize_prefix,
    write_atomically,
)
from sparkwing.surfaces.spec import SurfaceSpec

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")

# Worth another attempt: the server is restarting, overloaded or behind a flaky proxy.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_CHUNK = 1 << 20
# One folder of nginx's JSON autoindex: [{"name", "type", "mtime", "size"}, ...]
_Index = list[dict[str, Any]]


class _Transient(Exception):
    """One failed attempt that a retry may cure; ``reason`` is what the user is told."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _safe_base(url: str) -> tuple[str, str]:
    """``url`` as the base every key is appended to, and the same without any
    user:password, query or fragment: the only form that ever reaches a message."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("cache backend type=http: url must be an http(s) URL with a host")
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    shown = urlunsplit((parts.scheme, netloc, path, "", ""))
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), shown


def _token(spec: SurfaceSpec) -> str | None:
    """The optional bearer token: ``token``, else the variable ``token_env`` names."""
    if spec.token or not spec.token_env:
        return spec.token
    value = os.environ.get(spec.token_env)
    if value:
        return value
    raise ConfigError(
        f"cache backend type=http: environment variable {spec.token_env} (token_env) "
        "is not set or empty"
    )


def _modified(header: str | None) -> float:
    if not header:
        return 0.0
    try:
        return parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return 0.0


class HttpObjectStore(ObjectStore):
    """Keys under ``base`` (plus ``prefix``) on an HTTP server; one connection pool per
    handle. A token, when given, goes in an ``Authorization: Bearer`` header only."""

    def __init__(
        self,
        url: str,
        prefix: str | None = None,
        *,
        token: str | None = None,
        role: str = "cache",
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        try:
            import httpx  # noqa: F401 - fail at open, with the fix, not on first use
        except ImportError:
            raise ConfigError(
                "cache backend type=http needs httpx: pip install 'sparkwing[client]'"
            ) from None
        self._base, shown = _safe_base(url)
        self.prefix = normalize_prefix(prefix)
        self.location = shown + self.prefix
        self.retry = retry
        self._errors = ErrorContext(self.location, role)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._pool: tuple[int, httpx.Client] | None = None

    @property
    def _http(self) -> httpx.Client:
        """This process's connection pool: a forked child must not share its sockets."""
        import httpx

        if self._pool is None or self._pool[0] != os.getpid():
            client = httpx.Client(
                headers=self._headers,
                timeout=httpx.Timeout(
                    self.retry.request_timeout, connect=self.retry.connect_timeout
                ),
                follow_redirects=False,
                trust_env=False,  # a proxy from the environment must not see the token
            )
            self._pool = (os.getpid(), client)
        return self._pool[1]

    # -- requests ----------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return self._base + quote(self.prefix + path, safe="/")

    def _call(self, action: str, key: str | None, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` until it succeeds, fails for good, or the retry budget is spent;
        then one StorageError naming the store."""
        import httpx

        reason = ""
        for _ in self.retry.pauses():
            try:
                return attempt()
            except _Transient as exc:
                reason = exc.reason
            except httpx.TimeoutException:
                reason = "request timed out after retries"
            except httpx.TransportError:
                reason = "endpoint unreachable (connection failed after retries)"
        raise self._errors.error(action, key, reason)

    def _check(self, response: httpx.Response, action: str, key: str | None) -> None:
        """Raise for an answer that is not a success (404 and 412 are the caller's)."""
        status = response.status_code
        if status in TRANSIENT_STATUSES:
            raise _Transient(f"HTTP {status}")
        if status == 412:
            raise PreconditionFailedError(f"{self.location}: {action} {key!r}: precondition failed")
        if status >= 300:
            hint = " (check the token)" if status in (401, 403) else ""
            raise self._errors.error(action, key, f"HTTP {status}{hint}")

    def _meta(self, key: str, response: httpx.Response, size: int | None = None) -> ObjectMeta:
        length = response.headers.get("content-length")
        return ObjectMeta(
            key=key,
            size=size if size is not None else int(length or 0),
            etag=response.headers.get("etag", ""),
            modified=_modified(response.headers.get("last-modified")),
        )

    # -- reads -------------------------------------------------------------------------
    def get(self, key: str) -> tuple[bytes, ObjectMeta] | None:
        check_object_key(key)

        def attempt() -> tuple[bytes, ObjectMeta] | None:
            response = self._http.get(self._url(key))
            if response.status_code in (301, 404):  # 301: a folder, not an object
                return None
            self._check(response, "read", key)
            return response.content, self._meta(key, response, len(response.content))

        return self._call("read", key, attempt)

    def get_range(self, key: str, start: int, end: int | None = None) -> bytes | None:
        check_object_key(key)
        if end is not None and end <= start:
            return b"" if self.head(key) is not None else None
        wanted = f"bytes={start}-{'' if end is None else end - 1}"

        def attempt() -> bytes | None:
            response = self._http.get(self._url(key), headers={"Range": wanted})
            if response.status_code in (301, 404):
                return None
            if response.status_code == 416:  # starts at or past the end
                return b""
            self._check(response, "read", key)
            data = response.content
            # A server that ignores Range sends the whole object.
            return data if response.status_code == 206 else data[start:end]

        return self._call("read", key, attempt)

    def head(self, key: str) -> ObjectMeta | None:
        check_object_key(key)

        def attempt() -> ObjectMeta | None:
            response = self._http.head(self._url(key))
            if response.status_code in (301, 404):
                return None
            self._check(response, "stat", key)
            return self._meta(key, response)

        return self._call("stat", key, attempt)

    def get_file(self, key: str, dest: Path) -> ObjectMeta | None:
        check_object_key(key)

        def attempt() -> ObjectMeta | None:
            with self._http.stream("GET", self._url(key)) as response:
                if response.status_code in (301, 404):
                    return None
                self._check(response, "download", key)
                size = 0

                def fill(fh: Any) -> None:
                    nonlocal size
                    for chunk in response.iter_bytes(_CHUNK):
                        fh.write(chunk)
                        size += len(chunk)

                write_atomically(Path(dest), fill)
                return self._meta(key, response, size)

        return self._call("download", key, attempt)

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectMeta]:
        check_list_prefix(prefix, start_after)
        found = sorted(self._walk(listing_dir(prefix), prefix), key=lambda m: m.key)
        return iter([m for m in found if start_after is None or m.key > start_after])

    def _walk(self, folder: str, prefix: str) -> Iterator[ObjectMeta]:
        for entry in self._index(folder):
            name = entry.get("name")
            if not isinstance(name, str) or not name or name.startswith("."):
                continue
            key = f"{folder}/{name}" if folder else name
            if entry.get("type") == "directory":
                # Only folders that can hold a key starting with the prefix are opened.
                if (key + "/").startswith(prefix) or prefix.startswith(key + "/"):
                    yield from self._walk(key, prefix)
            elif entry.get("type") == "file" and key.startswith(prefix):
                size = entry.get("size")
                mtime = entry.get("mtime")
                yield ObjectMeta(
                    key=key,
                    size=size if isinstance(size, int) else 0,
                    etag="",
                    modified=_modified(mtime if isinstance(mtime, str) else None),
                )

    def _index(self, folder: str) -> _Index:
        """One folder's JSON autoindex; a missing folder is empty."""

        def attempt() -> _Index:
            response = self._http.get(self._url(folder + "/" if folder else ""))
            if response.status_code == 404:
                return []
            self._check(response, "list", folder)
            try:
                doc = json.loads(response.content)
            except ValueError:
                doc = None
            if not isinstance(doc, list):
                raise self._errors.error(
                    "list", folder, "the listing is not a JSON autoindex (autoindex_format json)"
                )
            return [item for item in doc if isinstance(item, dict)]

        return self._call("list", folder, attempt)

    # -- writes ------------------------------------------------------------------------
    def _put(self, key: str, body: Callable[[], Any], headers: dict[str, str]) -> None:
        """PUT what ``body()`` gives (bytes, or a file httpx streams in chunks with its
        length from the file), retried from the first byte."""

        def attempt() -> None:
            with contextlib.ExitStack() as stack:
                content = body()
                if hasattr(content, "close"):
                    stack.callback(content.close)
                response = self._http.put(self._url(key), content=content, headers=headers)
                self._check(response, "write", key)

        self._call("write", key, attempt)

    def put(self, key: str, data: bytes) -> ObjectMeta:
        check_object_key(key)
        self._put(key, lambda: data, {})
        return ObjectMeta(key=key, size=len(data), etag="", modified=time.time())

    def put_file(self, key: str, src: Path) -> ObjectMeta:
        check_object_key(key)
        src = Path(src)
        size = src.stat().st_size
        self._put(key, lambda: src.open("rb"), {})
        return ObjectMeta(key=key, size=size, etag="", modified=time.time())

    def _written(self, key: str, size: int) -> ObjectMeta:
        meta = self.head(key)
        return meta or ObjectMeta(key=key, size=size, etag="", modified=time.time())

    def put_if_absent(self, key: str, data: bytes) -> ObjectMeta:
        check_object_key(key)
        self._put(key, lambda: data, {"If-None-Match": "*"})
        return self._written(key, len(data))

    def put_if_match(self, key: str, data: bytes, etag: str) -> ObjectMeta:
        check_object_key(key)
        if not etag or any(ord(c) < 32 for c in etag):
            raise PreconditionFailedError(f"{self.location}: write {key!r}: unusable etag")
        self._put(key, lambda: data, {"If-Match": etag})
        return self._written(key, len(data))

    def delete(self, key: str) -> bool:
        check_object_key(key)

        def attempt() -> bool:
            response = self._http.delete(self._url(key))
            if response.status_code in (301, 404, 409):  # 301 / 409: a folder, not an object
                return False
            self._check(response, "delete", key)
            return True

        return self._call("delete", key, attempt)

    def describe(self) -> str:
        return self.location

    def close(self) -> None:
        if self._pool is not None and self._pool[0] == os.getpid():
            self._pool[1].close()
        self._pool = None


def open_http_cache(spec: SurfaceSpec) -> ObjectStoreCache:
    """The registry's opener for ``type: http``: ``url`` (required), ``prefix``, and an
    optional bearer token (``token_env`` names the variable holding it)."""
    if not spec.url:
        raise ConfigError("cache backend type=http requires url")
    return ObjectStoreCache(HttpObjectStore(spec.url, spec.prefix, token=_token(spec)))
