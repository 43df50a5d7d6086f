"""Security of the controller API, over its whole route table: no token is a 401, a token
without the route's scope a 403, an invalid id or key a 400 that changes nothing."""

from __future__ import annotations

import hashlib
import http.client
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sparkwing.controller.endpoint import ANY_TOKEN, PUBLIC, SIGNED
from sparkwing.controller.scopes import SCOPES
from tests.controller.harness import Controller, controller, local_profile
from tests.controller.routes import Op, bad_values, operations, scoped

__all__ = ["controller"]


class Raw:
    """http.client, which sends a path exactly as given (httpx would resolve '..')."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "", parts.port or 80

    def __call__(
        self, method: str, path: str, token: str | None = None, op: Op | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        headers, body = op.body() if op is not None else ({}, b"")
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            headers = {k.lower(): v for k, v in response.getheaders()}
            if headers.get("content-type", "").startswith("text/event-stream"):
                return response.status, headers, b""  # a live follow: it never ends
            return response.status, headers, response.read()
        finally:
            conn.close()


@pytest.fixture
def fresh(controller: Controller, tmp_path: Path) -> Path:
    root = tmp_path / "controller"
    controller.reset(local_profile(root))
    return root


@pytest.fixture
def raw(controller: Controller) -> Raw:
    return Raw(controller.url)


def _error(body: bytes) -> dict[str, str]:
    doc = json.loads(body)
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str), body
    return doc


def test_the_route_table_is_covered(controller: Controller) -> None:
    ops = list(operations(controller.app))
    assert len(ops) >= 40
    assert all(op.endpoint is not None or op.template == "/openapi.json" for op in ops)
    public = sorted(op.template for op in ops if op.scope == PUBLIC)
    assert public == ["/healthz", "/openapi.json"]


def test_every_route_without_a_token_is_401(controller: Controller, fresh: Path, raw: Raw) -> None:
    checked = 0
    for op in operations(controller.app):
        if op.scope == PUBLIC:
            status, _, _ = raw(op.method, op.path())
            assert status == 200, op
            continue
        if op.scope == SIGNED:
            continue  # webhooks check a per-repository signature instead: test_hooks.py
        for token in (None, "swu_not-a-real-token", "not even the prefix"):
            status, headers, body = raw(op.method, op.path(), token, op)
            assert status == 401, (str(op), token, body)
            assert _error(body)["type"] == "Unauthorized"
            assert headers.get("www-authenticate", "").startswith("Bearer")
            checked += 1
    assert checked >= 3 * 40


def test_malformed_authorization_headers_are_401(controller: Controller, raw: Raw) -> None:
    token = controller.token("admin")
    conn = http.client.HTTPConnection(raw.host, raw.port, timeout=30)
    for header in (token, f"Basic {token}", "Bearer", "Bearer  ", f"bearer{token}"):
        conn.request("GET", "/v1/runs", headers={"Authorization": header})
        response = conn.getresponse()
        response.read()
        assert response.status == 401, header
    conn.close()


def test_every_scoped_route_needs_its_scope(controller: Controller, fresh: Path, raw: Raw) -> None:
    ops = scoped(controller.app)
    needed = {op.scope for op in ops}
    assert needed == set(SCOPES) - {"admin"}  # every scope guards something
    without = {
        scope: controller.token(*(s for s in SCOPES if s not in (scope, "admin")))
        for scope in needed
    }
    only = {scope: controller.token(scope) for scope in needed}
    for op in ops:
        status, _, body = raw(op.method, op.path(), without[op.scope], op)
        assert status == 403, (str(op), body)
        doc = _error(body)
        assert doc["type"] == "Forbidden" and doc["scope"] == op.scope
        # With exactly that scope the request gets past authorization.
        status, _, body = raw(op.method, op.path(), only[op.scope], op)
        assert status not in (401, 403), (str(op), body)


def test_any_valid_token_may_ask_who_it_is(controller: Controller, raw: Raw) -> None:
    ops = [op for op in operations(controller.app) if op.scope == ANY_TOKEN]
    assert [op.template for op in ops] == ["/v1/whoami"]
    token = controller.token("logs.read")
    status, _, body = raw("GET", "/v1/whoami", token)
    assert status == 200
    assert json.loads(body)["scopes"] == ["logs.read"]


def _snapshot(root: Path) -> dict[str, str]:
    """Everything the controller stores: file digests, and databases as SQL dumps (their
    -wal/-shm files change on reads, their content does not)."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel.endswith(("-wal", "-shm")):
            found[rel] = "dir" if path.is_dir() else "skipped"
        elif path.suffix == ".db":
            with sqlite3.connect(path) as db:
                found[rel] = "\n".join(db.iterdump())
        else:
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _with_params(controller: Controller) -> Iterator[Op]:
    return (op for op in operations(controller.app) if op.params and op.scope != PUBLIC)


