"""What runs one job attempt: a Python job inside a warm job process of the pool (see
:mod:`sparkwing.engine.pool`), a plain command as ``/bin/sh`` started directly.

A Python job's output and control messages share one pipe per attempt, read by the engine.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkwing.engine import artifacts, protocol
from sparkwing.engine.masking import Masker
from sparkwing.errors import SparkwingError
from sparkwing.sdk.context import Context, Failure, RunContext
from sparkwing.sdk.runtime import Runtime, running
from sparkwing.surfaces.cache.base import Cache

if TYPE_CHECKING:
    import subprocess


class PipeSink:
    """The job-side Sink: control messages down the pipe, masking applied locally too; the
    result is kept for the job process to report with its job's end."""

    def __init__(self, fd: int, masker: Masker) -> None:
        self._fd = fd
        self._masker = masker
        self.reported: dict[str, Any] | None = None

    @staticmethod
    def _flush() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass

    def _send(self, message: dict[str, Any]) -> None:
        # Flush Python-level buffers first so already-printed text stays before the message.
        self._flush()
        protocol.write_all(self._fd, protocol.encode(message))

    def log(self, stream: str, msg: str) -> None:
        self._send({"t": "log", "s": stream, "m": msg})

    def mask(self, values: list[str]) -> None:
        if self._masker.add(values):
            self._send({"t": "mask", "v": values})

    def annotate(self, text: str) -> None:
        self._send({"t": "ann", "m": text})

    def mask_text(self, text: str) -> str:
        return self._masker.text(text)

    def result(self, message: dict[str, Any]) -> None:
        # Not down the pipe: it travels with the job's end on the job process's socket (one
        # message for the engine to wake for, not two). Printed text still comes first:
        # flushed now, and the engine drains the pipe before it takes the result.
        self._flush()
        self.reported = {"t": "result", **message}


@dataclass(frozen=True)
class JobHost:
    """What every Python job of a run shares: a job process inherits it when forked, so
    only a :class:`JobLaunch` (plain data) travels to it for each job."""

    run: RunContext
    args: Any
    fns: Mapping[str, Any]  # job id -> its callable, command string or None
    # The engine's outputs by job id, read when a job starts; entries are only ever added.
    outputs: dict[str, Any]
    open_secrets: Callable[[], Any]
    # A job process opens its own cache: a forked child must not share the engine's.
    open_cache: Callable[[], Cache]


@dataclass(frozen=True)
class JobLaunch:
    """One attempt of a Python job, as data: what the job process needs beyond its host."""

    job_id: str
    env: dict[str, str]
    workdir: str
    attempt: int = 1
    consumed: dict[str, str | None] = field(default_factory=dict)  # dep -> artifact digest
    output_globs: tuple[str, ...] = ()
    # What a failure handler or a finally job is told went wrong (``ctx.failure``).
    failure: Failure | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "env": self.env,
            "workdir": self.workdir,
            "attempt": self.attempt,
            "consumed": self.consumed,
            "output_globs": list(self.output_globs),
            "failure": asdict(self.failure) if self.failure is not None else None,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> JobLaunch:
        return cls(
            job_id=doc["job_id"],
            env=doc["env"],
            workdir=doc["workdir"],
            attempt=doc["attempt"],
            consumed=doc["consumed"],
            output_globs=tuple(doc["output_globs"]),
            failure=Failure(**doc["failure"]) if doc.get("failure") else None,
        )


@dataclass(frozen=True)
class ShellLaunch:
    """A job whose fn is a command string and that needs no Python around it (no
    artifacts to restore or upload): the engine starts ``/bin/sh -c command`` itself."""

    job_id: str
    command: str
    env: dict[str, str]
    workdir: str


# Make's rule for running a command without a shell: no character the shell would
# interpret, and a first word that is no shell keyword or builtin whose behaviour an
# executable of the same name would not give (``true``, ``false`` and ``echo`` without
# backslashes behave alike either way).
_SHELL_CHARS = frozenset("#;\"'*?[]&|<>(){}$`~\\\n=%!^")
_SHELL_WORD_LIST = (
    ". : [ alias bg break case cd command continue do done elif else esac eval exec exit "
    "export fc fg fi for function getopts hash if in jobs kill let local printf pwd read "
    "readonly return select set shift source test then time times trap type typeset ulimit "
    "umask unalias unset until wait while"
)
_SHELL_WORDS = frozenset(_SHELL_WORD_LIST.split())


