"""The runner side's controller client: auth failures fail fast with one clear line,
transient failures are retried (and a retried write is applied once), garbage is refused."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sparkwing.controller import client as client_module
from sparkwing.controller.client import RETRY_ENV, ControllerClient, client_for, http
from sparkwing.controller.server import bind, make_server, serve_in_thread
from sparkwing.errors import ConfigError, StorageError
from sparkwing.surfaces.open import open_state
from sparkwing.surfaces.spec import SurfaceSpec
from sparkwing.surfaces.state.base import NewEvent, RunRecord
from sparkwing.surfaces.state.controller import ControllerState
from tests.controller.harness import Controller, controller, local_profile

__all__ = ["controller"]
RUN = "run-20260301-120000-abcd"


@pytest.fixture
def fresh(controller: Controller, tmp_path: Path) -> Controller:
    controller.reset(local_profile(tmp_path / "controller"))
    return controller


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RETRY_ENV, "1")


def test_a_bad_token_fails_fast_naming_the_controller(fresh: Controller) -> None:
    state = open_state(fresh.spec("swu_wrong"))
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        state.list_runs()
    assert time.monotonic() - started < 5  # not retried
    message = str(info.value)
    assert fresh.url in message and "refused the token" in message
    assert "swu_wrong" not in message
    assert "\n" not in message


def test_a_missing_scope_names_it(fresh: Controller) -> None:
    state = open_state(fresh.spec(fresh.token("runs.read")))
    assert state.list_runs().runs == []
    with pytest.raises(ConfigError) as info:
        state.create_run(RunRecord(run_id=RUN, pipeline="p"))
    message = str(info.value)
    assert fresh.url in message
    assert "lacks scope runs.write" in message and "--scope runs.write" in message


def test_token_from_the_environment(fresh: Controller, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SurfaceSpec(type="controller", url=fresh.url, token_env="SW_TEST_TOKEN")
    with pytest.raises(ConfigError, match="SW_TEST_TOKEN is not set"):
        open_state(spec)
    monkeypatch.setenv("SW_TEST_TOKEN", fresh.token())
    assert open_state(spec).list_runs().runs == []
    with pytest.raises(ConfigError, match="needs a token"):
        open_state(SurfaceSpec(type="controller", url=fresh.url))
    with pytest.raises(ConfigError, match="must be http"):
        open_state(SurfaceSpec(type="controller", url="ftp://x", token="t"))


def test_an_unreachable_controller_is_a_storage_error(quick_retries: None) -> None:
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    state = open_state(SurfaceSpec(type="controller", url=f"http://127.0.0.1:{port}", token="t"))
    with pytest.raises(StorageError) as info:
        state.get_run(RUN)
    assert f"controller 127.0.0.1:{port} unreachable" in str(info.value)
    assert RETRY_ENV in str(info.value)


def test_a_controller_that_comes_up_late_is_waited_for(
    controller: Controller, tmp_path: Path
) -> None:
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    from sparkwing.controller.app import build_app
    from sparkwing.controller.backend import open_backend
    from tests.controller.harness import KEY

    backend = open_backend(local_profile(tmp_path / "late"), KEY, os.environ)
    _, token = backend.tokens.create("late", "admin")
    state = open_state(SurfaceSpec(type="controller", url=f"http://127.0.0.1:{port}", token=token))
    result: list[object] = []
    caller = threading.Thread(target=lambda: result.append(state.list_runs()))
    caller.start()
    time.sleep(0.5)  # the first attempts are refused: nothing listens yet
    server = make_server(build_app(backend), access_log=False)
    serving = threading.Thread(
        target=server.run, kwargs={"sockets": [bind("127.0.0.1", port)]}, daemon=True
    )
    serving.start()
    caller.join(timeout=30)
    server.should_exit = True
    serving.join(timeout=30)
    assert len(result) == 1 and result[0].runs == []  # type: ignore[attr-defined]


def test_a_retried_write_is_applied_once(fresh: Controller) -> None:
    token = fresh.token()
    state = open_state(fresh.spec(token))
    state.create_run(RunRecord(run_id=RUN, pipeline="p"))
    key = uuid.uuid4().hex
    body = {"events": [{"kind": "tick", "ts": "t", "node_id": None, "data": {}}] * 3}
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    answers = [
        httpx.post(f"{fresh.url}/v1/runs/{RUN}/events", json=body, headers=headers)
        for _ in range(3)
    ]
    assert [a.json() for a in answers] == [{"seqs": [1, 2, 3]}] * 3
    assert [e.seq for e in state.list_events(RUN)] == [1, 2, 3]
    # Another key is another write.
    assert state.append_events(RUN, [NewEvent(kind="x", ts="t")]) == [4]


class Flaky:
    """A fake controller answering 503 twice, then for real; it records idempotency keys."""

    def __init__(self, final: Response) -> None:
        self.final = final
        self.calls = 0
        self.keys: list[str | None] = []

    async def __call__(self, request: Request) -> Response:
        self.calls += 1
        self.keys.append(request.headers.get("idempotency-key"))
        if self.calls <= 2:
            return JSONResponse({"error": "database restarting", "type": "StorageError"}, 503)
        return self.final


@pytest.fixture
def flaky() -> Iterator[tuple[str, Flaky]]:
    handler = Flaky(JSONResponse({"seqs": [7]}))

    async def endpoint(request: Request) -> Response:
        return await handler(request)

    app = Starlette(routes=[Route("/v1/runs/{run_id}/events", endpoint, methods=["POST"])])
    with serve_in_thread(app, access_log=False) as server:
        yield server.url, handler


def test_503_is_retried_with_the_same_idempotency_key(flaky: tuple[str, Flaky]) -> None:
    url, handler = flaky
    state = ControllerState(ControllerClient(url, "swu_x"))
    assert state.append_events(RUN, [NewEvent(kind="x", ts="t")]) == [7]
    assert handler.calls == 3
    assert len(set(handler.keys)) == 1 and handler.keys[0]


def test_503_until_the_budget_is_spent_reports_the_last_error(
    flaky: tuple[str, Flaky], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = flaky
    monkeypatch.setenv(RETRY_ENV, "0")
    state = ControllerState(ControllerClient(url, "swu_x"))
    with pytest.raises(StorageError, match=r"HTTP 503 \(database restarting\)"):
        state.append_events(RUN, [NewEvent(kind="x", ts="t")])
    assert handler.calls == 1


def test_garbage_answers_are_clear_errors() -> None:
    async def text(request: Request) -> Response:
        return PlainTextResponse("<html>proxy login</html>")

    async def missing(request: Request) -> Response:
        return PlainTextResponse("Not Found", 404)

    app = Starlette(
        routes=[Route("/v1/runs", text), Route("/v1/runs/{run_id}", missing, methods=["GET"])]
    )
    with serve_in_thread(app, access_log=False) as server:
        state = ControllerState(ControllerClient(server.url, "swu_x"))
        with pytest.raises(StorageError, match="invalid JSON"):
            state.list_runs()
        # A 404 that is not the controller's "no such run" is not taken for one.
        with pytest.raises(StorageError, match="unexpected body"):
            state.get_run(RUN)


def test_a_forked_child_gets_its_own_connection_pool() -> None:
    parent = http()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.write(write, b"1" if http() is not parent and http() is http() else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    assert http() is parent


def test_clients_are_shared_per_url_and_token(fresh: Controller) -> None:
    spec = fresh.spec("swu_a")
    assert client_for(spec) is client_for(spec)
    assert client_for(spec) is not client_for(fresh.spec("swu_b"))
    assert "swu_a" not in repr(client_for(spec)) and "swu_a" not in repr(spec)
    assert client_module.KEEPALIVE_EXPIRY < 30


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_tls_with_a_private_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sparkwing.controller.app import build_app
    from sparkwing.controller.backend import open_backend
    from tests.controller.harness import KEY

    cert, key = _self_signed(tmp_path)
    backend = open_backend(local_profile(tmp_path / "controller"), KEY, os.environ)
    _, token = backend.tokens.create("tls", "admin")
    app = build_app(backend)
    with serve_in_thread(app, tls_cert=str(cert), tls_key=str(key), access_log=False) as server:
        assert server.url.startswith("https://127.0.0.1:")
        spec = SurfaceSpec(type="controller", url=server.url, token=token)
        monkeypatch.setattr(client_module, "_shared", None)
        monkeypatch.setenv(RETRY_ENV, "0")
        with pytest.raises(StorageError, match="unreachable"):  # an unknown CA is refused
            open_state(spec).list_runs()
        monkeypatch.setattr(client_module, "_shared", None)
        monkeypatch.setenv(client_module.CA_ENV, str(cert))
        state = open_state(spec)
        state.create_run(RunRecord(run_id=RUN, pipeline="p"))
        assert [r.run_id for r in state.list_runs().runs] == [RUN]
        http().close()  # else the server waits out its grace period for the idle TLS link
    monkeypatch.setattr(client_module, "_shared", None)


def test_urls_with_credentials_are_never_shown_or_sent(fresh: Controller) -> None:
    url = fresh.url.replace("http://", "http://bob:hunter2@") + "/?x=1"
    state = open_state(SurfaceSpec(type="controller", url=url, token="swu_wrong"))
    with pytest.raises(ConfigError) as info:
        state.list_runs()  # the bearer token was sent, not bob's password
    assert "refused the token" in str(info.value)
    assert "hunter2" not in str(info.value) and "bob" not in str(info.value)


def test_an_unknown_host_fails_fast() -> None:
    spec = SurfaceSpec(type="controller", url="https://no-such-host.invalid:8443", token="t")
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"no-such-host\.invalid:8443: cannot list runs: host"):
        open_state(spec).list_runs()
    assert time.monotonic() - started < 10