def test_bad_ids_and_keys_are_400_and_touch_nothing(
    controller: Controller, fresh: Path, raw: Raw
) -> None:
    token = controller.token("admin")
    raw("GET", "/v1/runs", token)  # the token's first use records last_used_at: do it now
    before = _snapshot(fresh)
    assert any(name.endswith(".db") for name in before)
    checked = 0
    for op in _with_params(controller):
        for param in op.params:
            for bad in bad_values(param):
                status, _, body = raw(op.method, op.path(**{param: bad}), token, op)
                assert status == 400, (str(op), param, bad, body)
                assert _error(body)["type"] in ("InvalidKeyError", "UsageError")
                checked += 1
    assert checked > 100
    # Unencoded dot segments, sent verbatim, are refused too.
    for method, path in (
        ("PUT", "/v1/cache/objects/memo/../bin/x"),
        ("GET", "/v1/cache/objects/../memo/x"),
        ("DELETE", "/v1/logs/.."),
        ("GET", "/v1/runs/../nodes"),
        ("PUT", "/v1/secrets/.."),
    ):
        status, _, body = raw(method, path, token)
        assert status == 400, (method, path, body)
    assert _snapshot(fresh) == before


def test_body_ids_are_validated_before_anything_is_written(
    controller: Controller, fresh: Path, raw: Raw
) -> None:
    token = controller.token("admin")
    conn = http.client.HTTPConnection(raw.host, raw.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    good = {"run_id": "run-20260301-120000-abcd", "node_id": "ok"}
    for body in (
        {"nodes": [good, {"run_id": "run-20260301-120000-abcd", "node_id": "../x"}]},
        {"nodes": [good, {"run_id": "a/b", "node_id": "ok"}]},
        {"run_id": "..", "pipeline": "p"},
    ):
        path = "/v1/runs" if "pipeline" in body else "/v1/nodes"
        conn.request("POST", path, body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        assert response.status == 400, response.read()
        response.read()
    for key in ("../x", "memo/../x", "", "memo/a\u0000b"):
        doc = json.dumps({"key": key, "holder": "h", "lease_seconds": 5})
        conn.request("POST", "/v1/memo/acquire", body=doc, headers=headers)
        response = conn.getresponse()
        assert response.status == 400, (key, response.read())
        response.read()
    conn.close()
    state = controller.backend.state
    assert state.list_nodes("run-20260301-120000-abcd") == []
    assert state.list_runs().runs == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'{"fields": {"status": NaN}}', "application/json"),
        (b'{"fields": {"status": "\\ud800"}}', "application/json"),
        (b'{"fields": {"bogus": 1}}', "application/json"),
        (b'{"fields": {"pid": 1e400}}', "application/json"),
        (b"[]", "application/json"),
        (b"\xff\xfe", "application/octet-stream"),
    ],
)
def test_garbage_bodies_are_400(
    controller: Controller, fresh: Path, raw: Raw, body: bytes, content_type: str
) -> None:
    token = controller.token("admin")
    conn = http.client.HTTPConnection(raw.host, raw.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    conn.request("PATCH", "/v1/runs/run-20260301-120000-abcd", body=body, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    assert response.status == 400, payload
    assert _error(payload)["type"] == "UsageError"
