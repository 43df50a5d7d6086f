"""Response bodies written into files (sparkwing.controller.receive), over a real socket pair:
spliced, by hand where a file refuses splice, chunked, slow, and cut short."""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkwing.controller.receive import PIPE, Interrupted, body_into

BODY = os.urandom(3 * PIPE + 12345)


def _serve(sock: socket.socket, parts: list[bytes], pause: float = 0.0) -> threading.Thread:
    def run() -> None:
        for part in parts:
            sock.sendall(part)
            time.sleep(pause)
        sock.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _head(length: int | None) -> bytes:
    field = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return f"HTTP/1.1 200 OK\r\n{field}\r\n\r\n".encode()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()


def _receive(ours: socket.socket, dest: Path, flags: int = 0) -> int:
    response = http.client.HTTPResponse(ours, method="GET")
    response.begin()
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flags, 0o600)
    try:
        return body_into(response, ours, fd)
    finally:
        os.close(fd)


def test_a_body_is_spliced_into_the_file(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    ours, theirs = pair
    # Headers and the first bytes arrive together, as they do from a server.
    thread = _serve(theirs, [_head(len(BODY)) + BODY[:100], BODY[100:]])
    assert _receive(ours, tmp_path / "out") == len(BODY)
    thread.join()
    assert (tmp_path / "out").read_bytes() == BODY


def test_a_file_that_refuses_splice_is_written_by_hand(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    ours, theirs = pair
    thread = _serve(theirs, [_head(len(BODY)), BODY])
    (tmp_path / "out").write_bytes(b"")
    # splice into a file opened for appending is refused (EINVAL).
    assert _receive(ours, tmp_path / "out", os.O_APPEND) == len(BODY)
    thread.join()
    assert (tmp_path / "out").read_bytes() == BODY


def test_a_slow_sender_on_a_socket_with_a_timeout(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    ours, theirs = pair
    ours.settimeout(30)  # non-blocking underneath: splice meets EAGAIN and waits
    parts = [BODY[i : i + PIPE // 2] for i in range(0, len(BODY), PIPE // 2)]
    thread = _serve(theirs, [_head(len(BODY)), *parts], pause=0.01)
    assert _receive(ours, tmp_path / "out") == len(BODY)
    thread.join()
    assert (tmp_path / "out").read_bytes() == BODY


def test_a_chunked_body(pair: tuple[socket.socket, socket.socket], tmp_path: Path) -> None:
    ours, theirs = pair
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (BODY[:1000], BODY[1000:]))
    thread = _serve(theirs, [_head(None), chunks, b"0\r\n\r\n"])
    assert _receive(ours, tmp_path / "out") == len(BODY)
    thread.join()
    assert (tmp_path / "out").read_bytes() == BODY


@pytest.mark.parametrize("cut", [10, PIPE + 10, len(BODY) - 1])
def test_a_body_cut_short_is_interrupted(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path, cut: int
) -> None:
    ours, theirs = pair
    thread = _serve(theirs, [_head(len(BODY)), BODY[:cut]])
    with pytest.raises(Interrupted, match=r"closed|cut short"):
        _receive(ours, tmp_path / "out")
    thread.join()


def test_an_empty_body(pair: tuple[socket.socket, socket.socket], tmp_path: Path) -> None:
    ours, theirs = pair
    thread = _serve(theirs, [_head(0)])
    assert _receive(ours, tmp_path / "out") == 0
    thread.join()
    assert (tmp_path / "out").read_bytes() == b""
