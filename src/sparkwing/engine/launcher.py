"""How a worker starts a job it claimed: the one small interface a job worker drives
(``start``, then ``poll`` / ``stop`` / ``kill`` on what it returns), and the launcher that
runs each job as a local process. A launcher that starts a pod per job implements the same
two classes (docs/scale-out.md describes it)."""

from __future__ import annotations

import abc
import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparkwing.surfaces.state.jobqueue import JobResult

# How long a stopped job has to report itself cancelled before it is killed.
STOP_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class JobStart:
    """What a launched job needs: the queue entry's ``spec`` (bundle key, pipeline, args,
    inputs), which attempt it is, the folder it runs in, where it writes its result, and
    the worker's surfaces (as SurfaceSpec dicts) it reads inputs from and writes results to."""

    run_id: str
    node_id: str
    attempt: int
    spec: dict[str, Any]
    workspace: str
    result_path: str
    surfaces: dict[str, dict[str, Any]]
    worker: str
    env: dict[str, str] = field(default_factory=dict)
    parent: int = 0  # the worker's pid: a job whose worker is gone by its start never runs

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> JobStart:
        return cls(**json.loads(text))


class Launched(abc.ABC):
    """One started job."""

    @abc.abstractmethod
    def poll(self) -> JobResult | None:
        """How the job ended, or None while it runs. A job that ended without reporting (it
        was killed, its process crashed) ends ``failed`` with why."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Ask the job to stop (a cancel): it ends ``cancelled`` soon, or is killed."""

    @abc.abstractmethod
    def kill(self) -> None:
        """End it now without waiting for a result (its claim was lost)."""


class Launcher(abc.ABC):
    """Starts claimed jobs; implementations differ only in where the job's process runs."""

    @abc.abstractmethod
    def start(self, start: JobStart) -> Launched:
        """Start the job; raises OSError when it cannot be started."""


class LocalLaunched(Launched):
    def __init__(self, proc: subprocess.Popen[bytes], result_path: str) -> None:
        self.proc = proc
        self.result_path = result_path
        self._stop_deadline: float | None = None

    def poll(self) -> JobResult | None:
        import time

        code = self.proc.poll()
        if code is None:
            if self._stop_deadline is not None and time.monotonic() >= self._stop_deadline:
                self.kill()
            return None
        try:
            doc = json.loads(Path(self.result_path).read_text(encoding="utf-8"))
            return JobResult(**doc)
        except (OSError, ValueError, TypeError):
            pass
        if self._stop_deadline is not None:
            return JobResult("cancelled", error="stopped by its worker")
        how = (
            f"killed by signal {signal.Signals(-code).name}"
            if code < 0
            else f"exited with code {code}"
        )
        return JobResult("failed", error=f"job process {how} without reporting a result")

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        import time

        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + STOP_GRACE_SECONDS
            self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=STOP_GRACE_SECONDS)


def start_module(
    module: str, *, cwd: str, payload: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``python -m module`` in ``cwd`` with ``payload`` on its stdin, its output
    discarded (what it does is recorded through the surfaces, not shown by whoever started
    it), the leader of its own session (a Ctrl-C meant for its parent reaches it through
    the parent, which decides). Raises OSError when it cannot be started."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    assert proc.stdin is not None
    try:
        proc.stdin.write(payload.encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    return proc


class LocalProcessLauncher(Launcher):
    """Each job in a new interpreter (``python -m sparkwing.engine.jobrun``) on this machine,
    the leader of its own session: stopping it ends every command it started."""

    def start(self, start: JobStart) -> Launched:
        Path(start.workspace).mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **start.env}
        proc = start_module(
            "sparkwing.engine.jobrun", cwd=start.workspace, payload=start.to_json(), env=env
        )
        return LocalLaunched(proc, start.result_path)
