"""Dashboard sessions: a random id in an HttpOnly, SameSite=Strict cookie, kept in this
process with its CSRF token, the logged-in identity and messages for the next page."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from sparkwing.controller.scopes import allows

COOKIE = "sw_session"
LIFETIME_SECONDS = 12 * 3600
# Sessions beyond this many are dropped oldest first: a flood of anonymous visits to the
# login page cannot grow the process without bound.
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Identity:
    """Who is logged in: decisions are recorded under ``name``; ``scopes`` as a token's."""

    name: str
    scopes: tuple[str, ...]

    def can(self, scope: str) -> bool:
        return allows(self.scopes, scope)


@dataclass
class Session:
    sid: str
    csrf: str
    expires: float
    identity: Identity | None = None
    # The controller token the session was opened with, verified again on every request so
    # a revoked or expired token ends its sessions too. Never sent back to the browser.
    credential: str | None = None
    flashes: list[tuple[str, str]] = field(default_factory=list)

    def flash(self, kind: str, text: str) -> None:
        self.flashes.append((kind, text))

    def take_flashes(self) -> list[tuple[str, str]]:
        taken, self.flashes = self.flashes, []
        return taken


class Sessions:
    def __init__(self, lifetime: float = LIFETIME_SECONDS) -> None:
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._by_id: dict[str, Session] = {}

    def new(self, identity: Identity | None = None, credential: str | None = None) -> Session:
        session = Session(
            sid=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            expires=time.time() + self.lifetime,
            identity=identity,
            credential=credential,
        )
        with self._lock:
            while len(self._by_id) >= MAX_SESSIONS:
                self._by_id.pop(next(iter(self._by_id)))
            self._by_id[session.sid] = session
        return session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            session = self._by_id.get(sid)
            if session is not None and session.expires <= time.time():
                del self._by_id[sid]
                return None
        return session

    def drop(self, sid: str) -> None:
        with self._lock:
            self._by_id.pop(sid, None)
