"""Large object transfers to a controller over plain HTTP/1.1 (``http.client``) on reused
keep-alive connections: a file goes out with sendfile and comes back with splice (see
:mod:`.receive`), so over plain TCP an artifact is not copied through this process at all,
where an HTTP library handles it 64 KiB at a time. The retries, auth and error mapping
around it are the controller client's (:mod:`sparkwing.controller.client`)."""

from __future__ import annotations

import contextlib
import http.client
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from sparkwing.controller.receive import LINK_ERRORS, Interrupted, body_into, describe
from sparkwing.errors import StorageError

if TYPE_CHECKING:
    import socket
    import ssl

MAX_IDLE = 8


class Answer:
    """The controller's answer to one transfer: status, headers, and its body read into
    memory (a small error answer) or into a file (the object)."""

    def __init__(self, response: http.client.HTTPResponse, sock: socket.socket) -> None:
        self.response, self.sock = response, sock
        self.status = response.status

    def headers(self) -> list[tuple[str, str]]:
        return self.response.getheaders()

    def read(self) -> bytes:
        try:
            return self.response.read()
        except LINK_ERRORS as exc:
            raise Interrupted(describe(exc)) from exc

    def into(self, fd: int) -> int:
        """The body written to ``fd`` (at its offset); its size."""
        return body_into(self.response, self.sock, fd)


class Link:
    """Keep-alive connections to one controller, reused across transfers of this process."""

    def __init__(
        self, scheme: str, host: str, port: int | None, timeouts: tuple[float, float]
    ) -> None:
        self.scheme, self.host = scheme, host
        self.port = port or (443 if scheme == "https" else 80)
        self.connect_timeout, self.timeout = timeouts
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._idle: list[tuple[float, http.client.HTTPConnection]] = []

    def _open(self, context: ssl.SSLContext | None) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.connect_timeout, context=context
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout)
        try:
            conn.connect()
        except BaseException:
            conn.close()
            raise
        assert conn.sock is not None
        conn.sock.settimeout(self.timeout)
        return conn

    def _take_idle(self, expiry: float) -> http.client.HTTPConnection | None:
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's sockets are not ours
                self._idle, self._pid = [], os.getpid()
            while self._idle:
                since, conn = self._idle.pop()
                if time.monotonic() - since < expiry:
                    return conn
                conn.close()
        return None

    def _give(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if self._pid == os.getpid() and len(self._idle) < MAX_IDLE:
                self._idle.append((time.monotonic(), conn))
                return
        conn.close()

    @contextlib.contextmanager
    def exchange(
        self,
        context: ssl.SSLContext | None,
        expiry: float,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: int | None = None,
        size: int = 0,
    ) -> Iterator[Answer]:
        """Send one request (``body``: a descriptor to send ``size`` bytes of) and give its
        answer; the connection is kept for reuse if the answer was read to its end."""
        conn, response = self._start(context, expiry, method, target, headers, body, size)
        assert conn.sock is not None
        try:
            yield Answer(response, conn.sock)
        except BaseException:
            conn.close()
            raise
        if response.isclosed() and not response.will_close and conn.sock is not None:
            self._give(conn)
        else:
            conn.close()

    def _start(
        self,
        context: ssl.SSLContext | None,
        expiry: float,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: int | None,
        size: int,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = self._take_idle(expiry)
        if conn is not None:
            try:
                return conn, _request(conn, method, target, headers, body, size)
            except LINK_ERRORS:
                conn.close()  # an idle connection the server had closed: again on a new one
            except BaseException:
                conn.close()
                raise
        conn = None
        try:
            conn = self._open(context)
            return conn, _request(conn, method, target, headers, body, size)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, LINK_ERRORS):
                raise Interrupted(describe(exc)) from exc
            raise

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, conn in idle:
            conn.close()


def _request(
    conn: http.client.HTTPConnection,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: int | None,
    size: int,
) -> http.client.HTTPResponse:
    conn.putrequest(method, target, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.putheader("Accept-Encoding", "identity")
    conn.endheaders()
    if body is not None and size:
        assert conn.sock is not None
        try:
            _send_file(conn, body, size)
        except OSError:
            # The server may have answered early (a refused token) and closed: that answer
            # explains the broken send better than the send's own error.
            with contextlib.suppress(*LINK_ERRORS):
                return conn.getresponse()
            raise
    return conn.getresponse()


def _send_file(conn: http.client.HTTPConnection, fd: int, size: int) -> None:
    assert conn.sock is not None
    # socket.sendfile copies from the page cache in the kernel; over TLS it falls back to
    # reads and sends by itself.
    with open(fd, "rb", closefd=False) as fh:
        sent = conn.sock.sendfile(fh, 0, size)
    if sent != size:
        raise StorageError(f"the file shrank while it was being sent ({sent} of {size} bytes)")
