"""API tokens: random values shown once, stored only as their SHA-256, each with scopes and
an optional expiry; rotating a token gives its name and scopes a new value.

A token is ``swu_`` plus 43 URL-safe characters (256 random bits), so a plain hash is as
strong as a salted one and lets a request's token be found by one indexed look-up.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

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
    expires_at: str | None = None

    def expired(self, now: str | None = None) -> bool:
        # Times are all UTC in one fixed format, so text order is time order.
        return self.expires_at is not None and self.expires_at <= (now or _now())


def hash_token(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _now(after_seconds: float = 0.0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=after_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_COLUMNS = "id, name, scopes, created_at, last_used_at, expires_at"


def _info(row: tuple[object, ...]) -> TokenInfo:
    token_id, name, scopes, created, used, expires = row
    return TokenInfo(
        id=str(token_id),
        name=str(name),
        scopes=tuple(str(scopes).split(",")),
        created_at=str(created),
        last_used_at=None if used is None else str(used),
        expires_at=None if expires is None else str(expires),
    )


def _new_value() -> str:
    return PREFIX + secrets.token_urlsafe(32)


class TokenStore:
    def __init__(self, db: MetaDB) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._verified: dict[str, tuple[float, TokenInfo]] = {}
        self._touched: dict[str, float] = {}

    def create(
        self, name: str, scopes: str | tuple[str, ...], expires_in: float | None = None
    ) -> tuple[TokenInfo, str]:
        """A new token, valid for ``expires_in`` seconds (None: until revoked); returns its
        record and its value (the only time the value exists)."""
        if not _NAME_RE.match(name):
            raise UsageError(
                f"token name {name!r} must be 1-64 letters, digits, '.', '_' or '-' "
                "(starting with a letter or digit)"
            )
        granted = parse_scopes(scopes if isinstance(scopes, str) else ",".join(scopes))
        if self._find(name) is not None:
            raise PreconditionFailedError(f"a token named {name!r} already exists")
        if expires_in is not None and expires_in <= 0:
            raise UsageError("a token's expiry must be in the future")
        value = _new_value()
        info = TokenInfo(
            id="tok_" + secrets.token_hex(6),
            name=name,
            scopes=granted,
            created_at=_now(),
            expires_at=None if expires_in is None else _now(expires_in),
        )
        try:
            self.db.execute(
                "INSERT INTO controller_tokens"
                " (id, name, token_hash, scopes, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    info.id,
                    name,
                    hash_token(value),
                    ",".join(granted),
                    info.created_at,
                    info.expires_at,
                ),
            )
        except Exception as exc:
            if self._find(name) is not None:  # lost a race with a concurrent create
                raise PreconditionFailedError(f"a token named {name!r} already exists") from None
            raise exc
        return info, value

    def list(self) -> list[TokenInfo]:
        rows = self.db.query(f"SELECT {_COLUMNS} FROM controller_tokens ORDER BY name")
        return [_info(row) for row in rows]

    def _find(self, name_or_id: str) -> TokenInfo | None:
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM controller_tokens WHERE name = ? OR id = ?",
            (name_or_id, name_or_id),
        )
        return _info(rows[0]) if rows else None

    def revoke(self, name_or_id: str) -> TokenInfo | None:
        """Delete the token named (or with id) ``name_or_id``; None when there is none."""
        found = self._find(name_or_id)
        if found is None:
            return None
        self.db.execute("DELETE FROM controller_tokens WHERE id = ?", (found.id,))
        self._forget()
        return found

    def rotate(
        self, name_or_id: str, expires_in: float | None = None
    ) -> tuple[TokenInfo, str] | None:
        """A new value for the token named ``name_or_id`` (same id, name and scopes; the
        old value stops working); ``expires_in`` sets a new expiry, else the old one is
        kept. None when there is no such token."""
        found = self._find(name_or_id)
        if found is None:
            return None
        if expires_in is not None and expires_in <= 0:
            raise UsageError("a token's expiry must be in the future")
        expires_at = found.expires_at if expires_in is None else _now(expires_in)
        value = _new_value()
        changed = self.db.execute(
            "UPDATE controller_tokens SET token_hash = ?, expires_at = ? WHERE id = ?",
            (hash_token(value), expires_at, found.id),
        )
        if not changed:  # revoked meanwhile
            return None
        self._forget()
        return replace(found, expires_at=expires_at), value

    def _forget(self) -> None:
        with self._lock:
            self._verified.clear()

    def verify(self, value: str) -> TokenInfo | None:
        """The token whose value is ``value``, or None (unknown, revoked or malformed); an
        expired one is returned as it is (the caller tells it apart with ``expired``)."""
        if not value.startswith(PREFIX) or len(value) > 200:
            return None
        digest = hash_token(value)
        now = time.monotonic()
        with self._lock:
            cached = self._verified.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM controller_tokens WHERE token_hash = ?", (digest,)
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
        if touch and not info.expired():
            # Recorded at most once a minute per token: a write per request would be waste.
            self.db.execute(
                "UPDATE controller_tokens SET last_used_at = ? WHERE id = ?", (_now(), info.id)
            )
        return info
