"""API operations of the cache surface. Object bodies stream, so an artifact of any size is
never held whole in memory: an upload is spooled to a file the cache then adopts (a rename
for a cache of local files), a download is read from the cache's own file when it keeps
one, else from a spool file. Conditional writes (small coordination documents by design)
carry their body in memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from dataclasses import asdict
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sparkwing.controller import schemas as s
from sparkwing.controller.endpoint import (
    Call,
    Endpoint,
    Param,
    Reply,
    error_response,
    json_response,
)
from sparkwing.controller.pipeline import read_bounded
from sparkwing.errors import StorageError, UsageError
from sparkwing.ids import check_key, check_prefix

READ, WRITE = "cache.read", "cache.write"
OCTETS = "application/octet-stream"
# Downloads up to this size are answered from memory (one read) instead of a file stream.
SMALL_OBJECT = 256 * 1024
MAX_CONDITIONAL_BODY = 16 * 1024 * 1024
_SPOOL_FLUSH = 4 << 20
_IOV_MAX = 512  # buffers per writev, under every system's limit (Linux: 1024)


def _key(value: str) -> object:
    return check_key(value, "cache key")


KEY = Param(
    "key", "path", s.STR, "Cache key, slash-separated.", required=True, check=_key, slashes=True
)


def _open_object(path: Path, key: str) -> tuple[int, int] | None:
    """A read descriptor on ``path`` and its size; None when no object is there. The
    descriptor pins the file: a concurrent replace or delete cannot change what it reads."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as exc:
        raise StorageError(f"cache: cannot read {key!r}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st.st_size


def _read_all(fd: int) -> bytes:
    with open(fd, "rb", closefd=True) as fh:
        return fh.read()


class Download(Response):
    """Streams an open descriptor (closed when done) in large reads off the event loop: one
    event-loop turn and one thread hop per 4 MiB."""

    chunk_size = 4 << 20

    def __init__(self, fd: int, size: int) -> None:
        super().__init__(media_type=OCTETS, headers={"content-length": str(size)})
        self.fd, self.size = fd, size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
            await send(start)
            left = 0 if scope["method"] == "HEAD" else self.size
            while left > 0:
                chunk = await run_in_threadpool(os.read, self.fd, min(self.chunk_size, left))
                if not chunk:  # cut short in place: the connection must not look complete
                    raise StorageError("cache object shrank while it was being sent")
                left -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            os.close(self.fd)


async def _respond(opened: tuple[int, int]) -> Response:
    fd, size = opened
    if size <= SMALL_OBJECT:
        return Response(await run_in_threadpool(_read_all, fd), media_type=OCTETS)
    return Download(fd, size)


def _not_found(key: str) -> Response:
    return error_response(404, "NotFoundError", f"cache key {key!r} not found")


async def get_object(call: Call) -> Response:
    cache, key = call.backend.cache, call.path["key"]
    if call.query.get("etag"):
        got = await run_in_threadpool(cache.get_with_etag, key)
        if got is None:
            return _not_found(key)
        return Response(got[0], media_type=OCTETS, headers={"ETag": got[1]})
    local = cache.local_path(key)
    if local is not None:  # read in place: no copy
        opened = await run_in_threadpool(_open_object, local, key)
        return _not_found(key) if opened is None else await _respond(opened)
    tmp = call.backend.spool.file("get")
    try:
        if not await run_in_threadpool(cache.get_file, key, tmp):
            return _not_found(key)
        opened = await run_in_threadpool(_open_object, tmp, key)
    finally:
        _unlink(tmp)  # the open descriptor keeps the bytes until they are sent
    return _not_found(key) if opened is None else await _respond(opened)


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


def _write_all(fd: int, chunks: list[bytes]) -> None:
    """Write every chunk in order, in as few system calls as it takes (no joined copy),
    then close ``fd`` (a duplicate the caller handed over)."""
    try:
        views = [memoryview(c) for c in chunks if c]
        while views:
            written = os.writev(fd, views[:_IOV_MAX])
            while views and written >= len(views[0]):
                written -= len(views.pop(0))
            if written:
                views[0] = views[0][written:]
    finally:
        os.close(fd)


async def _spool_body(request: Request, dest: Path) -> None:
    """Write the request body to ``dest`` in large writes off the event loop, the next batch
    arriving while the previous one is written (at most two batches held)."""
    # Owner-only: an adopted spool file becomes the object as it is, and what a run
    # uploads (artifacts, cached outputs) is the controller's alone to serve.
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    writing: asyncio.Future[None] | None = None
    try:
        batch: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            batch.append(chunk)
            size += len(chunk)
            if size >= _SPOOL_FLUSH:
                if writing is not None:
                    await writing
                # Each write gets its own descriptor, so a write still running when the
                # upload fails can never land in a file that reused the number.
                job = run_in_threadpool(_write_all, os.dup(fd), batch)
                writing = asyncio.ensure_future(job)
                batch, size = [], 0
        if writing is not None:
            await writing
            writing = None
        await run_in_threadpool(_write_all, os.dup(fd), batch)
    except BaseException:
        if writing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(writing)  # ordinarily milliseconds; then unlinked
        raise
    finally:
        os.close(fd)


async def put_object(call: Call) -> Any:
    cache, key = call.backend.cache, call.path["key"]
    if_none = call.headers.get("If-None-Match")
    if_match = call.headers.get("If-Match")
    if if_none is not None and if_none != "*":
        raise UsageError("If-None-Match only accepts *")
    if if_none is not None and if_match is not None:
        raise UsageError("give If-None-Match or If-Match, not both")
    if if_none is not None or if_match is not None:
        data = await read_bounded(call.request, MAX_CONDITIONAL_BODY, "conditional writes")
        if if_none is not None:
            etag = await run_in_threadpool(cache.put_if_absent, key, data)
        else:
            etag = await run_in_threadpool(cache.put_if_match, key, data, str(if_match))
        return json_response({"etag": etag})
    tmp = call.backend.spool.file("put")
    try:
        await _spool_body(call.request, tmp)
        # Moved into place when the spool shares the cache's filesystem, else copied.
        await run_in_threadpool(cache.adopt_file, key, tmp)
    finally:
        _unlink(tmp)
    return json_response({"etag": None})


def stat_object(call: Call) -> Any:
    info = call.backend.cache.stat(call.path["key"])
    if info is None:
        return error_response(404, "NotFoundError", f"cache key {call.path['key']!r} not found")
    return asdict(info)


def delete_object(call: Call) -> Any:
    return {"deleted": call.backend.cache.delete(call.path["key"])}


def list_objects(call: Call) -> Any:
    prefix = call.query.get("prefix", "")
    after = call.query.get("after")
    limit = call.query.get("limit", 1000)
    page = []
    # Backends list in key order, so a page resumes after the last key of the previous one.
    for info in call.backend.cache.list(prefix):
        if after is not None and info.key <= after:
            continue
        page.append(info)
        if len(page) > limit:
            break
    more = len(page) > limit
    page = page[:limit]
    return {"objects": [asdict(i) for i in page], "next": page[-1].key if more else None}


def capabilities(call: Call) -> Any:
    return {"conditional_writes": call.backend.cache.conditional_writes}


def _prefix(value: str) -> object:
    return check_prefix(value, "cache prefix")


ETAG_HEADER = {"ETag": "The object's etag (with ?etag=true)."}

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/v1/cache/objects/{key}",
        "cache_get",
        "Download an object (streamed).",
        READ,
        get_object,
        Reply(200, "The object's bytes.", media=OCTETS, headers=ETAG_HEADER),
        params=(
            KEY,
            Param("etag", "query", s.BOOL, "Also return the etag (conditional-write stores)."),
        ),
        errors=(404, 501),
    ),
    Endpoint(
        "PUT",
        "/v1/cache/objects/{key}",
        "cache_put",
        "Upload an object (streamed); If-None-Match: * or If-Match: ETAG make it conditional.",
        WRITE,
        put_object,
        Reply(200, "Stored; etag is set for conditional writes.", s.ETAG),
        params=(
            KEY,
            Param("If-None-Match", "header", s.STR, "* : create only if absent."),
            Param("If-Match", "header", s.STR, "Replace only if the etag is this."),
        ),
        raw_body=OCTETS,
        errors=(412, 501),
        conflict_status=412,
    ),
    Endpoint(
        "DELETE",
        "/v1/cache/objects/{key}",
        "cache_delete",
        "Delete an object.",
        WRITE,
        delete_object,
        Reply(200, "Whether something was deleted.", s.DELETED),
        params=(KEY,),
    ),
    Endpoint(
        "GET",
        "/v1/cache/stat/{key}",
        "cache_stat",
        "An object's size and modification time.",
        READ,
        stat_object,
        Reply(200, "The object's info.", s.OBJECT_INFO),
        params=(KEY,),
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/v1/cache/list",
        "cache_list",
        "Objects under a prefix, in key order, a page at a time.",
        READ,
        list_objects,
        Reply(200, "A page of objects.", s.OBJECT_PAGE),
        params=(
            Param("prefix", "query", s.STR, "Key prefix (in a cache prefix).", check=_prefix),
            Param("after", "query", s.STR, "Resume after this key (next of the last page)."),
            Param(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": 10_000},
                "Page size (default 1000).",
            ),
        ),
    ),
    Endpoint(
        "GET",
        "/v1/cache/capabilities",
        "cache_capabilities",
        "Whether the store enforces conditional writes.",
        READ,
        capabilities,
        Reply(200, "Capabilities.", s.CAPABILITIES),
    ),
)
