"""The request pipeline every operation runs through: authenticate, check the scope,
validate ids and parameters, replay a retried write, parse the body (off the event loop),
call the handler, and turn errors into answers (never a traceback, never request data in
the log)."""

from __future__ import annotations

import inspect
import json
import logging
import re
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sparkwing.controller.endpoint import (
    ANY_TOKEN,
    PUBLIC,
    SIGNED,
    Call,
    Endpoint,
    Param,
    error_response,
    json_response,
)
from sparkwing.controller.httperror import HttpError
from sparkwing.controller.routing import path_params
from sparkwing.controller.schemas import Schema, validate
from sparkwing.controller.scopes import allows
from sparkwing.errors import (
    InvalidKeyError,
    NotFoundError,
    NotSupportedError,
    PreconditionFailedError,
    SparkwingError,
    StorageError,
    UsageError,
)

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from sparkwing.controller.backend import Backend
    from sparkwing.controller.tokens import TokenInfo

log = logging.getLogger("sparkwing.controller")

MAX_JSON_BODY = 64 * 1024 * 1024
# Deeper documents are refused: nothing the API stores nests this far, and a reader
# (json.loads in a client, a recursive printer) would fail on it.
MAX_JSON_DEPTH = 64
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-f]", re.IGNORECASE)


def asgi_handler(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of ``endpoint``; the stores are ``request.app.state.backend``."""
    from starlette.concurrency import run_in_threadpool

    is_async = inspect.iscoroutinefunction(endpoint.handler)
    if is_async and endpoint.body is not None:
        raise TypeError(f"{endpoint.name}: a streaming handler cannot take a JSON body")

    def parse_and_handle(call: Call, raw: bytes | None) -> Any:
        # Parsing a large body (20,000 log lines) takes milliseconds: not on the event loop.
        if raw is not None and endpoint.body is not None:
            call.body = parse_json(raw, endpoint.body, endpoint.check_body)
        return endpoint.handler(call)

    async def invoke(call: Call) -> Response:
        try:
            if is_async:
                result = await endpoint.handler(call)
            else:
                raw = None
                if endpoint.body is not None:
                    raw = await read_bounded(call.request, MAX_JSON_BODY, "JSON bodies")
                result = await run_in_threadpool(parse_and_handle, call, raw)
        except Exception as exc:
            return _map_error(exc, endpoint)
        return _to_response(result, endpoint)

    async def handle(request: Request) -> Response:
        backend: Backend = request.app.state.backend
        try:
            token = await _authenticate(request, endpoint, backend)
            call = _call(request, endpoint, backend, token)
            replay_key = _replay_key(request, endpoint, token)
            if replay_key is not None:
                return await backend.replays.run(replay_key, lambda: invoke(call))
            return await invoke(call)
        except Exception as exc:
            return _map_error(exc, endpoint)

    return handle


def _call(request: Request, endpoint: Endpoint, backend: Backend, token: TokenInfo | None) -> Call:
    """The handler's view of the request, every parameter parsed and checked."""
    call = Call(request, backend, token, path={}, query={}, headers={})
    sources: dict[str, Any] = {
        "path": path_params(endpoint.path, endpoint.slashed, request) if endpoint.params else {},
        "query": request.query_params,
        "header": request.headers,
    }
    targets = {"path": call.path, "query": call.query, "header": call.headers}
    for param in endpoint.params:
        raw = sources[param.where].get(param.name)
        if raw is None:
            if param.required:
                raise UsageError(f"parameter {param.name} is required")
            continue
        targets[param.where][param.name] = parse_param(param, str(raw))
    return call


async def _authenticate(request: Request, endpoint: Endpoint, backend: Backend) -> TokenInfo | None:
    from starlette.concurrency import run_in_threadpool

    if endpoint.scope in (PUBLIC, SIGNED):
        return None
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise HttpError(401, "Unauthorized", "missing bearer token (Authorization: Bearer swu_...)")
    token = await run_in_threadpool(backend.tokens.verify, value.strip())
    if token is None:
        raise HttpError(401, "Unauthorized", "invalid or revoked token")
    if token.expired():
        message = f"token {token.name!r} expired at {token.expires_at}; rotate it or create another"
        raise HttpError(401, "Unauthorized", message)
    if endpoint.scope != ANY_TOKEN and not allows(token.scopes, endpoint.scope):
        message = f"token {token.name!r} lacks scope {endpoint.scope}"
        raise HttpError(403, "Forbidden", message, scope=endpoint.scope)
    return token


def _replay_key(request: Request, endpoint: Endpoint, token: TokenInfo | None) -> str | None:
    key = request.headers.get("idempotency-key")
    if not key or endpoint.method == "GET" or token is None:
        return None
    if len(key) > 200:
        raise UsageError("Idempotency-Key is longer than 200 characters")
    # Per token: one token can never be answered with another's replayed response.
    return f"{token.id}\x00{endpoint.method}\x00{request.url.path}\x00{key}"


# -- parsing ---------------------------------------------------------------------------
async def read_bounded(request: Request, limit: int, what: str) -> bytes:
    """The whole request body, refused (413) past ``limit`` bytes."""
    too_large = HttpError(413, "PayloadTooLarge", f"{what} are limited to {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes, schema: Schema, check: Callable[[Any], Any] | None = None) -> Any:
    try:
        doc = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise UsageError(f"request body nests deeper than {MAX_JSON_DEPTH} levels") from None
    if _SURROGATE_ESCAPE.search(raw):
        # A lone surrogate cannot be stored as UTF-8: refuse it here rather than fail later.
        try:
            json.dumps(doc, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise UsageError("request body holds an unpaired UTF-16 surrogate") from None
    if check is not None:
        return check(doc)  # which builds the exact shape it accepts: no depth to bound
    if too_deep(doc, MAX_JSON_DEPTH):
        raise UsageError(f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    validate(doc, schema)
    return doc


def too_deep(doc: Any, limit: int) -> bool:
    """Whether ``doc`` nests objects and arrays more than ``limit`` levels (iteratively, so
    the check itself cannot exhaust the stack)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_param(param: Param, raw: str) -> Any:
    kind = param.schema.get("type")
    value: Any = raw
    if kind == "integer":
        if not re.fullmatch(r"-?\d{1,19}", raw):
            raise UsageError(f"parameter {param.name} must be an integer")
        value = int(raw)
    elif kind == "number":
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(f"parameter {param.name} must be a number") from None
    elif kind == "boolean":
        if raw not in ("true", "false", "1", "0"):
            raise UsageError(f"parameter {param.name} must be true or false")
        value = raw in ("true", "1")
    validate(value, param.schema, f"parameter {param.name}")
    if param.check is not None:
        param.check(value)
    return value


# -- answers ---------------------------------------------------------------------------
def _map_error(exc: BaseException, endpoint: Endpoint) -> Response:
    if isinstance(exc, HttpError):
        return error_response(exc.status, exc.kind, str(exc), **exc.extra)
    kind = type(exc).__name__
    if isinstance(exc, InvalidKeyError | UsageError):
        return error_response(400, kind, str(exc))
    if isinstance(exc, NotFoundError):
        return error_response(404, kind, str(exc))
    if isinstance(exc, PreconditionFailedError):
        return error_response(endpoint.conflict_status, kind, str(exc))
    if isinstance(exc, NotSupportedError):
        return error_response(501, kind, str(exc))
    if isinstance(exc, StorageError):
        log.warning("%s %s: storage error: %s", endpoint.method, endpoint.path, exc)
        return error_response(503, kind, str(exc))
    if isinstance(exc, SparkwingError):
        return error_response(400, kind, str(exc))
    # The message may quote request data (a secret value): the log gets the type and the
    # frames of the traceback, never the message.
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("%s %s failed with %s at\n%s", endpoint.method, endpoint.path, kind, frames)
    return error_response(500, "InternalError", f"internal error ({kind}); see the controller log")


def _to_response(result: Any, endpoint: Endpoint) -> Response:
    from starlette.responses import Response

    if isinstance(result, Response):
        return result
    if result is None:
        return Response(status_code=204)
    return json_response(result, endpoint.ok.status)
