"""Bulk cache transfers (put_file / get_file) through a controller: uploads land in the cache
by rename, downloads survive retries and broken connections, reused connections that went
stale are replaced, TLS works, and the controller's spool never outlives its owner."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sparkwing.controller import client as client_module
from sparkwing.controller.client import RETRY_ENV, ControllerClient
from sparkwing.controller.server import bind, serve_in_thread, tune_malloc
from sparkwing.controller.spool import open_spool
from sparkwing.errors import ConfigError, StorageError
from sparkwing.surfaces.cache.controller import ControllerCache
from sparkwing.surfaces.cache.filesystem import FilesystemCache
from sparkwing.surfaces.open import open_cache
from sparkwing.surfaces.spec import SurfaceSpec
from tests.controller.harness import Controller, controller, local_profile

__all__ = ["controller"]
DATA = os.urandom(3 * 1024 * 1024 + 5)  # past the controller's in-memory answer size
OBJECT = "/v1/cache/objects/bin/x"


@pytest.fixture
def fresh(controller: Controller, tmp_path: Path) -> Controller:
    controller.reset(local_profile(tmp_path / "controller"))
    return controller


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "artifact.bin"
    path.write_bytes(DATA)
    return path


def test_an_upload_is_moved_into_the_cache_from_a_spool_beside_it(
    fresh: Controller, src: Path, tmp_path: Path
) -> None:
    cache = open_cache(fresh.spec(fresh.token()))
    cache.put_file("bin/x", src)
    store = fresh.backend.cache
    assert isinstance(store, FilesystemCache)
    spool = fresh.backend.spool.path
    assert spool.parent == store.root and spool.name.startswith(".sparkwing-spool-")
    assert os.listdir(spool) == ["owner.lock"]  # the upload left nothing behind
    assert (store.root / "bin" / "x").read_bytes() == DATA
    assert [i.key for i in cache.list("")] == ["bin/x"]  # the spool is never an object
    assert cache.get_file("bin/x", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == DATA


def test_head_of_a_large_object_gives_its_size_only(fresh: Controller, src: Path) -> None:
    token = fresh.token()
    open_cache(fresh.spec(token)).put_file("bin/x", src)
    answer = httpx.head(fresh.url + OBJECT, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.headers["content-length"] == str(len(DATA)) and answer.content == b""


def test_a_refused_token_is_reported_even_mid_upload(fresh: Controller, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(16 * 1024 * 1024))  # more than the socket buffers hold
    with pytest.raises(ConfigError, match="refused the token"):
        open_cache(fresh.spec("swu_wrong")).put_file("bin/x", big)
    with pytest.raises(ConfigError, match=r"lacks scope cache\.write"):
        open_cache(fresh.spec(fresh.token("cache.read"))).put_file("bin/x", big)


class Script:
    """A fake controller: ``plan`` says, per call, whether to answer 503, cut the body
    short, or answer for real; it records each call's idempotency key and body size."""

    def __init__(self, plan: list[str]) -> None:
        self.plan = plan
        self.keys: list[str | None] = []
        self.sizes: list[int] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        body = await request.body()
        self.keys.append(request.headers.get("idempotency-key"))
        self.sizes.append(len(body))
        step = self.plan[len(self.keys) - 1] if len(self.keys) <= len(self.plan) else "ok"
        if step == "503":
            response: Response = JSONResponse({"error": "restarting", "type": "StorageError"}, 503)
            return await response(scope, receive, send)
        if request.method == "PUT":
            return await JSONResponse({"etag": None})(scope, receive, send)
        length = str(len(DATA)).encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
        )
        if step == "cut":
            await send({"type": "http.response.body", "body": DATA[:1000], "more_body": True})
            raise RuntimeError("connection cut on purpose")  # uvicorn drops the connection
        await send({"type": "http.response.body", "body": DATA})


@pytest.fixture
def script() -> Iterator[tuple[str, Script]]:
    handler = Script([])
    app = Starlette(routes=[Route("/{path:path}", handler)])
    with serve_in_thread(app, access_log=False) as server:
        yield server.url, handler


def test_an_upload_answered_503_is_sent_again_whole_with_the_same_key(
    script: tuple[str, Script], src: Path
) -> None:
    url, handler = script
    handler.plan = ["503", "503"]
    ControllerCache(ControllerClient(url, "swu_x")).put_file("bin/x", src)
    assert handler.sizes == [len(DATA)] * 3
    assert len(set(handler.keys)) == 1 and handler.keys[0]


