"""Job process supervision: hands Python attempts to the pool's warm job processes and
starts commands, reads their pipes, reaps them, kills the process group of one that
overruns its timeout, and turns SIGINT/SIGTERM/SIGHUP into a request to end everything it
started. One selector, one thread: forking stays safe.

A command's exit is noticed through SIGCHLD, which (like the other signals) wakes the
selector through Python's wakeup descriptor; only then are the running commands asked with
``waitpid(WNOHANG)``. Watching a pidfd per command instead costs four system calls a job
(open, two epoll changes, close), a tenth of what the supervisor spends on a ``true``."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sparkwing.engine.jobproc import (
    JobHost,
    JobLaunch,
    ProgramCache,
    ShellLaunch,
    Spawned,
    command_result,
    spawn_shell,
)
from sparkwing.engine.masking import Masker
from sparkwing.engine.protocol import LineSplitter, RawLines

if TYPE_CHECKING:
    from sparkwing.engine.pool import Pool, Worker

KILL_GRACE_SECONDS = 2.0
# Lines of a failed command's output quoted in its error, as ``ctx.sh`` quotes them.
ERROR_TAIL_LINES = 5
# While commands run, the running ones are asked whether they exited at least this often
# even without a SIGCHLD (a handler someone else replaced, a signal lost).
CHILD_POLL_SECONDS = 0.5

# Receives a job's output lines and control messages other than its result, in order.
ItemHandler = Callable[[str, list[tuple[str, Any]]], None]


@dataclass(frozen=True)
class Exited:
    """One attempt that ended: its wait status, the result it reported (if any), and
    whether the supervisor killed it for overrunning its timeout."""

    key: str
    status: int
    result: dict[str, Any] | None
    timed_out: bool


@dataclass
class _Shell:
    """What the supervisor keeps of a command it started directly: its two pipes' lines
    and the last ones of each, for the error of a failed command (made on the first line:
    most commands of a fan-out print nothing)."""

    command: str
    spawned: Spawned
    err_fd: int
    lines: dict[int, RawLines] = field(default_factory=dict)
    tails: dict[str, deque[str]] | None = None


@dataclass
class _Proc:
    """One running attempt: its process (group), pipe, deadline and what it reported."""

    key: str
    pid: int
    fd: int
    deadline: float | None
    splitter: LineSplitter = field(default_factory=LineSplitter)
    result: dict[str, Any] | None = None
    timed_out: bool = False
    done: bool = False
    shell: _Shell | None = None
    worker: Worker | None = None  # the pool's job process running it
    # (run id, job id) in its environment, which its processes inherit: how what it left
    # running is recognised among this process's orphans.
    tag: tuple[str, str] | None = None
    watched: set[int] = field(default_factory=set)  # its descriptors in the selector


class _Poller:
    """The selector, keyed by descriptor: epoll's own calls where there is epoll (the
    selectors module adds a few microseconds to each, and a command job registers and
    unregisters two descriptors), the selectors module elsewhere."""

    def __init__(self) -> None:
        self._data: dict[int, Any] = {}
        epoll = getattr(select, "epoll", None)
        self._epoll: Any = epoll() if epoll is not None else None
        self._sel: Any = None
        if epoll is None:
            import selectors  # not on Linux: its import costs a run's start-up ~1 ms

            self._sel = selectors.DefaultSelector()
            self._read_event = selectors.EVENT_READ

    def register(self, fd: int, data: Any) -> None:
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLIN)
        else:
            self._sel.register(fd, self._read_event)
        self._data[fd] = data

    def unregister(self, fd: int) -> None:
        """Raises KeyError for a descriptor it does not watch."""
        del self._data[fd]
        if self._epoll is not None:
            self._epoll.unregister(fd)
        else:
            self._sel.unregister(fd)

    def poll(self, timeout: float) -> list[tuple[int, Any]]:
        """The watched descriptors that are readable (or at their end), with their data."""
        if self._epoll is not None:
            ready = [fd for fd, _ in self._epoll.poll(timeout)]
        else:
            ready = [key.fd for key, _ in self._sel.select(timeout)]
        data = self._data
        return [(fd, data[fd]) for fd in ready if fd in data]

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
        elif self._sel is not None:
            self._sel.close()


class Supervisor:
    """Use as a context manager: signals are handled (and the selector open) inside it."""

    def __init__(self, on_items: ItemHandler, masker: Masker, host: JobHost | None = None) -> None:
        self._on_items = on_items
        self._masker = masker
        # Python attempts run in the pool's processes; without a host only commands can.
        # Made with the first Python attempt: a run of commands never imports it.
        self._host = host
        self._pool: Pool | None = None
        # A job process's socket stays in the selector between its jobs (readable while it
        # is idle: it died); this says which attempt, if any, it runs.
        self._on_worker: dict[int, _Proc] = {}
        self._worker_socks: set[int] = set()
        self._sel = _Poller()
        self._procs: dict[str, _Proc] = {}
        self._commands = 0  # running commands (reaped on SIGCHLD)
        self._child_signalled = False
        self._next_child_poll = 0.0
        self.interrupted: str | None = None
        self._parent = os.getppid()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._old: dict[int, Any] = {}
        self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self._which = ProgramCache()
        # Commands start in this process's folder unless theirs differs (see spawn_shell);
        # the engine never changes it (user code it calls has its folder put back).
        self._cwd = os.getcwd()
        from sparkwing.engine.procutil import ChildList

        self._children = ChildList()

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> Supervisor:
        def handler(signum: int, _frame: Any) -> None:
            if self.interrupted is None:
                if signum == signal.SIGTERM and os.getppid() != self._parent:
                    self.interrupted = "the sparkwing process that started this run died"
                else:
                    self.interrupted = f"interrupted by {signal.Signals(signum).name}"

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._old[sig] = signal.signal(sig, handler)
        # Nothing to do in Python: the signal's byte on the wakeup descriptor is the news.
        # Calls it interrupts are restarted (SA_RESTART), so C code in this process that
        # does not retry EINTR (a store's client library) never sees it.
        self._old[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, _on_child)
        signal.siginterrupt(signal.SIGCHLD, False)
        self._old[-1] = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        self._sel.register(self._wake_r, None)
        _no_inherited_descriptors()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Whatever ended the loop, no job process outlives it.
        for proc in self._procs.values():
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in list(self._procs.values()):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)
            worker = proc.worker
            self._detach(proc)
            if worker is not None and self._pool is not None:
                self._pool.reaped(worker)
        if self._pool is not None:
            self._pool.close()
        signal.set_wakeup_fd(self._old.pop(-1, -1))
        for sig, prev in self._old.items():
            signal.signal(sig, prev)
        self._old = {}
        self._sel.close()
        self._children.close()
        for fd in (self._wake_r, self._wake_w, self._devnull):
            with contextlib.suppress(OSError):
                os.close(fd)

    def interrupt(self, reason: str) -> None:
        """Cancel the run as a whole, from any thread (a signal's reason, if first, wins);
        the wait in progress returns at once."""
        if self.interrupted is None:
            self.interrupted = reason
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")

    def __len__(self) -> int:
        """How many attempts are running."""
        return len(self._procs)

    # ---------------------------------------------------------------- starting
    def start(self, key: str, launch: JobLaunch, timeout_s: float | None) -> int:
        """Run a Python attempt under ``key`` (one running attempt per key) in a job process
        of the pool; returns that process's pid, which is also its process group id."""
        if key in self._procs:
            raise ValueError(f"{key!r} is already running")
        if self._pool is None:
            if self._host is None:
                raise ValueError("this supervisor was given no job host to run Python jobs")
            from sparkwing.engine.pool import Pool

            self._pool = Pool(self._host, self._masker)
            self._pool.on_gone = self._unwatch_worker
        worker, fd = self._pool.start(launch)
        proc = _Proc(key, worker.pid, fd, _deadline(timeout_s), worker=worker)
        proc.tag = _tag_of(launch.env)
        os.set_blocking(fd, False)
        self._procs[key] = proc
        self._on_worker[worker.pid] = proc
        self._add(proc, fd, "pipe")
        sock = worker.sock.fileno()
        if sock not in self._worker_socks:
            self._sel.register(sock, ("done", worker))
            self._worker_socks.add(sock)
        return worker.pid

    def _unwatch_worker(self, worker: Worker) -> None:
        """The pool is about to close a job process's socket: out of the selector first."""
        sock = worker.sock.fileno()
        if sock in self._worker_socks:
            self._worker_socks.discard(sock)
            with contextlib.suppress(KeyError, ValueError, RuntimeError):
                self._sel.unregister(sock)

    def _add(self, proc: _Proc, fd: int, kind: str) -> None:
        self._sel.register(fd, (kind, proc))
        proc.watched.add(fd)

    def _remove(self, proc: _Proc, fd: int) -> None:
        if fd in proc.watched:
            proc.watched.discard(fd)
            self._sel.unregister(fd)

    def start_shell(self, key: str, launch: ShellLaunch, timeout_s: float | None) -> int:
        """Start a command job directly (no Python job process around it); its stdout and
        stderr lines reach the item handler as ``("log", (stream, text))``."""
        if key in self._procs:
            raise ValueError(f"{key!r} is already running")
        spawned, out_fd, err_fd = spawn_shell(launch, self._devnull, self._which, self._cwd)
        shell = _Shell(launch.command, spawned, err_fd)
        shell.lines = {out_fd: RawLines(), err_fd: RawLines()}
        proc = _Proc(key, spawned.pid, out_fd, _deadline(timeout_s), shell=shell)
        proc.tag = _tag_of(launch.env)
        self._procs[key] = proc
        self._commands += 1
        for fd in (out_fd, err_fd):
            os.set_blocking(fd, False)
            self._add(proc, fd, "pipe")
        return proc.pid

    # ---------------------------------------------------------------- waiting
    def wait(self, timeout: float) -> list[Exited]:
        """Wait up to ``timeout`` seconds (less if a timeout is due) for output and exits;
        returns the attempts that ended."""
        now = time.monotonic()
        for proc in self._procs.values():
            if proc.deadline is not None:
                timeout = min(timeout, proc.deadline - now)
        if self._commands:
            timeout = min(timeout, max(0.0, self._next_child_poll - now))
        exited: list[Exited] = []
        for fd, data in self._sel.poll(max(0.0, timeout)):
            if data is None:
                self._drain_wakeups()
                continue
            kind, what = data
            if kind == "done":
                running = self._on_worker.get(what.pid)
                if running is None:
                    self._idle_gone(what)
                else:
                    self._done(running, exited)
                continue
            proc = what
            if proc.done:
                continue  # reaped earlier in this same batch of events
            self._read(proc, fd)
        if self._commands:
            now = time.monotonic()
            if self._child_signalled or now >= self._next_child_poll:
                self._child_signalled = False
                self._next_child_poll = now + CHILD_POLL_SECONDS
                for proc in [p for p in self._procs.values() if p.shell is not None]:
                    self._reap(proc, exited, block=False)
        self._kill_overdue(time.monotonic())
        return exited

    def _drain_wakeups(self) -> None:
        """Empty the wakeup descriptor, noting whether a child's end was among its news
        (before the running commands are asked, so no later SIGCHLD goes unread)."""
        with contextlib.suppress(OSError):
            while data := os.read(self._wake_r, 512):
                if _SIGCHLD_BYTE in data:
                    self._child_signalled = True

    def terminate_all(self, grace: float = KILL_GRACE_SECONDS) -> list[Exited]:
        """SIGTERM every running attempt's process group, SIGKILL what is left after
        ``grace`` seconds; returns every attempt that ended meanwhile."""
        exited: list[Exited] = []
        for proc in self._procs.values():
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self._procs and time.monotonic() < deadline:
            exited += self.wait(0.05)
        for proc in list(self._procs.values()):
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            self._reap(proc, exited, block=True)
        return exited

    # ---------------------------------------------------------------- internals
    def _kill_overdue(self, now: float) -> None:
        for proc in self._procs.values():
            if proc.deadline is not None and now >= proc.deadline:
                proc.timed_out = True
                proc.deadline = None
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)

    def _idle_gone(self, worker: Worker) -> None:
        """An idle job process's socket turned readable: it ended (or broke the protocol);
        either way it takes no more jobs."""
        assert self._pool is not None
        self._pool.end(worker)

    def _read(self, proc: _Proc, fd: int) -> None:
        if fd not in proc.watched:
            return  # at its end already
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                return
            if not chunk:
                # At its end a pipe stays readable: watched on, a command that closed its
                # output but runs on would spin this loop until it exits.
                self._remove(proc, fd)
                return
            if proc.shell is None:
                self._deliver(proc, proc.splitter.feed(chunk))
            else:
                self._lines(proc, fd, proc.shell.lines[fd].feed(chunk))

    def _lines(self, proc: _Proc, fd: int, lines: list[str]) -> None:
        assert proc.shell is not None
        if not lines:
            return
        stream = "stdout" if fd == proc.fd else "stderr"
        if proc.shell.tails is None:
            proc.shell.tails = {s: deque(maxlen=ERROR_TAIL_LINES) for s in ("stdout", "stderr")}
        proc.shell.tails[stream].extend(line for line in lines if line.strip())
        self._on_items(proc.key, [("log", (stream, line)) for line in lines])

    def _deliver(self, proc: _Proc, items: list[tuple[str, Any]]) -> None:
        passed: list[tuple[str, Any]] = []
        for item in items:
            if item[0] == "control" and item[1].get("t") == "result":
                proc.result = item[1]
            else:
                passed.append(item)
        if passed:
            self._on_items(proc.key, passed)

    def _done(self, proc: _Proc, exited: list[Exited]) -> None:
        """The job process's socket is readable: its job ended (it goes back to the pool),
        or the process itself did."""
        assert proc.worker is not None
        from sparkwing.engine.pool import WorkerGone, read_done

        try:
            done = read_done(proc.worker)
        except WorkerGone:
            # Ended, or its job closed the socket: either way it can take no more jobs.
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            self._reap(proc, exited, block=True)
            return
        if done is None:
            return
        self._read(proc, proc.fd)
        self._deliver(proc, proc.splitter.finish())
        if done.result is not None:
            proc.result = done.result
        worker, pool = proc.worker, self._pool
        assert pool is not None
        self._detach(proc)
        if done.retire or proc.timed_out:
            pool.end(worker)  # killed for its timeout meanwhile, or left threads running
            self._end_leftovers(proc, True)  # what it had running is this process's now
        else:
            # Its job's leftovers were its own orphans (it is a subreaper), ended already.
            pool.release(worker)
        exited.append(Exited(proc.key, done.code << 8, proc.result, proc.timed_out))

    def _reap(self, proc: _Proc, exited: list[Exited], *, block: bool) -> None:
        try:
            pid, status = os.waitpid(proc.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            pid, status = proc.pid, 0
        if pid == 0:
            return
        # Drain whatever the job wrote before it exited, then end its process group so a
        # command it left in the background cannot outlive the job.
        shell = proc.shell
        if shell is None:
            self._read(proc, proc.fd)
            self._deliver(proc, proc.splitter.finish())
        else:
            for fd, lines in shell.lines.items():
                self._read(proc, fd)
                self._lines(proc, fd, lines.finish())
            shell.spawned.reaped(status)
            tails = shell.tails or {}
            tail = tails.get("stderr") or tails.get("stdout") or ()
            proc.result = command_result(shell.command, status, list(tail))
        try:
            os.killpg(proc.pid, signal.SIGKILL)
            group_left = True
        except OSError:
            group_left = False
        worker = proc.worker
        self._detach(proc)
        if worker is not None and self._pool is not None:
            self._pool.reaped(worker)
        self._end_leftovers(proc, group_left)
        exited.append(Exited(proc.key, status, proc.result, proc.timed_out))

    def _end_leftovers(self, proc: _Proc, group_left: bool) -> None:
        """End what the attempt left running outside its process group (``setsid cmd &``):
        such a process was adopted by this subreaper when its parent ended. The orphans are
        looked for only when there may be some: a member of its group was still there to
        kill (its orphans are adopted as it dies), or this process has a child it did not
        start itself; a fan-out of short commands otherwise pays one read a job."""
        if proc.tag is None:
            return
        running = {p.pid for p in self._procs.values()}
        pool = self._pool

        def known(pid: int) -> bool:
            return pid in running or (pool is not None and pool.owns(pid))

        if group_left or self._children.others(known):
            from sparkwing.engine.procutil import kill_leftovers

            kill_leftovers(*proc.tag)

    def _detach(self, proc: _Proc) -> None:
        proc.done = True
        if proc.shell is not None:
            proc.shell.spawned.reaped(signal.SIGKILL)  # reaped by __exit__, not by a Popen
        self._procs.pop(proc.key, None)
        if proc.worker is not None:
            self._on_worker.pop(proc.worker.pid, None)
        for fd in (proc.fd, proc.shell.err_fd if proc.shell else None):
            if fd is None:
                continue
            self._remove(proc, fd)
            with contextlib.suppress(OSError):
                os.close(fd)
        if proc.shell is not None:
            self._commands -= 1


_SIGCHLD_BYTE = int(signal.SIGCHLD)


def _on_child(_signum: int, _frame: Any) -> None:
    """SIGCHLD's Python handler: the wakeup descriptor already woke the selector."""


def _no_inherited_descriptors() -> None:
    """Make every descriptor this process holds beyond 0-2 close-on-exec, as Python makes
    its own: commands are started with posix_spawn, which (unlike Popen's close_fds) passes
    on whatever is inheritable, and one this process inherited (a parent's pipe) must not
    keep that parent waiting for a job's background process."""
    try:
        fds: Iterable[int] = [int(name) for name in os.listdir("/proc/self/fd")]
    except (OSError, ValueError):
        # No /proc (not Linux): every possible descriptor, once a run (the same guarantee).
        fds = range(3, min(os.sysconf("SC_OPEN_MAX"), 65536))
    for fd in fds:
        if fd > 2:
            with contextlib.suppress(OSError):
                os.set_inheritable(fd, False)


def _tag_of(env: dict[str, str]) -> tuple[str, str] | None:
    run_id, job = env.get("SPARKWING_RUN_ID"), env.get("SPARKWING_JOB")
    return (run_id, job) if run_id and job else None


def _deadline(timeout_s: float | None) -> float | None:
    return time.monotonic() + timeout_s if timeout_s else None
