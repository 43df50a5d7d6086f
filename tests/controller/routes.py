"""Requests for every route of a controller app, built from its route table, so a route added
later is exercised by the security tests without anyone listing it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.routing import Route

from sparkwing.controller.endpoint import ANY_TOKEN, PUBLIC, SIGNED, Endpoint

# A valid value for each path parameter name the API uses.
VALID = {
    "run_id": "run-20260301-120000-abcd",
    "node_id": "build",
    "key": "memo/sample",
    "name": "SAMPLE_NAME",
    "kind": "approval",
    "worker": "build-1-4242-abcd",
    "repo": "app",
    "group": "deploy-prod",
}
# Invalid values per parameter, percent-encoded as they travel: each must be a 400.
BAD_SEGMENTS = ["..", ".", "a%2Fb", "a%00b", "a%0Ab", "a%7Fb", "%2E%2E", "a%5Cb"]
BAD_KEYS = ["memo/..", "memo/../x", "memo/./x", "memo//x", "memo/a%00b", "memo/a%0Ab", "%2E%2E/x"]
BAD_NAMES = ["..", "a%2Fb", "A%00B", "A%0AB", "1ABC", "A-B"]


@dataclass(frozen=True)
class Op:
    method: str
    template: str  # Starlette path, e.g. /v1/runs/{run_id:path}
    endpoint: Endpoint | None  # None for the OpenAPI document route

    @property
    def scope(self) -> str:
        return PUBLIC if self.endpoint is None else self.endpoint.scope

    @property
    def params(self) -> list[str]:
        return re.findall(r"\{(\w+)(?::\w+)?\}", self.template)

    def path(self, **values: str) -> str:
        """The concrete path: ``values`` (raw, already encoded) else valid ones, encoded."""

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return values[name]
            return "/".join(quote(part, safe="") for part in VALID[name].split("/"))

        return re.sub(r"\{(\w+)(?::\w+)?\}", fill, self.template)

    def body(self) -> tuple[dict[str, str], bytes]:
        """Headers and a body the operation accepts, so only the id can be at fault."""
        if self.endpoint is None:
            return {}, b""
        if self.endpoint.raw_body is not None:
            return {"Content-Type": self.endpoint.raw_body}, b"bytes"
        if self.endpoint.body is None:
            return {}, b""
        import json

        return {"Content-Type": "application/json"}, json.dumps(sample(self.endpoint.body)).encode()

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def sample(schema: dict[str, Any]) -> Any:
    """A minimal document satisfying ``schema`` (the subset the controller uses)."""
    if "anyOf" in schema:
        return sample(schema["anyOf"][0])
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        props = schema.get("properties", {})
        return {name: sample(props[name]) for name in schema.get("required", ())}
    return {
        "string": VALID["run_id"],
        "integer": max(0, schema.get("minimum", 0)),
        "number": 1.0,
        "boolean": True,
        "array": [],
        "null": None,
    }.get(kind, {})


def operations(app: Starlette) -> Iterator[Op]:
    """Every (method, route) of the app, with the endpoint description behind it."""
    by_name = {ep.name: ep for ep in app.state.endpoints}
    for route in app.routes:
        assert isinstance(route, Route)
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            yield Op(method, route.path, by_name.get(route.name))


def scoped(app: Starlette) -> list[Op]:
    return [op for op in operations(app) if op.scope not in (PUBLIC, ANY_TOKEN, SIGNED)]


def bad_values(param: str) -> list[str]:
    if param == "key":
        return BAD_KEYS
    if param == "name":
        return BAD_NAMES
    return BAD_SEGMENTS
