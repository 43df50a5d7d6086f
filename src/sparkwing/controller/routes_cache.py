"""API operations of the cache surface. Object bodies stream both ways through a spool file,
so an artifact of any size is never held whole in memory; conditional writes (small
coordination documents by design) carry their body in memory."""

from __future__ import annotations

import os
import secrets
from dataclasses import asdict
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response

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
from sparkwing.errors import UsageError
from sparkwing.ids import check_key, check_prefix

READ, WRITE = "cache.read", "cache.write"
OCTETS = "application/octet-stream"
# Downloads up to this size are answered from memory (one read) instead of a file stream.
SMALL_OBJECT = 256 * 1024
MAX_CONDITIONAL_BODY = 16 * 1024 * 1024
_SPOOL_FLUSH = 4 << 20


def _key(value: str) -> object:
    return check_key(value, "cache key")


KEY = Param(
    "key", "path", s.STR, "Cache key, slash-separated.", required=True, check=_key, slashes=True
)


def _spool_path(call: Call, what: str) -> Path:
    return call.backend.spool / f"{what}-{secrets.token_hex(8)}"


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


class Download(FileResponse):
    chunk_size = 4 << 20  # the default 64 KiB costs an event-loop turn per 64 KiB


async def get_object(call: Call) -> Response:
    cache, key = call.backend.cache, call.path["key"]
    if call.query.get("etag"):
        got = await run_in_threadpool(cache.get_with_etag, key)
        if got is None:
            return error_response(404, "NotFoundError", f"cache key {key!r} not found")
        return Response(got[0], media_type=OCTETS, headers={"ETag": got[1]})
    tmp = _spool_path(call, "get")
    streaming = False
    try:
        found = await run_in_threadpool(cache.get_file, key, tmp)
        if not found:
            return error_response(404, "NotFoundError", f"cache key {key!r} not found")
        if tmp.stat().st_size <= SMALL_OBJECT:
            return Response(tmp.read_bytes(), media_type=OCTETS)
        streaming = True
    finally:
        if not streaming:
            _unlink(tmp)
    return Download(tmp, media_type=OCTETS, background=BackgroundTask(_unlink, tmp))


async def _spool_body(request: Request, dest: Path) -> None:
    """Write the request body to ``dest`` in large writes, off the event loop."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        pending: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            pending.append(chunk)
            size += len(chunk)
            if size >= _SPOOL_FLUSH:
                await run_in_threadpool(fh.write, b"".join(pending))
                pending, size = [], 0
        if pending:
            fh.write(b"".join(pending))


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
    tmp = _spool_path(call, "put")
    try:
        await _spool_body(call.request, tmp)
        await run_in_threadpool(cache.put_file, key, tmp)
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
    return {"conditional_writes": call.backend.cache.supports_conditional_writes()}


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
