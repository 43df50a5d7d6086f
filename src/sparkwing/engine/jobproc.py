"""The forked process that runs one job attempt.

The engine forks it (so the pipeline's modules are already imported and start-up costs
nothing), makes it the leader of a new process group (a timeout or cancel kills the job
and every command it started) and reads its output and control messages from one pipe.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sparkwing.engine import protocol
from sparkwing.engine.masking import Masker
from sparkwing.engine.procutil import die_with_parent, libc
from sparkwing.errors import SparkwingError
from sparkwing.sdk.context import Context
from sparkwing.sdk.runtime import Runtime, running


class PipeSink:
    """The job-side Sink: control messages down the pipe, masking applied locally too."""

    def __init__(self, fd: int, masker: Masker) -> None:
        self._fd = fd
        self._masker = masker

    def _send(self, message: dict[str, Any]) -> None:
        # Flush Python-level buffers first so already-printed text stays before the message.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
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
        self._send({"t": "result", **message})


@dataclass
class JobLaunch:
    """Everything the child needs, prepared by the engine before the fork."""

    job_id: str
    fn: Any
    context: Callable[[PipeSink], Context]
    env: dict[str, str]
    workdir: str
    open_secrets: Callable[[], Any]
    before: Callable[[Context], None] | None = None  # restore consumed artifacts
    after: Callable[[Context], str | None] | None = None  # upload outputs -> manifest digest


@dataclass(frozen=True)
class ShellLaunch:
    """A job whose fn is a command string and that needs no Python around it (no
    artifacts to restore or upload): the engine starts ``/bin/sh -c command`` itself."""

    job_id: str
    command: str
    env: dict[str, str]
    workdir: str


def spawn_shell(launch: ShellLaunch, stdin_fd: int) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start the command as the leader of a new session and process group (a timeout or
    cancel kills it and everything it started); returns the process and the read ends of
    its stdout and stderr pipes. One vfork/exec: no Python process runs in between."""
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", launch.command],
            stdin=stdin_fd,
            stdout=out_w,
            stderr=err_w,
            cwd=launch.workdir,
            env=launch.env,
            start_new_session=True,
        )
    except BaseException:
        for fd in (out_r, err_r):
            os.close(fd)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    return proc, out_r, err_r


def command_result(command: str, status: int, tail: list[str]) -> dict[str, Any]:
    """The result a shell job reports, worded as ``ctx.sh`` words a failed command;
    ``tail`` is the last lines of its stderr (of stdout when stderr stayed empty)."""
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return {"ok": True, "output": None, "artifacts": None}
    excerpt = ("; last output: " + " | ".join(tail)) if tail else ""
    return {"ok": False, "error": f"command failed with exit code {code}: {command}{excerpt}"}


def fork_job(launch: JobLaunch, masker: Masker) -> tuple[int, int]:
    """Start the attempt; returns (pid, read fd of its pipe)."""
    libc()  # loaded here once, not in every child
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, measured by the engine tests
        code = 70
        try:
            os.close(read_fd)
            code = _child(launch, masker, write_fd)
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        os.setpgid(pid, pid)  # also done in the child; whichever runs first wins the race
    except OSError:
        pass
    return pid, read_fd


def _child(launch: JobLaunch, masker: Masker, write_fd: int) -> int:
    # The engine's objects are shared with it copy-on-write; a collection would write to
    # every one of them (and so copy every page), while the job only needs its own swept.
    gc.freeze()
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    die_with_parent()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(devnull)
    if write_fd > 2:
        os.close(write_fd)
    # New line-buffered text streams on the redirected descriptors: the inherited ones may
    # hold the engine's buffered output and were set up for a terminal.
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    os.environ.update(launch.env)
    os.chdir(launch.workdir)
    sink = PipeSink(1, masker)
    ctx = launch.context(sink)
    runtime = Runtime(sink, launch.open_secrets)
    try:
        with running(runtime):
            if launch.before is not None:
                launch.before(ctx)
            output = _call(launch.fn, ctx)
            artifacts = launch.after(ctx) if launch.after is not None else None
        try:
            json.dumps(output)
        except (TypeError, ValueError):
            raise SparkwingError(
                f'job "{launch.job_id}" returned a value that is not JSON-serialisable '
                f"({type(output).__name__}); return plain data (dict, list, str, numbers)"
            ) from None
        sink.result({"ok": True, "output": masker.data(output), "artifacts": artifacts})
        return 0
    except BaseException as exc:  # the job's failure is data for the engine, never a crash
        if isinstance(exc, SparkwingError):
            error = str(exc)
        else:
            error = f"{type(exc).__name__}: {exc}"
            for line in _user_traceback(exc):
                sink.log("error", masker.text(line))
        sink.result({"ok": False, "error": masker.text(error)})
        return 1


def _user_traceback(exc: BaseException) -> list[str]:
    """The traceback without sparkwing's own frames: the user's code is what matters."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
