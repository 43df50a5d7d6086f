"""A connected pair of Unix sockets and descriptor passing over it, for the job pool.

What :func:`socket.socketpair`, :func:`socket.send_fds` and :func:`socket.recv_fds` do, on
the ``_socket`` extension module the ``socket`` module wraps: importing ``socket`` turns
hundreds of constants into enums (~2 ms on these machines, once per run that starts a
Python job), which a pair of Unix sockets never needs.
"""

from __future__ import annotations

import _socket
import array

Socket = _socket.socket

_INT_SIZE = array.array("i").itemsize


def socketpair() -> tuple[Socket, Socket]:
    """Two connected Unix stream sockets, not inherited by programs this process starts."""
    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    return ours, theirs


def send_fds(sock: Socket, data: bytes, fds: list[int]) -> int:
    """Send ``data`` with the descriptors ``fds`` (SCM_RIGHTS); how many bytes went."""
    rights = array.array("i", fds).tobytes()
    sent: int = sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
    return sent


def recv_fds(sock: Socket, bufsize: int, maxfds: int) -> tuple[bytes, list[int]]:
    """Up to ``bufsize`` bytes and the descriptors that came with them (at most ``maxfds``;
    any beyond that the kernel truncated are not received). Received descriptors are
    close-on-exec (MSG_CMSG_CLOEXEC), as the socket module's own helper leaves them."""
    data, ancdata, _flags, _addr = sock.recvmsg(
        bufsize, _socket.CMSG_LEN(maxfds * _INT_SIZE), _socket.MSG_CMSG_CLOEXEC
    )
    fds = array.array("i")
    for level, kind, payload in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % _INT_SIZE
            fds.frombytes(payload[:usable])
    return data, list(fds)
