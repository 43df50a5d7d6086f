"""The runner side's HTTP client for a controller: one shared httpx client per process,
bearer auth, retries with backoff for transient failures (connection errors, timeouts,
502/503/504), and one clear line for auth failures. Used by every ``controller`` surface.

Each write carries an ``Idempotency-Key`` that stays the same across its retries, so a
retried append whose first answer was lost is not applied twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from sparkwing import errors
from sparkwing.errors import ConfigError, StorageError
from sparkwing.retry import RetryPolicy

if TYPE_CHECKING:
    import ssl

    import httpx

    from sparkwing.controller.bulk import Answer, Link
    from sparkwing.surfaces.spec import SurfaceSpec

RETRY_ENV = "SPARKWING_CONTROLLER_RETRY_SECONDS"
CA_ENV = "SPARKWING_CONTROLLER_CA"
DEFAULT_RETRY_SECONDS = 30.0
TRANSIENT_STATUSES = frozenset({502, 503, 504})
# The deadline is read from RETRY_ENV per request (see _retry_budget).
_RETRY = RetryPolicy(deadline=DEFAULT_RETRY_SECONDS, initial=0.1, maximum=3.0)
KEEPALIVE_EXPIRY = 10.0  # below the server's keep-alive (see controller.server)
TIMEOUT, CONNECT_TIMEOUT = 60.0, 10.0
# Error types a controller answers with, mapped back to the exceptions the stores raise.
_ERRORS: dict[str, type[errors.SparkwingError]] = {
    cls.__name__: cls
    for cls in (
        errors.UsageError,
        errors.ConfigError,
        errors.InvalidKeyError,
        errors.StorageError,
        errors.NotFoundError,
        errors.PreconditionFailedError,
        errors.GateResolvedError,
        errors.NotSupportedError,
        errors.SchemaVersionError,
    )
}

T = TypeVar("T")
_lock = threading.Lock()
_shared: tuple[int, httpx.Client] | None = None
_contexts: dict[str, ssl.SSLContext] = {}


def ssl_context() -> ssl.SSLContext:
    """How controller certificates are checked: against the CA file of CA_ENV when set,
    else against certifi's bundle (what httpx does by default). Shared by every transfer."""
    import ssl

    ca = os.environ.get(CA_ENV, "")
    with _lock:
        if ca not in _contexts:
            import certifi

            _contexts[ca] = ssl.create_default_context(cafile=ca or certifi.where())
        return _contexts[ca]


def http() -> httpx.Client:
    """This process's client. A forked child gets its own: sockets must not be shared."""
    global _shared
    import httpx

    pid = os.getpid()
    context = ssl_context()
    with _lock:
        if _shared is None or _shared[0] != pid:
            client = httpx.Client(
                timeout=httpx.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT),
                limits=httpx.Limits(
                    max_connections=64,
                    max_keepalive_connections=16,
                    keepalive_expiry=KEEPALIVE_EXPIRY,
                ),
                verify=context,
                follow_redirects=False,
                trust_env=False,  # a proxy from the environment must not see the token
            )
            _shared = (pid, client)
        return _shared[1]


def segment(value: str) -> str:
    """One path segment, percent-encoded (ids are validated before they get here)."""
    return quote(value, safe="")


def key_path(key: str) -> str:
    return "/".join(segment(part) for part in key.split("/"))


def token_of(spec: SurfaceSpec) -> str:
    if spec.token:
        return spec.token
    if spec.token_env:
        value = os.environ.get(spec.token_env, "")
        if not value:
            raise ConfigError(
                f"controller token: environment variable {spec.token_env} is not set or empty"
            )
        return value
    raise ConfigError("controller profile needs a token (controller: {url, token or token_env})")


def encode_json(body: Any, what: str) -> bytes:
    try:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode()
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise StorageError(f"cannot {what}: the data is not JSON-serializable: {exc}") from None


