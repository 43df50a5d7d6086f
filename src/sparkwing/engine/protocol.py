"""The line protocol between a job process and the engine.

A job's stdout and stderr and its control messages share one pipe, so their order is kept
(a secret's mask message always precedes any line that could print it). Control messages
are single lines starting with ``\\x1e`` followed by JSON.
"""

from __future__ import annotations

import json
import os
from typing import Any

CONTROL = b"\x1e"
MAX_LINE = 1 << 20  # bytes of an unterminated line kept before it is passed on as is


def encode(message: dict[str, Any]) -> bytes:
    return CONTROL + json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n"


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class LineSplitter:
    """Turns pipe chunks into ('line', text) and ('control', dict) items."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[tuple[str, Any]]:
        data = self._buf + chunk
        *lines, self._buf = data.split(b"\n")
        items = [item for line in lines for item in _parse(line)]
        # Output that never ends its line (a progress bar, a binary dump) is passed on in
        # pieces rather than held in memory; control messages are always whole lines.
        while len(self._buf) > MAX_LINE:
            control = self._buf.find(CONTROL)
            cut = MAX_LINE if control < 0 else min(MAX_LINE, control)
            if cut == 0:
                break  # a control message is arriving: it ends with its own newline
            piece, self._buf = self._buf[:cut], self._buf[cut:]
            items.append(("line", piece.decode(errors="replace")))
        return items

    def finish(self) -> list[tuple[str, Any]]:
        rest, self._buf = self._buf, b""
        return _parse(rest) if rest else []


class RawLines:
    """Turns a command's own output into text lines, no control messages: what a command
    prints is never taken for one."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[str]:
        *lines, self._buf = (self._buf + chunk).split(b"\n")
        out = [line.decode(errors="replace").rstrip("\r") for line in lines]
        while len(self._buf) > MAX_LINE:
            piece, self._buf = self._buf[:MAX_LINE], self._buf[MAX_LINE:]
            out.append(piece.decode(errors="replace"))
        return out

    def finish(self) -> list[str]:
        rest, self._buf = self._buf, b""
        return [rest.decode(errors="replace").rstrip("\r")] if rest else []


def _parse(line: bytes) -> list[tuple[str, Any]]:
    idx = line.find(CONTROL + b"{")
    if idx < 0:
        return [("line", line.decode(errors="replace").rstrip("\r"))]
    out: list[tuple[str, Any]] = []
    if idx > 0:  # a partial line printed without a newline before the control message
        out.append(("line", line[:idx].decode(errors="replace")))
    try:
        out.append(("control", json.loads(line[idx + 1 :])))
    except ValueError:
        out.append(("line", line[idx + 1 :].decode(errors="replace")))
    return out
