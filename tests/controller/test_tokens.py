"""Token lifetimes: an expired token is a 401 that says so, a rotated token's old value stops
working, a database from before expiries keeps its tokens, and the database is private."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from sparkwing.controller.metadb import SqliteMetaDB
from sparkwing.controller.tokens import TokenStore, hash_token
from tests.controller.harness import Controller, controller, empty_controller

if TYPE_CHECKING:
    from tests.conftest import Cli, CliResult

__all__ = ["controller", "empty_controller"]


def _whoami(ctl: Controller, token: str) -> httpx.Response:
    return httpx.get(ctl.url + "/v1/whoami", headers={"Authorization": f"Bearer {token}"})


def test_an_expired_token_is_401_saying_it_expired(ctl: Controller) -> None:
    tokens = ctl.backend.tokens
    info, value = tokens.create("short-lived", "runs.read", expires_in=3600)
    assert info.expires_at is not None and not info.expired()
    assert _whoami(ctl, value).status_code == 200
    # Its hour passes.
    tokens.db.execute(
        "UPDATE controller_tokens SET expires_at = ? WHERE id = ?",
        ("2000-01-01T00:00:00Z", info.id),
    )
    tokens._forget()  # what a restart or the verify cache's expiry does
    got = _whoami(ctl, value)
    assert got.status_code == 401
    assert "'short-lived' expired at 2000-01-01T00:00:00Z" in got.json()["error"]


def test_a_rotated_token_keeps_its_name_and_scopes_and_drops_its_old_value(
    ctl: Controller,
) -> None:
    tokens = ctl.backend.tokens
    info, old = tokens.create("runner", ("runs.read", "runs.write"))
    rotated = tokens.rotate("runner")
    assert rotated is not None
    again, new = rotated
    assert new != old and (again.id, again.name, again.scopes) == (info.id, "runner", info.scopes)
    assert _whoami(ctl, old).status_code == 401
    got = _whoami(ctl, new)
    assert got.status_code == 200 and got.json()["name"] == "runner"
    assert tokens.rotate("nobody") is None


def test_a_database_from_before_expiries_keeps_its_tokens(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE controller_tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
            " token_hash TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL, created_at TEXT NOT NULL,"
            " last_used_at TEXT)"
        )
        value = "swu_" + "x" * 43
        db.execute(
            "INSERT INTO controller_tokens VALUES (?, ?, ?, ?, ?, NULL)",
            ("tok_old", "old", hash_token(value), "runs.read", "2026-01-01T00:00:00Z"),
        )
    store = TokenStore(SqliteMetaDB(path))
    try:
        found = store.verify(value)
        assert found is not None and (found.name, found.expires_at) == ("old", None)
        _, fresh = store.create("new", "runs.read", expires_in=60)
        assert [t.name for t in store.list()] == ["new", "old"]
        assert store.verify(fresh) is not None
    finally:
        store.db.close()
    SqliteMetaDB(path).close()  # opening it again migrates nothing and breaks nothing


def test_the_controller_database_is_private(tmp_path: Path) -> None:
    db = SqliteMetaDB(tmp_path / "new" / "state.db")
    try:
        TokenStore(db).create("t", "runs.read")
    finally:
        db.close()
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    for path in (tmp_path / "new").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_token_create_expires_and_rotate_through_the_cli(tmp_path: Path, cli: Cli) -> None:
    folder = tmp_path / "controller"
    (folder / ".sparkwing").mkdir(parents=True)
    (folder / ".sparkwing" / "sparkwing.yaml").write_text(
        "profiles:\n"
        "  store:\n"
        f'    state: {{type: sqlite, path: "{tmp_path}/data/state.db"}}\n'
        f'    cache: {{type: filesystem, path: "{tmp_path}/data/cache"}}\n'
        f'    logs: {{type: filesystem, path: "{tmp_path}/data/logs"}}\n'
    )

    def token(*args: str) -> CliResult:
        return cli("-C", str(folder), "controller", "token", *args, "--profile", "store")

    made = token("create", "--name", "ci", "--scope", "runs.read", "--expires", "30d", "-o", "json")
    assert made.code == 0, made.stderr
    created = made.json()
    assert created["expires_at"] > created["created_at"]
    listed = token("list")
    assert listed.code == 0, listed.stderr
    assert "EXPIRES" in listed.stdout.splitlines()[0] and created["expires_at"] in listed.stdout
    rotated = token("rotate", "ci")
    assert rotated.code == 0, rotated.stderr
    assert rotated.stdout.strip().startswith("swu_")
    assert rotated.stdout.strip() != created["token"]
    assert f"rotated token ci ({created['id']}), expires {created['expires_at']}" in rotated.stderr
    docs = token("list", "-o", "json").ndjson()
    assert [(d["name"], d["expires_at"]) for d in docs] == [("ci", created["expires_at"])]
    bad = token("create", "--name", "x", "--scope", "runs.read", "--expires", "soon")
    assert bad.code == 2 and bad.stderr.startswith("error: --expires")
    assert len(bad.stderr.strip().splitlines()) == 1
    missing = token("rotate", "nobody")
    assert missing.code == 2 and "no token named or with id 'nobody'" in missing.stderr
