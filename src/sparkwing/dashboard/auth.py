"""How a person logs in to the dashboard: with a controller API token (its name is who
decides, its scopes what the pages allow), or, for ``sparkwing dashboard``, with the one-time
token printed in the URL it opens."""

from __future__ import annotations

import abc
import hmac
import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from sparkwing.controller.scopes import ADMIN
from sparkwing.dashboard.sessions import Identity, Session

if TYPE_CHECKING:
    from sparkwing.controller.tokens import TokenStore

READ_SCOPE = "runs.read"


class LoginRefused(Exception):
    """A login that did not succeed; the message is shown on the login page."""


class Authenticator(abc.ABC):
    # Whether ``?token=`` in a URL logs in: only for a value that works once (a URL ends up
    # in histories and logs, where a lasting token must never be).
    url_login = False

    @abc.abstractmethod
    def login(self, value: str) -> tuple[Identity, str | None]:
        """The identity ``value`` logs in as and the credential to check it by later;
        LoginRefused otherwise."""

    @abc.abstractmethod
    def still_valid(self, session: Session) -> Identity | None:
        """The session's identity now, or None once it must log in again."""


class TokenLogin(Authenticator):
    """Controller API tokens, read from the controller's token table on every check."""

    def __init__(self, tokens: Callable[[], TokenStore]) -> None:
        self.tokens = tokens

    def _identity(self, value: str) -> Identity:
        info = self.tokens().verify(value.strip())
        if info is None:
            raise LoginRefused("unknown or revoked token")
        if info.expired():
            raise LoginRefused(f"token {info.name!r} has expired")
        identity = Identity(info.name, info.scopes)
        if not identity.can(READ_SCOPE):
            raise LoginRefused(f"token {info.name!r} cannot read runs (it lacks {READ_SCOPE})")
        return identity

    def login(self, value: str) -> tuple[Identity, str | None]:
        return self._identity(value), value.strip()

    def still_valid(self, session: Session) -> Identity | None:
        if session.credential is None:
            return None
        try:
            return self._identity(session.credential)
        except LoginRefused:
            return None


class OneTimeLogin(Authenticator):
    """``sparkwing dashboard``: the token in the printed URL opens one session, as the
    person who started it, with every scope (they can reach the stores directly anyway)."""

    url_login = True

    def __init__(self, user: str, value: str | None = None) -> None:
        self.user = user
        self.value = value or secrets.token_urlsafe(24)
        self._used = False
        self._lock = threading.Lock()

    def login(self, value: str) -> tuple[Identity, str | None]:
        with self._lock:
            if self._used or not hmac.compare_digest(value.strip(), self.value):
                raise LoginRefused(
                    "this link's token is not valid (each works once): "
                    "restart `sparkwing dashboard` for a new one"
                )
            self._used = True
        return Identity(self.user, (ADMIN,)), None

    def still_valid(self, session: Session) -> Identity | None:
        return session.identity