def test_a_download_cut_short_is_fetched_again(script: tuple[str, Script], tmp_path: Path) -> None:
    url, handler = script
    handler.plan = ["cut", "503", "cut"]
    dest = tmp_path / "dest.bin"
    dest.write_bytes(b"previous content")
    assert ControllerCache(ControllerClient(url, "swu_x")).get_file("bin/x", dest)
    assert len(handler.keys) == 4
    assert dest.read_bytes() == DATA
    assert os.listdir(tmp_path) == ["dest.bin"]  # no temp file left


def test_a_download_that_never_completes_fails_and_keeps_the_old_file(
    script: tuple[str, Script], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = script
    handler.plan = ["cut"] * 1000
    monkeypatch.setenv(RETRY_ENV, "0.3")
    dest = tmp_path / "dest.bin"
    dest.write_bytes(b"previous content")
    with pytest.raises(StorageError, match="unreachable: cannot read from the cache"):
        ControllerCache(ControllerClient(url, "swu_x")).get_file("bin/x", dest)
    assert dest.read_bytes() == b"previous content"
    assert os.listdir(tmp_path) == ["dest.bin"]


def test_a_connection_the_server_closed_is_replaced_without_a_retry(
    tmp_path: Path, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = Script([])
    app = Starlette(routes=[Route("/{path:path}", handler)])
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    cache = ControllerCache(ControllerClient(f"http://127.0.0.1:{port}", "swu_x"))
    with serve_in_thread(app, port=port, access_log=False):
        cache.put_file("bin/x", src)  # leaves a kept-alive connection behind
    monkeypatch.setenv(RETRY_ENV, "0")  # one attempt: only a fresh connection can succeed
    with serve_in_thread(app, port=port, access_log=False):
        assert cache.get_file("bin/x", tmp_path / "dest.bin")
        cache.put_file("bin/x", src)
    assert (tmp_path / "dest.bin").read_bytes() == DATA
    assert len(handler.keys) == 3


def test_a_forked_child_opens_its_own_connections(fresh: Controller, src: Path) -> None:
    cache = open_cache(fresh.spec(fresh.token()))
    cache.put_file("bin/x", src)  # the parent now holds an idle connection
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        try:
            cache.put_file("bin/child", src)
            os._exit(0 if cache.get("bin/child") == DATA else 1)
        except BaseException:
            os._exit(2)
    assert os.waitpid(pid, 0)[1] == 0
    cache.put_file("bin/parent", src)
    assert cache.get("bin/parent") == DATA


def test_an_unknown_host_fails_fast(src: Path) -> None:
    cache = ControllerCache(ControllerClient("http://no-such-host.invalid:8080", "swu_x"))
    with pytest.raises(StorageError, match=r"no-such-host\.invalid:8080: cannot write.*host name"):
        cache.put_file("bin/x", src)


def test_transfers_over_tls_with_a_private_ca(
    tmp_path: Path, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sparkwing.controller.app import build_app
    from sparkwing.controller.backend import open_backend
    from tests.controller.harness import KEY
    from tests.controller.test_client import _self_signed

    cert, key = _self_signed(tmp_path)
    backend = open_backend(local_profile(tmp_path / "controller"), KEY, os.environ)
    _, token = backend.tokens.create("tls", ("cache.read", "cache.write"))
    app = build_app(backend)
    with serve_in_thread(app, tls_cert=str(cert), tls_key=str(key), access_log=False) as server:
        spec = SurfaceSpec(type="controller", url=server.url, token=token)
        monkeypatch.setenv(RETRY_ENV, "0")
        with pytest.raises(StorageError, match="unreachable"):  # an unknown CA is refused
            open_cache(spec).put_file("bin/x", src)
        monkeypatch.setenv(client_module.CA_ENV, str(cert))
        cache = open_cache(spec)
        cache.put_file("bin/x", src)
        assert cache.get_file("bin/x", tmp_path / "dest.bin")
        assert (tmp_path / "dest.bin").read_bytes() == DATA
        client_module.client_for(spec).close_idle()  # else shutdown waits for the TLS link


def test_spools_left_by_a_dead_controller_are_swept(tmp_path: Path) -> None:
    cache = FilesystemCache(tmp_path / "cache")
    live = open_spool(cache)
    dead = tmp_path / "cache" / f".sparkwing-spool-{uuid.uuid4().hex[:8]}"
    dead.mkdir()
    (dead / "owner.lock").touch()  # its owner crashed: nobody holds the lock
    (dead / "put-1").write_bytes(b"half an upload")
    other = open_spool(cache)
    try:
        assert not dead.exists()
        assert live.path.is_dir() and other.path.is_dir() and live.path != other.path
    finally:
        other.close()
        live.close()
    assert not live.path.exists() and not other.path.exists()


def test_malloc_tuning_defers_to_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        assert tune_malloc() is False
        return
    assert tune_malloc() is True  # thresholds fixed (the server calls it on start)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1048576")
    assert tune_malloc() is False  # the operator's own setting wins