def direct_argv(
    command: str, env: Mapping[str, str], which: Callable[[str, str], str | None] | None = None
) -> list[str] | None:
    """The command as an argv to execute directly, as make does for a simple command (one
    exec, not ``/bin/sh`` and then the program); None when it needs a shell, or when its
    program is not on ``PATH`` (the shell then says so, with exit code 127). ``which``
    finds a program on a PATH (:func:`_on_path` unless given; a run passes a cached one)."""
    if not command.strip() or any(c in _SHELL_CHARS for c in command):
        return None
    argv = command.split()
    # A path (``./build.sh``) is the job's folder's, not this process's, and a script without
    # a ``#!`` line only runs through a shell: the shell takes both.
    if argv[0] in _SHELL_WORDS or "/" in argv[0]:
        return None
    program = (which or _on_path)(argv[0], env.get("PATH", os.defpath))
    if program is None:
        return None
    return [program, *argv[1:]]


class ProgramCache:
    """:func:`_on_path` remembered per (program, PATH) for one run: a fan-out of the same
    command would otherwise stat every PATH folder for every job. A program installed or
    removed during the run is seen by the next run (or through the shell's own lookup,
    which a command that needs one gets anyway)."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, str], str | None] = {}
        self._argvs: dict[tuple[str, str], tuple[str, ...] | None] = {}

    def argv(self, command: str, env: Mapping[str, str]) -> list[str] | None:
        """:func:`direct_argv` of the command, remembered per (command, PATH) as the
        programs are: a fan-out of one command decides once how to start it."""
        key = (command, env.get("PATH", os.defpath))
        try:
            found = self._argvs[key]
        except KeyError:
            argv = direct_argv(command, env, self)
            found = self._argvs[key] = None if argv is None else tuple(argv)
        return None if found is None else list(found)

    def __call__(self, program: str, path: str) -> str | None:
        key = (program, path)
        try:
            return self._found[key]
        except KeyError:
            found = self._found[key] = _on_path(program, path)
            return found


def _on_path(program: str, path: str) -> str | None:
    """What ``shutil.which(program, path=path)`` finds on POSIX (an executable file in the
    first folder that has one; an empty entry is the current folder), without importing
    shutil and the compression modules it brings: ~2 ms of a run's start-up."""
    for folder in path.split(os.pathsep):
        candidate = os.path.join(folder or os.curdir, program)
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate):
            return candidate
    return None


@dataclass
class Spawned:
    """A command started by :func:`spawn_shell`: its pid (also its process group and
    session id), and the ``Popen`` behind it when it had to be started that way."""

    pid: int
    popen: subprocess.Popen[bytes] | None = None

    def reaped(self, status: int) -> None:
        """The caller reaped it with ``waitpid``: a Popen must not try to again."""
        if self.popen is not None and self.popen.returncode is None:
            self.popen.returncode = os.waitstatus_to_exitcode(status)

    def wait(self) -> int:
        """Wait for it to end; its exit code (negative: the signal that ended it)."""
        _, status = os.waitpid(self.pid, 0)
        self.reaped(status)
        return os.waitstatus_to_exitcode(status)


def spawn_shell(
    launch: ShellLaunch,
    stdin_fd: int,
    which: Callable[[str, str], str | None] | None = None,
    cwd: str | None = None,
) -> tuple[Spawned, int, int]:
    """Start the command as the leader of a new session and process group (a timeout or
    cancel kills it and everything it started); returns it and the read ends of its stdout
    and stderr pipes. One vfork/exec: no Python process runs in between, and no shell
    either for a simple command (see :func:`direct_argv`). ``cwd`` is this process's
    folder when the caller knows it (else it is asked)."""
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    shell = ["/bin/sh", "-c", launch.command]
    if isinstance(which, ProgramCache):
        argv = which.argv(launch.command, launch.env) or shell
    else:
        argv = direct_argv(launch.command, launch.env, which) or shell
    here = os.getcwd() if cwd is None else cwd
    try:
        try:
            proc = _start(argv, launch, stdin_fd, out_w, err_w, here)
        except OSError:
            if argv is shell:
                raise
            # A program on PATH that cannot be executed itself (a script with no "#!"):
            # the shell runs it, or says why not, as it would have anyway.
            proc = _start(shell, launch, stdin_fd, out_w, err_w, here)
    except BaseException:
        for fd in (out_r, err_r):
            os.close(fd)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    return proc, out_r, err_r