def _retry_budget() -> float:
    try:
        return max(0.0, float(os.environ.get(RETRY_ENV, DEFAULT_RETRY_SECONDS)))
    except ValueError:
        return DEFAULT_RETRY_SECONDS


class ControllerClient:
    """Requests to one controller with one token."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        self.host = f"{host}:{port}" if port else host
        if parts.scheme not in ("http", "https") or not host:
            raise ConfigError(
                f"controller url for {self.host or '?'} must be http(s)://host[:port]"
            )
        # Without user:password (it would replace the bearer header, and must never be
        # printed) and without a query: safe to show, and what every request starts from.
        self.base = urlunsplit((parts.scheme, self.host, parts.path.rstrip("/"), "", ""))
        self._headers = {"Authorization": f"Bearer {token}"}
        self._prefix = parts.path.rstrip("/")
        self._where = (parts.scheme, parts.hostname or "", port)
        self._link: Link | None = None

    def __repr__(self) -> str:  # never the token
        return f"ControllerClient({self.base!r})"

    def describe(self) -> str:
        return f"controller {self.host}"

    def close_idle(self) -> None:
        """Close the idle connections kept for bulk transfers (the shared httpx client has
        its own, see :func:`http`)."""
        if self._link is not None:
            self._link.close()

    # -- errors ------------------------------------------------------------------------
    def fail(self, response: httpx.Response, what: str) -> NoReturn:
        """Raise the error a non-success ``response`` stands for."""
        try:
            doc = json.loads(response.read())
        except (ValueError, UnicodeDecodeError):
            doc = None
        if not (isinstance(doc, dict) and isinstance(doc.get("error"), str)):
            raise StorageError(
                f"{self.describe()}: {what} got HTTP {response.status_code} with an "
                "unexpected body (is the url a sparkwing controller?)"
            )
        message, kind = doc["error"], str(doc.get("type", ""))
        if response.status_code == 401:
            raise ConfigError(
                f"controller {self.base} refused the token ({message}); check the profile's "
                "controller token"
            )
        if response.status_code == 403 and not doc.get("scope"):
            raise ConfigError(f"controller {self.base}: {message}")  # not its run, say
        if response.status_code == 403:
            scope = doc.get("scope") or "?"
            raise ConfigError(
                f"controller {self.base}: the token lacks scope {scope} (needed to {what}); "
                f"create one with `sparkwing controller token create --scope {scope}`"
            )
        cls = _ERRORS.get(kind, StorageError)
        raise cls(message if cls is not StorageError else f"{self.describe()}: {message}")

    # -- requests ----------------------------------------------------------------------
    def _attempts(self) -> Iterator[int]:
        """Attempt numbers until the retry budget is spent; sleeps between attempts."""
        return _RETRY.with_deadline(_retry_budget()).pauses()

    def _send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content: Callable[[], Iterable[bytes] | bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        timeout: Any = None,
    ) -> httpx.Response:
        import httpx

        client = http()
        merged = dict(self._headers)
        if headers:
            merged.update(headers)
        if method != "GET":
            merged["Idempotency-Key"] = uuid.uuid4().hex
        data: bytes | None = None
        if body is not None:
            data = encode_json(body, what)
            merged["Content-Type"] = "application/json"
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        last: str = ""
        for _ in self._attempts():
            payload = content() if content is not None else data
            request = client.build_request(
                method,
                self.base + path,
                params=clean,
                content=payload,
                headers=merged,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
            try:
                response = client.send(request, stream=stream)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                if _unknown_host(exc):
                    raise self._host_unknown(what) from None
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if response.status_code in TRANSIENT_STATUSES:
                last = _transient(response)
                response.close()
                continue
            return response
        raise self._unreachable(what, last)

    def _host_unknown(self, what: str) -> StorageError:
        return StorageError(f"{self.describe()}: cannot {what}: host name not known")

    def _unreachable(self, what: str, last: str) -> StorageError:
        return StorageError(
            f"{self.describe()} unreachable: cannot {what} ({last}); retried for "
            f"{_retry_budget():g}s (set {RETRY_ENV} to change)"
        )

    def transfer(
        self,
        method: str,
        path: str,
        handle: Callable[[Answer], T],
        *,
        what: str,
        body: int | None = None,
        size: int = 0,
        missing: bool = False,
    ) -> T | None:
        """A large object sent from or received into a file (see :mod:`.bulk`), with the
        auth, idempotency key, retries and errors of every other request. ``body`` is a
        descriptor to send ``size`` bytes of; ``handle`` reads a 200 answer and is called
        again on a retry (raising :class:`~.receive.Interrupted` retries). None for a 404
        when ``missing``."""
        import httpx

        from sparkwing.controller.bulk import Link
        from sparkwing.controller.receive import Interrupted

        headers = dict(self._headers)
        if method != "GET":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        if body is not None:
            headers["Content-Length"] = str(size)
        with _lock:
            if self._link is None:
                scheme, host, port = self._where
                self._link = Link(scheme, host, port, (CONNECT_TIMEOUT, TIMEOUT))
            link = self._link
        context = ssl_context() if self._where[0] == "https" else None
        target = self._prefix + path
        last = ""
        for _ in self._attempts():
            try:
                with link.exchange(
                    context, KEEPALIVE_EXPIRY, method, target, headers, body, size
                ) as answer:
                    if answer.status == 200:
                        return handle(answer)
                    response = httpx.Response(
                        answer.status, headers=answer.headers(), content=answer.read()
                    )
            except Interrupted as exc:
                if _unknown_host(exc):
                    raise self._host_unknown(what) from None
                last = str(exc)
                continue
            if response.status_code in TRANSIENT_STATUSES:
                last = _transient(response)
                continue
            if missing and response.status_code == 404 and is_not_found(response):
                return None
            self.fail(response, what)
        raise self._unreachable(what, last)

    def call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        ok: tuple[int, ...] = (200, 201, 204),
        missing: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Send; the decoded JSON answer (None for 204, or for 404 when ``missing``)."""
        response = self._send(method, path, what=what, **kwargs)
        if missing and response.status_code == 404 and is_not_found(response):
            return None
        if response.status_code not in ok:
            self.fail(response, what)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise StorageError(f"{self.describe()}: {what} answered with invalid JSON") from None

    @contextlib.contextmanager
    def stream(
        self, method: str, path: str, *, what: str, **kwargs: Any
    ) -> Iterator[httpx.Response]:
        """A streamed response (closed on exit); transient failures before it starts are
        retried, errors raised."""
        response = self._send(method, path, what=what, stream=True, **kwargs)
        try:
            yield response
        finally:
            response.close()


def _transient(response: httpx.Response) -> str:
    """What a transient answer (502, 503, 504) said, for the error once retries run out."""
    note = f"HTTP {response.status_code}"
    with contextlib.suppress(Exception):
        note += f" ({json.loads(response.read())['error']})"
    return note


def _unknown_host(exc: BaseException) -> bool:
    """A name that does not resolve is a configuration error, not an outage: no retries.
    (A temporary resolver failure, EAI_AGAIN, is retried.)"""
    import socket

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror) and seen.errno == socket.EAI_NONAME:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_not_found(response: httpx.Response) -> bool:
    """Whether a 404 is the controller's "no such record" (not a missing route)."""
    try:
        doc = json.loads(response.read())
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and doc.get("type") == "NotFoundError"


_clients: dict[tuple[str, str], ControllerClient] = {}


def client_for(spec: SurfaceSpec) -> ControllerClient:
    """The client for a ``type: controller`` spec (its url and token, or token_env)."""
    if not spec.url:
        raise ConfigError("controller surface requires url (controller: {url, token})")
    token = token_of(spec)
    key = (spec.url, token)
    with _lock:
        found = _clients.get(key)
        if found is None:
            found = _clients[key] = ControllerClient(spec.url, token)
    return found
