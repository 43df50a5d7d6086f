"""Process helpers: parent-death signal, subreaping what jobs leave behind, process
identity for crash detection."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from sparkwing import _log

log = _log.get("sparkwing.engine")

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


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


def _prctl(option: int, value: int) -> bool:
    """prctl(2) on Linux; False elsewhere or when it is refused."""
    lib = libc()
    if lib is None:
        return False
    try:
        return int(lib.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` when our parent dies, so a killed CLI leaves no orphan."""
    _prctl(_PR_SET_PDEATHSIG, int(sig))


def become_subreaper() -> bool:
    """Make this process the parent of every orphan among its descendants (Linux), so a
    process a job started in a new session (``setsid cmd &``) is still found, as a child of
    this one, when the job ends. Whether it took effect (a no-op elsewhere)."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def _read(path: str) -> bytes:
    """A whole /proc file, read without a Python file object (the runner reads a few per
    job, and ``open`` costs more than the reads)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _children() -> list[int]:
    """This process's direct children (Linux 3.5+; empty where /proc cannot tell)."""
    pids: list[int] = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return pids
    for task in tasks:
        try:
            pids.extend(int(p) for p in _read(f"/proc/self/task/{task}/children").split())
        except (OSError, ValueError):
            continue
    return pids


class ChildList:
    """This process's direct children, read cheaply and often: one ``pread`` of its main
    thread's /proc list, kept open (a full scan lists the task folder and opens a file per
    thread). Orphans a subreaper adopts go to the thread that started their ancestor: the
    main thread, for everything a single-threaded supervisor starts."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._broken = False

    def others(self, known: Callable[[int], bool]) -> bool:
        """Whether it has a child ``known`` does not accept; True when it cannot tell."""
        if self._fd is None:
            if self._broken:
                return True
            pid = os.getpid()
            try:
                self._fd = os.open(f"/proc/{pid}/task/{pid}/children", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self._broken = True
                return True
        try:
            data = os.pread(self._fd, 65536, 0)
        except OSError:
            return True
        if len(data) >= 65536:
            return True  # a list too long to read whole: let the full scan tell
        return not all(known(int(pid)) for pid in data.split())

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _environ(pid: int) -> bytes:
    """The environment ``pid`` was started with, each entry ended by a NUL (empty when it
    cannot be read)."""
    try:
        data = _read(f"/proc/{pid}/environ")
    except OSError:
        return b""
    return data if data.endswith(b"\0") else data + b"\0"


def kill_children(match: Callable[[int], bool] | None = None, rounds: int = 20) -> int:
    """SIGKILL (and reap) this process's children, those ``match`` accepts when given.
    Killing one hands its own children to this process when it is a subreaper, so it
    repeats until none is left (at most ``rounds`` times); how many."""
    killed = 0
    for _ in range(rounds):
        found = [pid for pid in _children() if match is None or match(pid)]
        if not found:
            break
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        for pid in found:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, 0)
    return killed


def kill_leftovers(run_id: str, job: str | None = None, rounds: int = 20) -> int:
    """SIGKILL (and reap) the orphans re-parented to this subreaper that carry this run's
    id, and ``job``'s name when given, in their environment (set for every job's commands):
    what a job left running after it ended; how many."""
    # Whole entries: NUL before and after (the first entry gets its NUL prepended).
    wanted = [f"\0SPARKWING_RUN_ID={run_id}\0".encode()]
    if job is not None:
        wanted.append(f"\0SPARKWING_JOB={job}\0".encode())

    def match(pid: int) -> bool:
        env = b"\0" + _environ(pid)
        return all(w in env for w in wanted)

    killed = kill_children(match, rounds)
    if killed:
        log.debug("run %s: ended %d process(es) left by %s", run_id, killed, job or "its jobs")
    return killed


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
