"""Warm job processes: each is forked from the runner once, with the pipeline imported, and
runs Python jobs one after another, each with its own output pipe; the supervisor ends and
replaces one whose job overran its timeout, was cancelled or crashed it."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import struct
import sys
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from itertools import islice
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sparkwing.engine.jobproc import JobHost, JobLaunch, run_job
from sparkwing.engine.masking import Masker
from sparkwing.engine.procutil import become_subreaper, die_with_parent, kill_children, libc

if TYPE_CHECKING:
    # fdpass is imported where used: a run of commands only never starts a job process.
    from sparkwing.engine.fdpass import Socket

# A request is its length, then JSON; the job's output pipe travels with it (SCM_RIGHTS).
_HEADER = struct.Struct("!I")
_RECV_CHUNK = 65536
# Requests and replies, one encoder made once (json.dumps with options makes one a call).
_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode
# What a job may have changed in its process and that a job process puts back before the
# next one: these handlers (the engine ends a job with SIGTERM / SIGKILL).
_RESET_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGPIPE)


class WorkerGone(Exception):
    """The job process could not be handed a job: it died while idle."""


@dataclass(eq=False)
class Worker:
    """The engine's side of one job process (its pid is also its process group id)."""

    pid: int
    sock: Socket
    env: dict[Any, Any]  # the engine's environment the process last took (_environ_key)
    outputs_sent: int  # how many of the host's outputs it holds
    masks_sent: set[str] = field(default_factory=set)
    reply: bytes = b""


@dataclass(frozen=True)
class Done:
    """A job process finished its job: the code a one-job process would have exited with,
    and whether it retires (the job left threads running in it)."""

    code: int
    retire: bool
    result: dict[str, Any] | None = None  # what the job reported (run_job's result)


class Pool:
    """The run's job processes: handed out one job at a time, forked when none is idle."""

    def __init__(self, host: JobHost, masker: Masker) -> None:
        self._host = host
        self._masker = masker
        self._idle: list[Worker] = []
        self._all: dict[int, Worker] = {}
        # A callable told of a process about to be forgotten, before its socket is closed
        # (the supervisor keeps the socket in its selector between jobs).
        self.on_gone: Callable[[Worker], None] | None = None

    def start(self, launch: JobLaunch) -> tuple[Worker, int]:
        """Hand ``launch`` to an idle job process (or a new one); returns it and the read
        end of the job's output pipe."""
        while self._idle:
            worker = self._idle.pop()
            try:
                return worker, self._send(worker, launch)
            except WorkerGone:
                self.end(worker)
        worker = self._fork()
        return worker, self._send(worker, launch)

    def release(self, worker: Worker) -> None:
        """Its job is done: the process takes the next one."""
        self._idle.append(worker)

    def end(self, worker: Worker) -> None:
        """End the process (and its process group) and reap it, if not done already."""
        with contextlib.suppress(OSError):
            os.killpg(worker.pid, signal.SIGKILL)
        self.reaped(worker)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(worker.pid, 0)

    def reaped(self, worker: Worker) -> None:
        """The process is gone (the caller reaped it): forget it."""
        if self._all.pop(worker.pid, None) is not None:
            if self.on_gone is not None:
                self.on_gone(worker)
            worker.sock.close()
        with contextlib.suppress(ValueError):
            self._idle.remove(worker)

    def owns(self, pid: int) -> bool:
        """Whether ``pid`` is one of its job processes (busy or idle)."""
        return pid in self._all

    def close(self) -> None:
        """End every job process still alive."""
        for worker in list(self._all.values()):
            with contextlib.suppress(OSError):
                os.killpg(worker.pid, signal.SIGKILL)
        for worker in list(self._all.values()):
            self.end(worker)

    # ---------------------------------------------------------------- engine side
    def _fork(self) -> Worker:
        from sparkwing.engine import fdpass

        libc()  # loaded here once, not in every child
        sys.stdout.flush()
        sys.stderr.flush()
        ours, theirs = fdpass.socketpair()
        env = _environ_key()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the job process; measured by the engine tests
            code = 70
            try:
                ours.close()
                for other in self._all.values():
                    other.sock.close()  # their ends stay the engine's alone
                serve(theirs, self._host, self._masker)
                code = 0
            except BaseException:
                code = 70
            finally:
                os._exit(code)
        theirs.close()
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also done in the child; whichever runs first wins the race
        worker = Worker(pid, ours, env, len(self._host.outputs), set(self._masker.values))
        self._all[pid] = worker
        return worker

    def _send(self, worker: Worker, launch: JobLaunch) -> int:
        from sparkwing.engine import fdpass

        outputs = self._host.outputs
        count = len(outputs)
        # Outputs are only ever added, in order: the newest are the ones it lacks.
        fresh = list(islice(reversed(outputs.items()), count - worker.outputs_sent))[::-1]
        masks = [v for v in self._masker.values if v not in worker.masks_sent]
        key = _environ_key()
        # Sent only when it changed since the process last took it (user code ran in the
        # engine): comparing is cheap, copying os.environ is not.
        env = None if key == worker.env else dict(os.environ)
        doc = {"launch": launch.to_dict(), "outputs": fresh, "masks": masks, "env": env}
        body = _encode(doc).encode()
        data = _HEADER.pack(len(body)) + body
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        try:
            sent = fdpass.send_fds(worker.sock, data, [write_fd])
            if sent < len(data):
                worker.sock.sendall(data[sent:])
        except OSError as exc:
            os.close(read_fd)
            raise WorkerGone(str(exc)) from None
        finally:
            os.close(write_fd)
        worker.outputs_sent = count
        worker.masks_sent.update(masks)
        if env is not None:
            worker.env = key
        return read_fd


