"""Secret values and token values stay secret: never in the controller's logs, never in an
answer other than an authorised secret read, never stored in clear; and a controller will
not start without its key, or with the wrong one."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sparkwing.controller.app import build_app
from sparkwing.controller.backend import open_backend, open_metadb_for
from sparkwing.controller.server import serve_in_thread
from sparkwing.controller.tokens import TokenStore, hash_token
from sparkwing.controller.vault import KEY_ENV, generate_key, load_key
from sparkwing.errors import ConfigError
from sparkwing.surfaces.open import open_secrets
from sparkwing.surfaces.secrets.base import SecretValue
from sparkwing.surfaces.spec import SurfaceSpec
from tests.controller.harness import KEY, local_profile

SECRET = "hunter2-\u00e9-p4ssw0rd-value"


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A controller with its access log on (captured through the root logger)."""
    root = tmp_path / "controller"
    app = build_app(open_backend(local_profile(root), KEY, os.environ))
    with serve_in_thread(app, access_log=True) as server:
        yield server.url, root


def _files(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_secret_and_token_values_never_leak(
    logged: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    url, root = logged
    caplog.set_level(logging.DEBUG)
    # Tokens are created the way the CLI does: straight in the controller's database.
    tokens = TokenStore(open_metadb_for(local_profile(root), os.environ))
    _, admin = tokens.create("admin", "admin")
    _, reader = tokens.create("reader", "runs.read")
    tokens.db.close()

    store = open_secrets(SurfaceSpec(type="controller", url=url, token=admin))
    store.set("DEPLOY_KEY", SECRET)
    store.set("REGION", "eu-west-1", masked=False)
    answers: list[tuple[str, httpx.Response]] = []
    with httpx.Client(base_url=url) as client:

        def call(what: str, method: str, path: str, token: str | None, **kw: object) -> None:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            answers.append((what, client.request(method, path, headers=headers, **kw)))  # type: ignore[arg-type]

        call("resolve", "GET", "/v1/secrets/DEPLOY_KEY", admin)
        call("list", "GET", "/v1/secrets", admin)
        call("forbidden", "GET", "/v1/secrets/DEPLOY_KEY", reader)
        call("no token", "GET", "/v1/secrets/DEPLOY_KEY", None)
        call("bad token", "GET", "/v1/secrets/DEPLOY_KEY", admin + "x")
        call("token in query", "GET", f"/v1/runs?access_token={admin}&api_key={admin}", None)
        call("bad name", "PUT", "/v1/secrets/BAD-NAME", admin, json={"value": SECRET})
        call("bad body", "PUT", "/v1/secrets/OTHER", admin, json={"value": SECRET, "x": 1})
        call("whoami", "GET", "/v1/whoami", admin)
        call("openapi", "GET", "/openapi.json", None)
    assert store.resolve("DEPLOY_KEY") == SecretValue(SECRET, masked=True)
    assert [w for w, r in answers if r.status_code == 200] == [
        "resolve",
        "list",
        "whoami",
        "openapi",
    ]
    for what, response in answers:
        text = response.text + repr(response.headers)
        if what != "resolve":
            assert SECRET not in text, what
        assert admin not in text and reader not in text, what
    assert SECRET in answers[0][1].text

    # The controller's own loggers (the test's httpx client logs its URLs on its side).
    logs = "\n".join(
        logging.Formatter().format(r)
        for r in caplog.records
        if r.name.startswith(("uvicorn", "sparkwing", "starlette"))
    )
    assert "GET /v1/secrets/DEPLOY_KEY" in logs  # the access log is on and captured
    assert "access_token=<redacted>" in logs and "api_key=<redacted>" in logs
    assert SECRET not in logs
    assert admin not in logs and reader not in logs

    # At rest: the value is encrypted and tokens are stored as their hash only.
    stored = _files(root)
    assert SECRET.encode() not in stored
    assert admin.encode() not in stored and reader.encode() not in stored
    assert hash_token(admin).encode() in stored


def test_the_key_must_be_given_and_well_formed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=KEY_ENV):
        load_key({}, None)
    with pytest.raises(ConfigError, match="not valid base64"):
        load_key({KEY_ENV: "not base64!"}, None)
    with pytest.raises(ConfigError, match="holds 18 bytes, expected 32"):
        load_key({KEY_ENV: "A" * 24}, None)
    key_file = tmp_path / "key"
    key = generate_key()
    key_file.write_text(key + "\n")
    assert load_key({}, key_file) == load_key({KEY_ENV: key}, None)
    with pytest.raises(ConfigError, match="cannot read the controller key file"):
        load_key({}, tmp_path / "missing")


def test_a_wrong_key_refuses_to_start(tmp_path: Path) -> None:
    profile = local_profile(tmp_path / "controller")
    backend = open_backend(profile, KEY, os.environ)
    backend.vault.set("A", "x")
    backend.close()
    with pytest.raises(ConfigError, match="does not match"):
        open_backend(profile, os.urandom(32), os.environ)
    again = open_backend(profile, KEY, os.environ)
    assert again.vault.resolve("A") == SecretValue("x", masked=True)
    again.close()


def test_sealed_values_are_bound_to_their_name(tmp_path: Path) -> None:
    """Swapping ciphertexts between names in the database does not reveal one as the other."""
    import sqlite3

    from sparkwing.errors import StorageError

    profile = local_profile(tmp_path / "controller")
    backend = open_backend(profile, KEY, os.environ)
    backend.vault.set("A", "alpha")
    backend.vault.set("B", "beta")
    with sqlite3.connect(tmp_path / "controller" / "state.db") as db:
        sealed_b = db.execute("SELECT sealed FROM controller_secrets WHERE name='B'").fetchone()
        db.execute("UPDATE controller_secrets SET sealed = ? WHERE name = 'A'", sealed_b)
    with pytest.raises(StorageError, match="failed to decrypt"):
        backend.vault.resolve("A")
    backend.close()


def test_an_internal_error_is_a_500_that_never_repeats_its_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = open_backend(local_profile(tmp_path / "controller"), KEY, os.environ)
    _, token = backend.tokens.create("t", "runs.read")

    def explode(run_id: str) -> None:
        raise RuntimeError(f"driver bug while reading {SECRET}")

    monkeypatch.setattr(backend.state, "get_run", explode)
    with serve_in_thread(build_app(backend), access_log=False) as server:
        caplog.set_level(logging.INFO, logger="sparkwing.controller")
        answer = httpx.get(
            f"{server.url}/v1/runs/run-20260301-120000-abcd",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 500
    assert answer.json() == {
        "error": "internal error (RuntimeError); see the controller log",
        "type": "InternalError",
    }
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "sparkwing.controller")
    assert "GET /v1/runs/{run_id} failed with RuntimeError" in logged
    assert "in explode" in logged  # the frames, for whoever debugs it
    assert SECRET not in logged and SECRET not in answer.text
