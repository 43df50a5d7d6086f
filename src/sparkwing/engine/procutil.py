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


def _children() -> list[int]:
    """This process's direct children (Linux 3.5+; empty where /proc cannot tell)."""
    pids: list[int] = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return pids
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children", "rb") as fh:
                pids.extend(int(p) for p in fh.read().split())
        except (OSError, ValueError):
            continue
    return pids


def _environ(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return fh.read().split(b"\0")
    except OSError:
        return []


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
    wanted = [f"SPARKWING_RUN_ID={run_id}".encode()]
    if job is not None:
        wanted.append(f"SPARKWING_JOB={job}".encode())
    killed = kill_children(lambda pid: all(w in _environ(pid) for w in wanted), rounds)
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
