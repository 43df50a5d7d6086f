"""The controller cache backend (mode 4): files travel to and from the controller through
the client's bulk transfers (sendfile out, splice in; see sparkwing.controller.bulk), so
``put_file`` / ``get_file`` never hold an artifact in memory."""

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

if TYPE_CHECKING:
    import httpx

    from sparkwing.controller.bulk import Answer

# Large chunks: the HTTP client's per-chunk cost, not the bytes, bounds throughput.
_CHUNK = 4 << 20
_PAGE = 1000


def _object(key: str) -> str:
    return "/v1/cache/objects/" + key_path(check_key(key, "cache key"))


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


def _drain(answer: Answer) -> bool:
    answer.read()  # to its end, so the connection can carry the next transfer
    return True


class _Download:
    """A download into a temp file beside ``dest``, renamed over it once complete: a reader
    of ``dest`` sees the old file or the whole new one. Created on the first byte, so a
    miss leaves nothing behind."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.tmp: Path | None = None
        self.fd = -1

    def save(self, answer: Answer) -> bool:
        if self.fd < 0:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            name = f".{self.dest.name[:64]}.sparkwing-get-{secrets.token_hex(6)}"
            self.tmp = self.dest.parent / name
            self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        else:  # a retry starts over
            os.ftruncate(self.fd, 0)
            os.lseek(self.fd, 0, os.SEEK_SET)
        answer.into(self.fd)
        return True

    def commit(self) -> None:
        assert self.tmp is not None
        os.close(self.fd)
        self.fd = -1
        os.replace(self.tmp, self.dest)

    def __enter__(self) -> _Download:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)


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
        with _Download(dest) as download:
            found = self.client.transfer(
                "GET", _object(key), download.save, what="read from the cache", missing=True
            )
            if found:
                download.commit()
        return bool(found)

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
        with Path(src).open("rb") as fh:  # a missing source is the caller's OSError
            size = os.fstat(fh.fileno()).st_size
            self.client.transfer(
                "PUT",
                path,
                _drain,
                what="write to the cache",
                body=fh.fileno(),
                size=size,
            )

    def delete(self, key: str) -> bool:
        doc = self.client.call("DELETE", _object(key), what="delete from the cache")
        return bool(doc["deleted"])

    # -- conditional writes ----------------------------------------------------------
    @property
    def conditional_writes(self) -> bool:
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
