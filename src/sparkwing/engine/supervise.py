"""Runner process supervision: start the runner child (forked, or a new interpreter), pass it
the signals meant for it, read the RunResult it writes, and record a runner that died as a
failed run, or that the pipeline's own code ended, as a usage error naming that code."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

from sparkwing import _log
from sparkwing.engine.lastwords import LAST_WORDS_SUFFIX, read_last_words
from sparkwing.engine.runspec import RunResult, RunSpec

log = _log.get("sparkwing.engine")

# Third-party packages the CLI itself loaded: a forked runner drops them from sys.modules so
# the pipeline imports its own versions (a bundle may pin different ones).
CLI_ONLY_PACKAGES = ("click", "yaml", "_yaml", "rich", "markdown_it", "pygments", "mdurl")

# A new interpreter's runner: the dataclass cache first, as the CLI's own start-up does.
_SPAWN_RUNNER = (
    "import sparkwing._gencache as g; g.install(); from sparkwing.engine.runner import main; main()"
)

# Exit codes a runner gives when it ended the run itself (see runner.run_in_child).
_OWN_CODES = (0, 1, 2, 130)


def supervise(spec: RunSpec, isolated: bool = False, warm: WarmRunner | None = None) -> RunResult:
    """Start the runner and wait for it; if it dies without finishing the run, record that.

    ``isolated``: the pipeline has its own requirements; the forked runner then drops every
    third-party module the CLI had loaded and keeps user site-packages off ``sys.path``, so
    the bundle's packages (first on ``sys.path``) are the only ones the pipeline imports.
    ``warm``: a runner forked earlier (see :class:`WarmRunner`) takes the run.
    ``SPARKWING_RUNNER=spawn`` starts a fresh interpreter instead."""
    with _result_path() as path:
        spec = dataclasses.replace(spec, result_path=path)
        if warm is not None:
            code = warm.run(spec, isolated)
        elif _forking():
            code = _supervise_fork(spec, isolated)
        else:
            code = _supervise_spawn(spec, isolated)
        assert spec.result_path is not None
        result = RunResult.read(spec.result_path)
        last_words = read_last_words(spec.result_path)
    if code in _OWN_CODES and result is not None and result.code == code:
        return result
    if last_words is not None and code >= 0:
        # The pipeline's own code ended the process (os._exit at import or in plan()):
        # whatever the exit code, a usage error naming it, never a green run. A signal
        # (an OOM kill, say) is the runner dying, below.
        return pipeline_ended_runner(spec, f"{last_words} (exit code {code})")
    return runner_died(spec, code, result)


@contextlib.contextmanager
def _result_path() -> Iterator[str]:
    """Where the runner leaves its result (and, beside it, its last words): a new name in a
    folder private to the user under the local sparkwing folder, kept from run to run, and
    the files removed afterwards. (A temporary folder per run costs an rmdir, which on these
    machines' disks takes milliseconds, and importing tempfile more.)"""
    from sparkwing.paths import local_dir, make_private_dirs

    folder = local_dir() / "runner"
    try:
        make_private_dirs(folder)
    except OSError:  # a read-only home: a temporary folder of the system's does
        import shutil
        import tempfile

        temporary = tempfile.mkdtemp(prefix="sparkwing-runner-")
        try:
            yield os.path.join(temporary, "result.json")
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        return
    _remove_orphans(str(folder))
    path = str(folder / f"{os.getpid()}-{os.urandom(8).hex()}.json")
    try:
        yield path
    finally:
        for leftover in (path, f"{path}.tmp", f"{path}{LAST_WORDS_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def _remove_orphans(folder: str) -> None:
    """What a CLI killed outright (SIGKILL) left in the hand-over folder: files named after
    a process that is gone. The folder is empty but for runs going on, so this is one
    listdir per run."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        pid = name.split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # still running (or a recycled pid: its file waits for the next run)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))


@contextlib.contextmanager
def forwarding(send: Callable[[int], None]) -> Iterator[None]:
    """While waiting for a child: Ctrl-C reaches the whole foreground group by itself, so
    only a SIGTERM / SIGHUP sent to this process alone is passed on."""

    def forward(signum: int, _frame: Any) -> None:
        if signum != signal.SIGINT:
            try:
                send(signum)
            except OSError:
                pass

    previous = {
        s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def drop_cli_imports(isolated: bool) -> None:
    """In the forked runner: forget the third-party modules the CLI imported (click, yaml,
    ...) so the pipeline imports its own versions; with a bundle, every installed package
    outside sparkwing, and the user's site-packages, too."""
    import site

    for name, module in list(sys.modules.items()):
        top = name.split(".", 1)[0]
        if top == "sparkwing":
            continue
        path = getattr(module, "__file__", None) or ""
        installed = isolated and ("site-packages" in path or "dist-packages" in path)
        if top in CLI_ONLY_PACKAGES or installed:
            del sys.modules[name]
    if isolated:
        user_site = site.getusersitepackages()
        import sparkwing

        if not os.path.abspath(sparkwing.__file__).startswith(user_site + os.sep):
            sys.path[:] = [p for p in sys.path if p != user_site]


def _forking() -> bool:
    return hasattr(os, "fork") and os.environ.get("SPARKWING_RUNNER") != "spawn"


def _runner_child_setup() -> None:
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _end_child(code: int) -> None:  # pragma: no cover - in the runner child
    """End a forked runner: os._exit skips atexit, so the dataclass cache is saved here."""
    from sparkwing import _gencache

    _gencache.save()
    os._exit(code)


def _wait(pid: int) -> int:
    """Wait for the runner, passing on the signals meant for it; its exit code."""
    with forwarding(lambda signum: os.kill(pid, signum)):
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
    return os.waitstatus_to_exitcode(status)


class WarmRunner:
    """A runner process forked as ``sparkwing run`` starts, before the project, the profile
    and the bundle are resolved: it imports the engine on the machine's other core meanwhile,
    then waits for its RunSpec on a pipe. That overlap is a good part of a short run's
    start-up. A CLI that ends up running nothing (a usage error, a failed build) discards
    it: the pipe closes unread and the process exits quietly."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self._fd: int | None = fd

    @classmethod
    def start(cls) -> WarmRunner | None:
        """A warm runner, or None where runners are not forked (SPARKWING_RUNNER=spawn)."""
        if not _forking():
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; measured through the CLI tests
            os.close(write_fd)
            _warm_child(read_fd)
        os.close(read_fd)
        return cls(pid, write_fd)

    def run(self, spec: RunSpec, isolated: bool) -> int:
        """Hand it the run and wait for it to end; its exit code."""
        fd, self._fd = self._fd, None
        if fd is None:
            raise RuntimeError("this warm runner was given a run already")
        data = json.dumps({"spec": spec.to_dict(), "isolated": isolated}).encode()
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BrokenPipeError:
            pass  # it died before reading: its exit status says how, below
        finally:
            os.close(fd)
        return _wait(self.pid)

    def discard(self) -> None:
        """No run for it (idempotent; a no-op once it was given one)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        os.close(fd)
        # It holds nothing yet (imports only): ended at once, not after its imports.
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        while True:
            try:
                os.waitpid(self.pid, 0)
                return
            except InterruptedError:
                continue
            except ChildProcessError:
                return


def _warm_child(read_fd: int) -> None:  # pragma: no cover - the child
    code = 70
    try:
        _runner_child_setup()
        _warm_imports()
        chunks = []
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
        os.close(read_fd)
        if not chunks:
            code = 0  # the CLI ran nothing
            return
        doc = json.loads(b"".join(chunks))
        spec = RunSpec.from_dict(doc["spec"])
        drop_cli_imports(bool(doc["isolated"]))
        from sparkwing.engine.runner import run_in_child

        code = run_in_child(spec).code
    except BaseException:
        code = 70
    finally:
        _end_child(code)


def _warm_imports() -> None:  # pragma: no cover - the child
    """What a run's runner imports whatever the run, with the built-in local defaults'
    stores (the commonest): loaded while the CLI is still resolving the run."""
    import sparkwing.engine.concurrency
    import sparkwing.engine.dispatch
    import sparkwing.engine.gitinfo
    import sparkwing.engine.loader
    import sparkwing.engine.progress
    import sparkwing.engine.recorder
    import sparkwing.engine.runner
    import sparkwing.engine.scheduler
    import sparkwing.engine.selection
    import sparkwing.sdk.inputs
    import sparkwing.sdk.plan
    import sparkwing.surfaces.cache.filesystem
    import sparkwing.surfaces.logs.filesystem
    import sparkwing.surfaces.open
    import sparkwing.surfaces.session
    import sparkwing.surfaces.state.sqlite  # noqa: F401


def _supervise_fork(spec: RunSpec, isolated: bool) -> int:
    """Fork the runner: a separate process (its imports and crashes stay its own) that skips
    a second interpreter start and the imports the CLI already paid for."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; measured through the CLI tests
        code = 70
        try:
            _runner_child_setup()
            drop_cli_imports(isolated)
            from sparkwing.engine.runner import run_in_child

            code = run_in_child(spec).code
        except BaseException:
            code = 70
        finally:
            _end_child(code)
    return _wait(pid)


def _supervise_spawn(spec: RunSpec, isolated: bool) -> int:
    """Start the runner as a new interpreter (SPARKWING_RUNNER=spawn, or no fork); a bundle
    with requirements gets the isolation flags."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    import subprocess

    flags = isolation_flags() if isolated else []
    # -c rather than -m: runpy costs a few milliseconds of every run's start-up.
    proc = subprocess.Popen(
        [sys.executable, *flags, "-c", _SPAWN_RUNNER],
        stdin=subprocess.PIPE,
        env=env,
    )
    with forwarding(proc.send_signal):
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(spec.to_dict()).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        return proc.wait()


def isolation_flags() -> list[str]:
    """No current folder (-P) and no user site-packages (-s) on the runner's sys.path: only the
    bundle in front of this installation's own packages. Flags rather than PYTHONNOUSERSITE,
    so the commands jobs run keep the user's environment."""
    import site

    import sparkwing

    user_site = site.getusersitepackages()
    # Unless sparkwing itself was installed there (pip install --user): it must stay importable.
    if user_site and os.path.abspath(sparkwing.__file__).startswith(user_site + os.sep):
        return ["-P"]
    return ["-s", "-P"]


def runner_died(spec: RunSpec, code: int, result: RunResult | None = None) -> RunResult:
    """The runner ended without finishing the run (killed, crashed): close the run record as
    failed with the cause, and say so (naming the run only when one was recorded)."""
    how = (
        f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    )
    reason = f"runner process {how}"
    if result is None and code in _OWN_CODES:
        reason += " without reporting how the run ended"
    recorded = _close_run(spec, reason)
    earlier = result.errors if result is not None else ()
    if not recorded:
        return RunResult(1, "failed", (*earlier, f"{reason} before the run was recorded"))
    return RunResult(1, "failed", (*earlier, f"run {spec.run_id} failed: {reason}"))


def pipeline_ended_runner(spec: RunSpec, reason: str) -> RunResult:
    """The pipeline's code ended the runner: exit 2 with ``reason``; a run already recorded
    is closed as failed with it."""
    _close_run(spec, reason)
    return RunResult(2, "failed", (reason,))


def _close_run(spec: RunSpec, reason: str) -> bool:
    """Close the run's record as failed with ``reason`` (best effort); whether a record of
    the run exists."""
    from sparkwing.engine.recovery import record_runner_death
    from sparkwing.surfaces.session import Surfaces

    try:
        with Surfaces({name: spec.surface(name) for name in ("state", "secrets")}) as surfaces:
            if surfaces.state.get_run(spec.run_id) is None:
                return False
            record_runner_death(surfaces.state, spec.run_id, reason)
    except Exception as exc:  # recording is best effort; the user still gets the cause
        log.warning("could not record the failure of %s: %s", spec.run_id, exc)
    return True