def read_done(worker: Worker) -> Done | None:
    """After its socket turned readable: the job's end, if it has arrived whole; raises
    WorkerGone when the process closed the socket (it died, or its job closed it)."""
    try:
        chunk = worker.sock.recv(_RECV_CHUNK)
    except OSError as exc:
        raise WorkerGone(str(exc)) from None
    if not chunk:
        raise WorkerGone("job process closed its socket")
    worker.reply += chunk
    line, sep, rest = worker.reply.partition(b"\n")
    if not sep:
        return None
    worker.reply = rest
    doc = json.loads(line)
    return Done(int(doc["code"]), bool(doc["retire"]), doc.get("result"))


# -------------------------------------------------------------------- job-process side
def serve(sock: Socket, host: JobHost, masker: Masker) -> None:
    """The job process's life: take a job, run it with stdout and stderr on its pipe, put
    the process back as it was, report; until the engine closes the socket."""
    # The engine's objects are shared copy-on-write; a collection would write to every one
    # of them (and so copy every page), while jobs only need their own swept.
    gc.freeze()
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    signal.set_wakeup_fd(-1)
    for sig in _RESET_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    die_with_parent()
    # What a job leaves running becomes this process's child, ended before the next job.
    become_subreaper()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    # Line-buffered text streams on the descriptors each job's pipe is put under: the
    # inherited ones may hold the engine's buffered output and were set up for a terminal.
    out = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    err = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    outputs: MutableMapping[str, Any] = dict(host.outputs)
    view = MappingProxyType(outputs)  # a job reads the outputs, it cannot change the next's
    base = _Baseline.take()
    from sparkwing.engine.procutil import ChildList

    children = ChildList()
    for doc, pipe in _requests(sock):
        if doc["env"] is not None:
            base.env = doc["env"]
            _set_environ(base.env)
            base.raw = _environ_raw()
        masker.add(doc["masks"])
        outputs.update(doc["outputs"])
        os.dup2(pipe, 1)
        os.dup2(pipe, 2)
        os.close(pipe)
        sys.stdout, sys.stderr = out, err
        code, result = run_job(JobLaunch.from_dict(doc["launch"]), host, masker, view)
        # Nothing here is another job's: whatever is still a child (started by the job,
        # or adopted when its parent ended) is ended. Most jobs leave none: one read.
        if children.others(lambda _pid: False):
            kill_children()
        for stream in (out, err):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        # Let go of the pipe: nothing written from here on is the job's.
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        base.restore()
        threading = sys.modules.get("threading")
        retire = threading is not None and threading.active_count() > 1
        reply = {"code": code, "retire": retire, "result": result}
        sock.sendall(_encode(reply).encode() + b"\n")
        if retire:
            return


def _requests(sock: Socket) -> Iterator[tuple[dict[str, Any], int]]:
    """Each request with the job pipe's write end, until the engine closes the socket."""
    from sparkwing.engine import fdpass

    while True:
        data, fds = fdpass.recv_fds(sock, _RECV_CHUNK, 1)
        if not data:
            return
        while len(data) < _HEADER.size:
            data += _recv_some(sock)
        (length,) = _HEADER.unpack_from(data)
        while len(data) < _HEADER.size + length:
            data += _recv_some(sock)
        if not fds:
            return  # not a request the engine sent
        yield json.loads(data[_HEADER.size :]), fds[0]


def _recv_some(sock: Socket) -> bytes:
    chunk = sock.recv(_RECV_CHUNK)
    if not chunk:
        raise EOFError("the engine closed the job socket mid-request")
    return chunk


def _environ_raw() -> dict[bytes, bytes] | None:
    """A copy of the process environment as os.environ holds it, encoded (CPython's
    ``os.environ._data``): copied and compared at C speed, where going through os.environ
    decodes every entry (tens of microseconds a job). None where it is not there."""
    data = getattr(os.environ, "_data", None)
    return dict(data) if isinstance(data, dict) else None


def _environ_key() -> dict[Any, Any]:
    """Something equal to an earlier one exactly when the environment is unchanged."""
    raw = _environ_raw()
    return dict(os.environ) if raw is None else raw


def _set_environ(env: dict[str, str], raw: dict[bytes, bytes] | None = None) -> None:
    """Make ``os.environ`` exactly ``env``, touching only what differs; ``raw`` is ``env``
    as :func:`_environ_raw` gave it, for comparing without decoding."""
    data = getattr(os.environ, "_data", None)
    if raw is not None and isinstance(data, dict):
        if data == raw:
            return
        for gone in [k for k in data if k not in raw]:
            del os.environ[os.fsdecode(gone)]
        for raw_name, raw_value in raw.items():
            if data.get(raw_name) != raw_value:
                os.environ[os.fsdecode(raw_name)] = os.fsdecode(raw_value)
        return
    for name in [n for n in os.environ if n not in env]:
        del os.environ[name]
    for name, value in env.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


@dataclass
class _Baseline:
    """The process state every job starts from: environment, folder, umask, import path."""

    env: dict[str, str]
    cwd: str
    umask: int
    path: list[str]
    raw: dict[bytes, bytes] | None = None  # env, as _environ_raw gives it

    @classmethod
    def take(cls) -> _Baseline:
        umask = os.umask(0o022)
        os.umask(umask)
        return cls(dict(os.environ), os.getcwd(), umask, list(sys.path), _environ_raw())

    def restore(self) -> None:
        _set_environ(self.env, self.raw)
        with contextlib.suppress(OSError):
            os.chdir(self.cwd)
        os.umask(self.umask)
        sys.path[:] = self.path
        for sig in _RESET_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
