"""``sparkwing dashboard`` through the real CLI: bound to 127.0.0.1, its printed link logs in
once, the pages show the profile's runs; usage errors are one line and exit 2."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.engine.swtest import Proj

PIPE = """
@sw.pipeline("hello")
def hello(plan, args, rc):
    plan.job("greet", "echo '<b>hello</b>'")
"""


@pytest.fixture
def served(proj: Proj) -> Iterator[tuple[str, Proj]]:
    proj.pipeline(PIPE)
    assert proj.sw("run", "hello").code == 0
    proc = proj.popen("dashboard", "--port", "0", "--no-browser")
    assert proc.stdout is not None
    link = ""
    for line in proc.stdout:  # ends at EOF if it exits without printing the link
        found = re.search(r"open: (\S+)", line)
        if found:
            link = found.group(1)
            break
    try:
        assert link, f"no link printed (exit {proc.poll()})"
        yield link, proj
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err


def test_the_link_logs_in_once_on_loopback(served: tuple[str, Proj]) -> None:
    link, proj = served
    parts = urlsplit(link)
    assert parts.hostname == "127.0.0.1"
    assert re.fullmatch(r"token=[A-Za-z0-9_-]{20,}", parts.query)
    base = f"{parts.scheme}://{parts.netloc}"
    with httpx.Client(base_url=base, timeout=30) as anonymous:
        page = anonymous.get("/runs", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
    with httpx.Client(timeout=30) as browser:
        first = browser.get(link, follow_redirects=False)
        assert first.status_code == 303
        assert first.headers["location"] == "/"  # the token leaves the address bar
        assert "HttpOnly" in first.headers["set-cookie"]
        runs = browser.get(base + "/runs")
        assert runs.status_code == 200
        run_id = proj.sw("runs", "list", "-o", "json").out.split('"run_id": "')[1].split('"')[0]
        assert run_id in runs.text
        log = browser.get(f"{base}/runs/{run_id}/jobs/greet/log")
        assert "&lt;b&gt;hello&lt;/b&gt;" in log.text
    with httpx.Client(timeout=30) as someone_else:
        again = someone_else.get(link, follow_redirects=False)
        assert again.status_code == 401
        assert "each works once" in again.text


def test_usage_errors(proj: Proj) -> None:
    proj.pipeline(PIPE)
    bad = proj.sw("dashboard", "--port", "70000", "--no-browser")
    assert bad.code == 2 and bad.err.startswith("error: ") and len(bad.err.splitlines()) == 1
    assert "Traceback" not in bad.err
    helped = proj.sw("dashboard", "--help")
    assert helped.code == 0 and "one-time token" in helped.out
