"""The runs page over a real sqlite store (served as `sparkwing dashboard` serves it): newest
first, a page at a time through the store's cursor, and every filter."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from sparkwing.controller.server import serve_in_thread
from sparkwing.dashboard.app import local_app
from sparkwing.dashboard.auth import OneTimeLogin
from sparkwing.dashboard.source import ProfileSource
from sparkwing.ids import new_run_id
from sparkwing.surfaces.state.base import RunRecord
from sparkwing.surfaces.state.sqlite import SqliteState
from tests.controller.harness import local_profile

RUNS = 130
START = datetime(2026, 11, 1, tzinfo=UTC)


def _at(i: int) -> str:
    return (START + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[httpx.Client, list[str]]]:
    state = SqliteState(tmp_path / "state.db")
    ids = []
    for i in range(RUNS):
        run = RunRecord(
            run_id=new_run_id(START + timedelta(minutes=i)),
            pipeline="deploy" if i % 10 == 0 else "ci",
            status="failed" if i % 4 == 0 else "success",
            created_at=_at(i),
            started_at=_at(i),
            finished_at=_at(i),
            git={"sha": f"{i:040x}", "branch": "release" if i % 25 == 0 else "main"},
            trigger="retry" if i == 7 else "cli",
        )
        state.create_run(run)
        ids.append(run.run_id)
    state.close()
    profile = local_profile(tmp_path)  # sqlite state.db, filesystem cache and logs
    login = OneTimeLogin("tester")
    server = serve_in_thread(local_app(ProfileSource(profile, None), login), access_log=False)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get(f"/?token={login.value}").status_code == 303
        yield http, ids[::-1]  # newest first
    server.stop()


def _shown(html: str) -> list[str]:
    body = html.split('id="runs-rows">', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'href="/runs/(run-[^"]+)"', body)


def _older(html: str) -> str | None:
    found = re.search(r'<a href="(/runs\?[^"]*cursor=[^"]+)">Older</a>', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_pages_walk_the_history_newest_first(client: tuple[httpx.Client, list[str]]) -> None:
    http, newest_first = client
    seen: list[str] = []
    page = http.get("/runs")
    assert "data-live" in page.text  # the first page updates live
    while True:
        seen += _shown(page.text)
        older = _older(page.text)
        if older is None:
            break
        page = http.get(older)
        assert "data-live" not in page.text and ">Newest</a>" in page.text
    assert seen == newest_first


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("pipeline=deploy", lambda i: i % 10 == 0),
        ("status=failed", lambda i: i % 4 == 0),
        ("branch=release", lambda i: i % 25 == 0),
        ("trigger=retry", lambda i: i == 7),
        ("since=2026-11-01T02:00:00Z", lambda i: i >= 120),
        ("pipeline=deploy&status=failed", lambda i: i % 20 == 0),
    ],
)
def test_filters(client: tuple[httpx.Client, list[str]], query: str, expected: object) -> None:
    http, newest_first = client
    assert callable(expected)
    wanted = [rid for n, rid in enumerate(newest_first) if expected(RUNS - 1 - n)]
    shown: list[str] = []
    page = http.get("/runs?" + query)
    while True:
        shown += _shown(page.text)
        older = _older(page.text)
        if older is None:
            break
        assert query.split("=")[0] in older  # the filters stay on the next page
        page = http.get(older)
    assert shown == wanted


def test_bad_filters_are_one_message(client: tuple[httpx.Client, list[str]]) -> None:
    http, _ = client
    bad = http.get("/runs?status=sleeping")
    assert bad.status_code == 400 and "status must be one of" in bad.text
    since = http.get("/runs?since=yesterday-ish")
    assert since.status_code == 400 and "--since" in since.text
    none = http.get("/runs?pipeline=nothing")
    assert none.status_code == 200 and "No runs match these filters" in none.text
    missing = http.get("/runs/run-20261101-000000-zzzz")
    assert missing.status_code == 404
    invalid = http.get("/runs/..%2Fetc/jobs/x/log")
    assert invalid.status_code in (400, 404)
