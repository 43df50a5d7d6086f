"""Writing an HTTP response body into a file descriptor. Over plain TCP on Linux the bytes
go socket -> pipe -> file with splice (no copy through this process); otherwise (TLS,
chunked) they are read into one reused buffer. Network failures are :class:`Interrupted`;
a failing file raises its own OSError."""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import select
import socket
import ssl

BUFFER = 4 << 20
PIPE = 1 << 20  # the default limit of fcntl(F_SETPIPE_SZ) for unprivileged processes
# Errors of the link itself (a reset, a timeout, a cut-off answer), as opposed to a local
# file that cannot be written: only these are worth another attempt.
LINK_ERRORS = (OSError, http.client.HTTPException)
# A file or socket that cannot take part in splice: the buffered way does the rest.
_NO_SPLICE = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV})


class Interrupted(Exception):
    """The transfer broke on the network (the cause is chained); it may be retried."""


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def body_into(response: http.client.HTTPResponse, sock: socket.socket, fd: int) -> int:
    """Write the whole body of ``response`` (read from ``sock``) to ``fd``; its size."""
    length = response.length  # None for a chunked body
    if length is None or isinstance(sock, ssl.SSLSocket) or not hasattr(os, "splice"):
        return _buffered(response, fd)
    # http.client may already hold the body's first bytes in its buffer: take them (and
    # at most one read more) through it, then the rest straight from the socket.
    try:
        head = response.read1(min(length, BUFFER)) if length else b""
    except LINK_ERRORS as exc:
        raise Interrupted(describe(exc)) from exc
    if length and not head:
        raise Interrupted("the connection closed before the answer's body")
    _write(fd, memoryview(head))
    left = length - len(head)
    if left:
        _raw(sock, fd, left)
    response.close()  # its body is consumed: the connection may carry the next request
    return length


def _buffered(response: http.client.HTTPResponse, fd: int) -> int:
    declared = response.length
    buffer = memoryview(bytearray(BUFFER))
    total = 0
    while True:
        try:
            got = response.readinto(buffer)
        except LINK_ERRORS as exc:
            raise Interrupted(describe(exc)) from exc
        if not got:
            break
        total += got
        _write(fd, buffer[:got])
    if declared is not None and response.length:
        raise Interrupted(f"the answer was cut short ({total} of {declared} bytes)")
    return total


def _raw(sock: socket.socket, fd: int, left: int) -> None:
    """``left`` body bytes from ``sock`` (whose buffered reader is empty) into ``fd``."""
    read_end, write_end = os.pipe()
    try:
        with contextlib.suppress(OSError):  # a smaller pipe only means more calls
            import fcntl

            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE)
        left = _spliced(sock, fd, left, read_end, write_end)
    finally:
        os.close(read_end)
        os.close(write_end)
    buffer = memoryview(bytearray(min(left, BUFFER)))
    while left:
        try:
            got = sock.recv_into(buffer, min(left, len(buffer)))
        except OSError as exc:
            raise Interrupted(describe(exc)) from exc
        if not got:
            raise Interrupted(f"the connection closed {left} bytes before the answer's end")
        _write(fd, buffer[:got])
        left -= got


def _spliced(sock: socket.socket, fd: int, left: int, read_end: int, write_end: int) -> int:
    """Splice body bytes through the pipe into ``fd``; what is left when splice cannot go
    on (0 once done)."""
    timeout = sock.gettimeout()
    while left:
        try:
            got = os.splice(sock.fileno(), write_end, min(left, PIPE))
        except BlockingIOError:  # a socket with a timeout is non-blocking underneath
            poll = select.poll()
            poll.register(sock.fileno(), select.POLLIN)
            if not poll.poll(None if timeout is None else timeout * 1000):
                raise Interrupted("timed out waiting for the answer's body") from None
            continue
        except OSError as exc:
            if exc.errno in _NO_SPLICE:
                return left
            raise Interrupted(describe(exc)) from exc
        if not got:
            raise Interrupted(f"the connection closed {left} bytes before the answer's end")
        left -= got
        while got:
            try:
                got -= os.splice(read_end, fd, got)
            except OSError as exc:
                if exc.errno not in _NO_SPLICE:
                    raise
                while got:  # the file cannot take a splice: empty the pipe by hand
                    chunk = os.read(read_end, got)
                    _write(fd, memoryview(chunk))
                    got -= len(chunk)
                return left
    return 0


def _write(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]
