"""Runs the cache conformance suite against the ``type: http`` cache on a real nginx (WebDAV
PUT / DELETE, JSON autoindex), plus what is particular to it: nginx ignores conditional
writes, so the probe and ``profile check`` say so, and failures are one line naming the URL."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sparkwing.errors import ConfigError, StorageError
from sparkwing.surfaces.cache.base import Cache
from sparkwing.surfaces.cache.http import HttpObjectStore
from sparkwing.surfaces.objectstore.common import RetryPolicy
from sparkwing.surfaces.objectstore.probe import probe_conditional_writes
from sparkwing.surfaces.open import open_cache
from sparkwing.surfaces.spec import SurfaceSpec

from ..conftest import Cli, ProjectFiles
from ..servers import server
from .cache_suite import CacheConformance

FAST = RetryPolicy(max_retries=3, initial_backoff=0.01, max_backoff=0.05, timeout=5.0)


def _prefix() -> str:
    return f"t-{os.urandom(6).hex()}"  # every test gets an empty cache of its own


@pytest.fixture
def http_spec() -> SurfaceSpec:
    return SurfaceSpec(type="http", url=server("nginx"), prefix=_prefix())


class TestHttpCache(CacheConformance):
    @pytest.fixture
    def cache(self, http_spec: SurfaceSpec) -> Iterator[Cache]:
        cache = open_cache(http_spec)
        yield cache
        cache.close()


def test_nginx_ignores_preconditions_and_the_probe_says_so(http_spec: SurfaceSpec) -> None:
    cache = open_cache(http_spec)
    try:
        assert cache.conditional_writes is False
        # Degraded as on an S3 endpoint that ignores preconditions: nobody is refused.
        cache.put_if_absent("memo/lock", b"mine")
        cache.put_if_absent("memo/lock", b"theirs")
        assert cache.get("memo/lock") == b"theirs"
        store = HttpObjectStore(str(http_spec.url), http_spec.prefix)
        assert probe_conditional_writes(store) is False
        assert [m.key for m in store.list("coord/")] == []  # the probe cleaned up
        store.close()
    finally:
        cache.close()


def test_profile_check_reports_conditional_writes_not_enforced(
    project: ProjectFiles, cli: Cli
) -> None:
    url = server("nginx")
    project.yaml(
        f"""
        profiles:
          web:
            cache: {{type: http, url: "{url}", prefix: "{_prefix()}/${{PROFILE}}"}}
        """
    )
    result = cli("profile", "check", "--profile", "web", "-o", "json")
    assert result.code == 0, result.stderr
    rows = {r["surface"]: r for r in result.ndjson()}
    assert rows["cache"]["type"] == "http"
    assert rows["cache"]["reachable"] is True
    assert rows["cache"]["conditional_writes"] == "not enforced"
    human = cli("profile", "check", "--profile", "web")
    cache_line = next(x for x in human.stdout.splitlines() if x.startswith("cache"))
    assert " yes " in cache_line and "not enforced" in cache_line


def test_url_is_required_and_checked(project: ProjectFiles, cli: Cli) -> None:
    project.yaml("profiles:\n  web:\n    cache: {type: http}\n")
    result = cli("profile", "check", "--profile", "web")
    assert result.code == 2
    sparkwing_yaml = project.dir / "sparkwing.yaml"
    assert result.stderr == f"error: {sparkwing_yaml}:3: cache backend type=http requires url\n"
    with pytest.raises(ConfigError, match="url must be an http"):
        open_cache(SurfaceSpec(type="http", url="ftp://example.test/"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_one_line_naming_the_url() -> None:
    port = _closed_port()
    store = HttpObjectStore(f"http://ci:pa55word@127.0.0.1:{port}/c", "team", retry=FAST)
    with pytest.raises(StorageError) as err:
        store.get("memo/x")
    assert str(err.value) == (
        f"cache store http://127.0.0.1:{port}/c/team/: cannot read 'memo/x': "
        "endpoint unreachable (connection failed after retries)"
    )
    assert "pa55word" not in store.describe()


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first ``fail`` requests, then serves one object; records what
    Authorization headers it saw."""

    fail = 0
    seen: list[str | None] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        if type(self).fail > 0:
            type(self).fail -= 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[tuple[str, type[_Flaky]]]:
    handler = type("Handler", (_Flaky,), {"fail": 0, "seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", handler
    httpd.shutdown()
    httpd.server_close()


def test_transient_5xx_is_retried_then_reported(flaky: tuple[str, type[_Flaky]]) -> None:
    url, handler = flaky
    handler.fail = 2
    store = HttpObjectStore(url, retry=FAST)
    got = store.get("memo/x")
    assert got is not None and got[0] == b"ok"
    assert len(handler.seen) == 3
    handler.fail = 100
    with pytest.raises(StorageError) as err:
        store.get("memo/x")
    assert str(err.value) == f"cache store {url}: cannot read 'memo/x': HTTP 503"
    store.close()


def test_token_goes_in_a_header_only(
    flaky: tuple[str, type[_Flaky]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, handler = flaky
    monkeypatch.setenv("SPARKWING_TEST_HTTP_TOKEN", "swu_secret_789")
    cache = open_cache(SurfaceSpec(type="http", url=url, token_env="SPARKWING_TEST_HTTP_TOKEN"))
    assert cache.get("memo/x") == b"ok"
    assert handler.seen == ["Bearer swu_secret_789"]
    assert "swu_secret_789" not in cache.describe()
    monkeypatch.delenv("SPARKWING_TEST_HTTP_TOKEN")
    with pytest.raises(ConfigError, match="SPARKWING_TEST_HTTP_TOKEN"):
        open_cache(SurfaceSpec(type="http", url=url, token_env="SPARKWING_TEST_HTTP_TOKEN"))
