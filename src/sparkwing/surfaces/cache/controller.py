"""The controller cache backend (mode 4): objects stream to and from the controller in
1 MiB chunks, so ``put_file`` / ``get_file`` never hold an artifact whole in memory."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sparkwing.controller.client import ControllerClient, is_not_found, key_path
from sparkwing.errors import PreconditionFailedError
from sparkwing.ids import check_key, check_prefix
from sparkwing.surfaces.cache.base import Cache, ObjectInfo

# Large chunks: the HTTP client's per-chunk cost, not the bytes, bounds throughput.
if TYPE_CHECKING:
    import httpx

_CHUNK = 4 << 20
_PAGE = 1000


def _object(key: str) -> str:
    return "/v1/cache/objects/" + key_path(check_key(key, "cache key"))


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def _slices(data: bytes) -> Iterator[memoryview]:
    # Sent whole, a large body is copied by the HTTP client several times over.
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        yield view[start : start + _CHUNK]


def _body(response: httpx.Response) -> Iterator[bytes]:
    """The body as sent: the controller never compresses, and undecoded reads are ~2x faster;
    an encoding added on the way (a proxy) is still decoded."""
    if response.headers.get("content-encoding", "identity") == "identity":
        return response.iter_raw()
    return response.iter_bytes()


def _info(doc: dict[str, object]) -> ObjectInfo:
    etag = doc.get("etag")
    return ObjectInfo(
        key=str(doc["key"]),
        size=int(doc["size"]),  # type: ignore[call-overload]
        modified=float(doc["modified"]),  # type: ignore[arg-type]
        etag=None if etag is None else str(etag),
    )


def _check_etag(etag: str) -> str:
    # It travels in a header: one a store never issued (control characters, non-ASCII)
    # cannot match anything.
    if not etag or not etag.isascii() or any(ord(c) < 32 or ord(c) == 127 for c in etag):
        raise PreconditionFailedError(f"etag {etag!r} matches no object")
    return etag


class ControllerCache(Cache):
    def __init__(self, client: ControllerClient) -> None:
        self.client = client
        self._conditional: bool | None = None

    def describe(self) -> str:
        return f"{self.client.describe()} (cache)"

    # -- reads -----------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        with self.client.stream("GET", _object(key), what="read from the cache") as response:
            if response.status_code == 404 and is_not_found(response):
                return None
            if response.status_code != 200:
                self.client.fail(response, "read from the cache")
            return b"".join(_body(response))

    def get_file(self, key: str, dest: Path) -> bool:
        dest = Path(dest)
        path = _object(key)
        with self.client.stream("GET", path, what="read from the cache") as response:
            if response.status_code == 404 and is_not_found(response):
                return False
            if response.status_code != 200:
                self.client.fail(response, "read from the cache")
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.parent / f".{dest.name[:64]}.sparkwing-get-{secrets.token_hex(6)}"
            try:
                with tmp.open("wb") as fh:
                    for chunk in _body(response):
                        fh.write(chunk)
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
        return True

    def has(self, key: str) -> bool:
        return self.stat(key) is not None

    def stat(self, key: str) -> ObjectInfo | None:
        path = "/v1/cache/stat/" + key_path(check_key(key, "cache key"))
        doc = self.client.call("GET", path, what="stat a cache object", missing=True)
        return None if doc is None else _info(doc)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        check_prefix(prefix, "cache prefix")
        # The first page is fetched now, so a bad prefix fails at the call like elsewhere.
        page = self._page(prefix, None)
        return self._pages(prefix, page)

    def _page(self, prefix: str, after: str | None) -> dict[str, object]:
        params = {"prefix": prefix, "after": after, "limit": _PAGE}
        doc: dict[str, object] = self.client.call(
            "GET", "/v1/cache/list", what="list the cache", params=params
        )
        return doc

    def _pages(self, prefix: str, page: dict[str, object]) -> Iterator[ObjectInfo]:
        while True:
            for doc in page["objects"]:  # type: ignore[attr-defined]
                yield _info(doc)
            after = page.get("next")
            if not after:
                return
            page = self._page(prefix, str(after))

    # -- writes ----------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> None:
        self.client.call(
            "PUT",
            _object(key),
            what="write to the cache",
            content=lambda: _slices(data),
            headers={"Content-Length": str(len(data))},
        )

    def put_file(self, key: str, src: Path) -> None:
        path = _object(key)
        src = Path(src)
        size = src.stat().st_size  # a missing source is the caller's OSError, as elsewhere
        self.client.call(
            "PUT",
            path,
            what="write to the cache",
            content=lambda: _chunks(src),
            headers={"Content-Length": str(size)},
        )

    def delete(self, key: str) -> bool:
        doc = self.client.call("DELETE", _object(key), what="delete from the cache")
        return bool(doc["deleted"])

    # -- conditional writes ----------------------------------------------------------
    def supports_conditional_writes(self) -> bool:
        if self._conditional is None:
            doc = self.client.call("GET", "/v1/cache/capabilities", what="probe the cache")
            self._conditional = bool(doc["conditional_writes"])
        return self._conditional

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        path = _object(key)
        what = "read from the cache"
        with self.client.stream("GET", path, what=what, params={"etag": "true"}) as response:
            if response.status_code == 404 and is_not_found(response):
                return None
            if response.status_code != 200:
                self.client.fail(response, what)
            return response.read(), response.headers.get("etag", "")

    def _conditional_put(self, key: str, data: bytes, header: dict[str, str]) -> str:
        doc = self.client.call(
            "PUT",
            _object(key),
            what="write to the cache",
            content=lambda: data,
            headers=header,
        )
        return str(doc["etag"])

    def put_if_absent(self, key: str, data: bytes) -> str:
        return self._conditional_put(key, data, {"If-None-Match": "*"})

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        check_key(key, "cache key")
        return self._conditional_put(key, data, {"If-Match": _check_etag(etag)})
