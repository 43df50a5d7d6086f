"""Process helpers: parent-death signal, process identity for crash detection."""

from __future__ import annotations

import functools
import os
import signal
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1


@functools.cache
def libc() -> Any:
    """The C library through ctypes, loaded once: a process that forks many children
    calls this first so none of them pays for importing ctypes."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` when our parent dies, so a killed CLI leaves no orphan."""
    lib = libc()
    if lib is None:
        return
    try:
        lib.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a recycled pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses: split after its closing ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def process_alive(pid: int, start_ticks: int | None = None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if start_ticks is not None:
        current = process_start_ticks(pid)
        if current is not None and current != start_ticks:
            return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return True  # no /proc (not Linux): trust the signal probe
    # A zombie has exited and will never finish its work.
    return data[data.rfind(b")") + 2 :][:1] not in (b"Z", b"X")
