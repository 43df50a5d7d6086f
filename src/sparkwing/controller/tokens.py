"""API tokens: random values shown once, stored only as their SHA-256, each with scopes.

A token is ``swu_`` plus 43 URL-safe characters (256 random bits), so a plain hash is as
strong as a salted one and lets a request's token be found by one indexed look-up.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sparkwing.controller.metadb import MetaDB
from sparkwing.controller.scopes import parse_scopes
from sparkwing.errors import PreconditionFailedError, UsageError

PREFIX = "swu_"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# A verified token is trusted this long without a database look-up: revocation takes
# effect within this many seconds.
VERIFY_CACHE_SECONDS = 2.0
_TOUCH_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: str
    last_used_at: str | None = None


def hash_token(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _info(row: tuple[object, ...]) -> TokenInfo:
    token_id, name, scopes, created, used = row
    return TokenInfo(
        id=str(token_id),
        name=str(name),
        scopes=tuple(str(scopes).split(",")),
        created_at=str(created),
        last_used_at=None if used is None else str(used),
    )


class TokenStore:
    def __init__(self, db: MetaDB) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._verified: dict[str, tuple[float, TokenInfo]] = {}
        self._touched: dict[str, float] = {}

    def create(self, name: str, scopes: str | tuple[str, ...]) -> tuple[TokenInfo, str]:
        """A new token; returns its record and its value (the only time the value exists)."""
        if not _NAME_RE.match(name):
            raise UsageError(
                f"token name {name!r} must be 1-64 letters, digits, '.', '_' or '-' "
                "(starting with a letter or digit)"
            )
        granted = parse_scopes(scopes if isinstance(scopes, str) else ",".join(scopes))
        if self._find(name) is not None:
            raise PreconditionFailedError(f"a token named {name!r} already exists")
        value = PREFIX + secrets.token_urlsafe(32)
        info = TokenInfo(
            id="tok_" + secrets.token_hex(6), name=name, scopes=granted, created_at=_now()
        )
        try:
            self.db.execute(
                "INSERT INTO controller_tokens (id, name, token_hash, scopes, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (info.id, name, hash_token(value), ",".join(granted), info.created_at),
            )
        except Exception as exc:
            if self._find(name) is not None:  # lost a race with a concurrent create
                raise PreconditionFailedError(f"a token named {name!r} already exists") from None
            raise exc
        return info, value

    def list(self) -> list[TokenInfo]:
        rows = self.db.query(
            "SELECT id, name, scopes, created_at, last_used_at FROM controller_tokens ORDER BY name"
        )
        return [_info(row) for row in rows]

    def _find(self, name_or_id: str) -> TokenInfo | None:
        rows = self.db.query(
            "SELECT id, name, scopes, created_at, last_used_at FROM controller_tokens"
            " WHERE name = ? OR id = ?",
            (name_or_id, name_or_id),
        )
        return _info(rows[0]) if rows else None

    def revoke(self, name_or_id: str) -> TokenInfo | None:
        """Delete the token named (or with id) ``name_or_id``; None when there is none."""
        found = self._find(name_or_id)
        if found is None:
            return None
        self.db.execute("DELETE FROM controller_tokens WHERE id = ?", (found.id,))
        with self._lock:
            self._verified.clear()
        return found

    def verify(self, value: str) -> TokenInfo | None:
        """The token whose value is ``value``, or None (unknown, revoked or malformed)."""
        if not value.startswith(PREFIX) or len(value) > 200:
            return None
        digest = hash_token(value)
        now = time.monotonic()
        with self._lock:
            cached = self._verified.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        rows = self.db.query(
            "SELECT id, name, scopes, created_at, last_used_at FROM controller_tokens"
            " WHERE token_hash = ?",
            (digest,),
        )
        if not rows:
            with self._lock:
                self._verified.pop(digest, None)
            return None
        info = _info(rows[0])
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[digest] = (now + VERIFY_CACHE_SECONDS, info)
            touch = self._touched.get(info.id, 0.0) + _TOUCH_EVERY_SECONDS <= now
            if touch:
                self._touched[info.id] = now
        if touch:
            # Recorded at most once a minute per token: a write per request would be waste.
            self.db.execute(
                "UPDATE controller_tokens SET last_used_at = ? WHERE id = ?", (_now(), info.id)
            )
        return info
