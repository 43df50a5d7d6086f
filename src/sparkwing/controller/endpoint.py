"""One description per API operation: method, path, scope, parameters, body, responses.

The route table, the request pipeline, the OpenAPI document and the security tests all
read these descriptions, so a new operation is routed, checked, documented and tested by
being described once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sparkwing.controller.schemas import Schema

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from sparkwing.controller.backend import Backend
    from sparkwing.controller.tokens import TokenInfo

PUBLIC = "public"  # an Endpoint.scope: no token needed
ANY_TOKEN = "any"  # an Endpoint.scope: any valid token
SIGNED = "signed"  # an Endpoint.scope: no token; the handler checks a webhook signature
JSON_TYPE = "application/json"


@dataclass(frozen=True)
class Param:
    """A path or query parameter; ``check`` validates ids (sparkwing.ids) before any work."""

    name: str
    where: Literal["path", "query", "header"]
    schema: Schema
    description: str
    required: bool = False
    check: Callable[[str], object] | None = None
    slashes: bool = False  # a path parameter that is a slash-separated key


@dataclass(frozen=True)
class Reply:
    """A documented response: a JSON ``schema``, or a raw ``media`` type (streams)."""

    status: int
    description: str
    schema: Schema | None = None
    media: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # OpenAPI style: /v1/runs/{run_id}
    name: str
    summary: str
    scope: str
    handler: Callable[[Call], Any]
    ok: Reply
    params: tuple[Param, ...] = ()
    body: Schema | None = None  # JSON body schema
    raw_body: str | None = None  # media type of a streamed body
    errors: tuple[int, ...] = ()  # statuses beyond 400/401/403 it may answer
    # Replaces the generic body validation; what it returns becomes the handler's body.
    check_body: Callable[[Any], Any] | None = None
    conflict_status: int = 409  # how PreconditionFailedError is answered

    @property
    def slashed(self) -> frozenset[str]:
        """Path parameters that are slash-separated keys."""
        return frozenset(p.name for p in self.params if p.where == "path" and p.slashes)


@dataclass
class Call:
    """What a handler receives: validated parameters and body, the opened stores, the token."""

    request: Request
    backend: Backend
    token: TokenInfo | None
    path: dict[str, str]
    query: dict[str, Any]
    headers: dict[str, str]
    body: Any = None


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    from starlette.responses import Response

    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status_code=status, media_type=JSON_TYPE, headers=headers)


def error_response(status: int, kind: str, message: str, **extra: str) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="sparkwing"'} if status == 401 else None
    return json_response({"error": message, "type": kind, **extra}, status, headers)