def _start(
    argv: list[str], launch: ShellLaunch, stdin_fd: int, out_w: int, err_w: int, cwd: str
) -> Spawned:
    # posix_spawn is a vfork and exec without the Python-side work of subprocess (about
    # half the runner's CPU per command). It cannot change folder (Python 3.11 has no
    # chdir action), so a command for another folder than this process's goes through
    # Popen. Nothing else leaks into the command: every descriptor of this process is
    # close-on-exec (Python's default; the supervisor marks what it inherited).
    if cwd != launch.workdir:
        import subprocess

        popen = subprocess.Popen(
            argv,
            stdin=stdin_fd,
            stdout=out_w,
            stderr=err_w,
            cwd=launch.workdir,
            env=launch.env,
            start_new_session=True,
        )
        return Spawned(popen.pid, popen)
    actions = [
        (os.POSIX_SPAWN_DUP2, stdin_fd, 0),
        (os.POSIX_SPAWN_DUP2, out_w, 1),
        (os.POSIX_SPAWN_DUP2, err_w, 2),
    ]
    pid = os.posix_spawn(argv[0], argv, launch.env, file_actions=actions, setsid=True)
    return Spawned(pid)


def command_result(command: str, status: int, tail: list[str]) -> dict[str, Any]:
    """The result a shell job reports, worded as ``ctx.sh`` words a failed command;
    ``tail`` is the last lines of its stderr (of stdout when stderr stayed empty)."""
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return {"ok": True, "output": None, "artifacts": None}
    excerpt = ("; last output: " + " | ".join(tail)) if tail else ""
    return {"ok": False, "error": f"command failed with exit code {code}: {command}{excerpt}"}


def run_job(
    launch: JobLaunch, host: JobHost, masker: Masker, outputs: Mapping[str, Any]
) -> tuple[int, dict[str, Any] | None]:
    """Run one attempt in this (job) process, its stdout and stderr already on the job's
    pipe. Returns the exit code a one-job process would give (0 ok, 1 failed) and the
    result for the engine (the caller sends it). The caller restores the environment and
    folder afterwards."""
    os.environ.update(launch.env)
    os.chdir(launch.workdir)
    sink = PipeSink(1, masker)
    ctx = Context(
        run=host.run,
        job=launch.job_id,
        args=host.args,
        outputs=outputs,
        sink=sink,
        attempt=launch.attempt,
        failure=launch.failure,
    )
    runtime = Runtime(sink, host.open_secrets)
    workdir = Path(launch.workdir)
    try:
        with running(runtime):
            if launch.consumed:
                artifacts.restorer(host.open_cache, launch.consumed, workdir)(ctx)
            output = _call(host.fns[launch.job_id], ctx)
            digest = None
            if launch.output_globs:
                upload = artifacts.uploader(host.open_cache, launch.output_globs, workdir)
                digest = upload(ctx)
        try:
            json.dumps(output)
        except (TypeError, ValueError):
            raise SparkwingError(
                f'job "{launch.job_id}" returned a value that is not JSON-serialisable '
                f"({type(output).__name__}); return plain data (dict, list, str, numbers)"
            ) from None
        sink.result({"ok": True, "output": masker.data(output), "artifacts": digest})
        return 0, sink.reported
    except BaseException as exc:  # the job's failure is data for the engine, never a crash
        if isinstance(exc, SparkwingError):
            error = str(exc)
        else:
            error = f"{type(exc).__name__}: {exc}"
            for line in _user_traceback(exc):
                sink.log("error", masker.text(line))
        sink.result({"ok": False, "error": masker.text(error)})
        return 1, sink.reported


def _user_traceback(exc: BaseException) -> list[str]:
    """The traceback without sparkwing's own frames: the user's code is what matters."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    import traceback  # only for a job that raised

    tb = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in tb if not os.path.abspath(f.filename).startswith(package + os.sep)]
    lines = ["Traceback (most recent call last):"]
    lines += [ln.rstrip("\n") for ln in traceback.format_list(frames or tb)]
    lines += [ln.rstrip("\n") for ln in traceback.format_exception_only(type(exc), exc)]
    return [part for ln in lines for part in ln.splitlines()]


def _call(fn: Any, ctx: Context) -> Any:
    if fn is None:
        return None
    if isinstance(fn, str):
        ctx.sh(fn)
        return None
    return fn(ctx)
