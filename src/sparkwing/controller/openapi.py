"""The OpenAPI 3.1 document the controller serves, built from the endpoint descriptions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sparkwing.controller import schemas as s
from sparkwing.controller.endpoint import JSON_TYPE, PUBLIC, SIGNED, Endpoint, Reply

_ERROR_TEXT = {
    400: "Invalid input: a bad id or key ('..', '/', NUL, control characters), parameter or body.",
    401: "No token, or an unknown or revoked one.",
    403: "The token lacks the operation's scope.",
    404: "Not found.",
    409: "Conflict: it already exists.",
    412: "Precondition failed: the object exists, or its etag changed.",
    413: "Body too large.",
    422: "Understood but not actionable: the commit is missing, or its project file invalid.",
    501: "The backing store does not support this operation.",
    502: "An upstream (a git repository) could not be reached or read.",
    503: "A backing store is unreachable or failed; retry later.",
}


def _error(status: int) -> dict[str, Any]:
    return {
        "description": _ERROR_TEXT[status],
        "content": {JSON_TYPE: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _reply(reply: Reply) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description}
    if reply.schema is not None:
        out["content"] = {JSON_TYPE: {"schema": reply.schema}}
    elif reply.media is not None:
        out["content"] = {reply.media: {"schema": {"type": "string"}}}
    if reply.headers:
        out["headers"] = {
            name: {"description": text, "schema": s.STR} for name, text in reply.headers.items()
        }
    return out


def _tag(path: str) -> str:
    part = path.split("/")[2] if path.startswith("/v1/") else "meta"
    return {"memo": "runs", "nodes": "runs"}.get(part, part)


def operation(ep: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": ep.name,
        "summary": ep.summary,
        "tags": [_tag(ep.path)],
    }
    if ep.params:
        op["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "description": p.description,
                "schema": p.schema,
            }
            for p in ep.params
        ]
    if ep.body is not None:
        op["requestBody"] = {"required": True, "content": {JSON_TYPE: {"schema": ep.body}}}
    elif ep.raw_body is not None:
        binary = {"type": "string", "format": "binary"}
        op["requestBody"] = {"required": True, "content": {ep.raw_body: {"schema": binary}}}
    responses = {str(ep.ok.status): _reply(ep.ok)}
    statuses = set(ep.errors)
    if ep.params or ep.body is not None or ep.raw_body is not None:
        statuses.add(400)
    if ep.body is not None or ep.raw_body is not None:
        statuses.add(413)
    if ep.scope == PUBLIC:
        op["security"] = []
    elif ep.scope == SIGNED:
        op["security"] = []  # a webhook: the body's signature (per repository) is checked
        op["x-sparkwing-scope"] = SIGNED
        statuses |= {401, 503}
    else:
        op["x-sparkwing-scope"] = ep.scope
        statuses |= {401, 403, 503}
    responses.update({str(code): _error(code) for code in sorted(statuses)})
    op["responses"] = responses
    return op


def document(endpoints: Iterable[Endpoint], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        paths.setdefault(ep.path, {})[ep.method.lower()] = operation(ep)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sparkwing controller",
            "version": version,
            "description": (
                "Every surface a runner uses (state, cache, logs, secrets) over HTTP. "
                "Authenticate with `Authorization: Bearer swu_...`; each operation needs the "
                "scope in its x-sparkwing-scope (admin covers all). Writes may carry an "
                "Idempotency-Key header: a retry with the same key gets the first answer."
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": s.ERROR},
        },
        "security": [{"bearer": []}],
    }
