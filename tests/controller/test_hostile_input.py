"""Input built to hurt: a deeply nested body is a 400, a cache key holding a percent-escape
that is not UTF-8 is a 400 (never decoded into U+FFFD), and no log search stalls the
controller (a substring unless regex is asked for, and then RE2, linear in the line)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from sparkwing.surfaces.logs.base import LogRecord
from tests.controller.harness import Controller, controller, empty_controller

__all__ = ["controller", "empty_controller"]
RUN = "run-20260301-120000-abcd"


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@pytest.mark.parametrize("depth", [65, 100_000])
def test_a_deeply_nested_body_is_400(ctl: Controller, depth: int) -> None:
    token = ctl.token("admin")
    body = '{"fields": {"args": ' + "[" * depth + "]" * depth + "}}"
    got = httpx.patch(f"{ctl.url}/v1/runs/{RUN}", content=body, headers=_headers(token))
    assert got.status_code == 400, got.text
    assert "nests deeper than 64 levels" in got.json()["error"]
    # A plan nested within the bound is fine.
    ok = '{"fields": {"args": {"a": ' + "[" * 60 + "]" * 60 + "}}}"
    created = httpx.post(
        f"{ctl.url}/v1/runs", json={"run_id": RUN, "pipeline": "p"}, headers=_headers(token)
    )
    assert created.status_code == 201, created.text
    got = httpx.patch(f"{ctl.url}/v1/runs/{RUN}", content=ok, headers=_headers(token))
    assert got.status_code == 204, got.text


@pytest.mark.parametrize("escape", ["%ff", "%c3", "%ed%a0%80", "%80abc"])
def test_a_key_escape_that_is_not_utf8_is_400(ctl: Controller, escape: str) -> None:
    token = ctl.token("cache.read", "cache.write")
    headers = {"Authorization": f"Bearer {token}"}
    path = f"{ctl.url}/v1/cache/objects/memo/a{escape}"
    put = httpx.put(path, content=b"one", headers=headers)
    assert put.status_code == 400, put.text
    assert "percent-escape that is not UTF-8" in put.json()["error"]
    assert httpx.get(path, headers=headers).status_code == 400
    assert list(ctl.backend.cache.list("memo/")) == []
    # A valid escape still names its key.
    ok = httpx.put(f"{ctl.url}/v1/cache/objects/memo/a%C3%A9", content=b"two", headers=headers)
    assert ok.status_code < 300, ok.text
    assert [o.key for o in ctl.backend.cache.list("memo/")] == ["memo/a\u00e9"]


def _search(ctl: Controller, token: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{ctl.url}/v1/logs/{RUN}/build",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def test_grep_is_a_substring_unless_regex_is_asked_for(ctl: Controller) -> None:
    token = ctl.token("logs.read", "logs.write")
    lines = ["version 1.2", "version 1x2", "(unclosed", "a+b"]
    ctl.backend.logs.append(RUN, "build", [LogRecord("2026-03-01T12:00:00Z", m) for m in lines])

    def found(**params: str) -> list[str]:
        got = _search(ctl, token, **params)
        assert got.status_code == 200, got.text
        return [r[2] for r in got.json()["records"]]

    assert found(grep="1.2") == ["version 1.2"]
    assert found(grep="(unclosed") == ["(unclosed"]
    assert found(grep="a+b") == ["a+b"]
    assert found(grep="1.2", regex="true") == ["version 1.2", "version 1x2"]
    bad = _search(ctl, token, grep="(unclosed", regex="true")
    assert bad.status_code == 400 and "invalid grep pattern" in bad.json()["error"]
    backref = _search(ctl, token, grep=r"(a)\1", regex="true")  # not linear: RE2 refuses it
    assert backref.status_code == 400, backref.text


def test_a_catastrophic_pattern_does_not_stall_the_controller(ctl: Controller) -> None:
    token = ctl.token("logs.read", "logs.write")
    line = "a" * 200_000 + "!"  # (a+)+$ backtracks exponentially on this with Python's re
    ctl.backend.logs.append(RUN, "build", [LogRecord("2026-03-01T12:00:00Z", line)] * 20)
    result: dict[str, object] = {}

    def search() -> None:
        started = time.monotonic()
        got = _search(ctl, token, grep="(a+)+$", regex="true")
        result["status"], result["seconds"] = got.status_code, time.monotonic() - started
        result["records"] = got.json()["records"]

    worker = threading.Thread(target=search)
    worker.start()
    slowest = 0.0
    while worker.is_alive():
        started = time.monotonic()
        assert httpx.get(f"{ctl.url}/healthz", timeout=30).status_code == 200
        slowest = max(slowest, time.monotonic() - started)
    worker.join()
    assert result["status"] == 200 and result["records"] == []
    # Generous bounds for a loaded machine: Python's re would take hours here.
    assert float(str(result["seconds"])) < 2.0, result
    assert slowest < 1.0, slowest
