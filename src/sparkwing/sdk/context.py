"""What user code receives: ``RunContext`` in ``plan()``, ``Context`` inside a job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkwing.errors import SparkwingError
from sparkwing.sdk.runtime import Sink, ensure_not_planning

if TYPE_CHECKING:
    from sparkwing.sdk.shell import ShellResult


@dataclass(frozen=True)
class Git:
    """The repository state a run started from (empty strings outside a git checkout)."""

    sha: str = ""
    branch: str = ""
    dirty: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"sha": self.sha, "branch": self.branch, "dirty": self.dirty}


@dataclass(frozen=True)
class RunContext:
    """Facts about the run, available to ``plan()`` and to every job as ``ctx.run``."""

    run_id: str
    pipeline: str
    git: Git = field(default_factory=Git)
    trigger: str = "cli"
    profile: str = "local"
    workdir: Path = field(default_factory=Path.cwd)


@dataclass(frozen=True)
class Failure:
    """What went wrong, as ``ctx.failure`` of a failure handler or a finally job: the job
    that failed (None when the run was cancelled as a whole), ``failed`` or ``cancelled``,
    and the error or reason text."""

    job: str | None
    status: str
    error: str
    attempts: int = 0


class Log:
    """``ctx.log.info/warn/error``: structured lines in the job's log stream."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def info(self, msg: str) -> None:
        self._sink.log("info", self._sink.mask_text(str(msg)))

    def warn(self, msg: str) -> None:
        self._sink.log("warn", self._sink.mask_text(str(msg)))

    warning = warn

    def error(self, msg: str) -> None:
        self._sink.log("error", self._sink.mask_text(str(msg)))


class Context:
    """A job's view of the run: inputs, upstream outputs, shell helpers, logging."""

    def __init__(
        self,
        *,
        run: RunContext,
        job: str,
        args: Any,
        outputs: Mapping[str, Any],
        sink: Sink,
        attempt: int = 1,
        failure: Failure | None = None,
    ) -> None:
        self.run = run
        # Set for an on_failure handler (its job's failure) and a finally job (the first
        # failure of the run, or its cancellation); None otherwise.
        self.failure = failure
        self.job = job
        self.args = args
        self.attempt = attempt
        self._outputs = outputs
        self._sink = sink
        self.log = Log(sink)

    # Shortcuts to the run facts users reach for most.
    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def pipeline(self) -> str:
        return self.run.pipeline

    @property
    def git(self) -> Git:
        return self.run.git

    @property
    def workdir(self) -> Path:
        return self.run.workdir

    @property
    def outputs(self) -> Mapping[str, Any]:
        """Return values of the jobs that finished before this one, by job id."""
        return self._outputs

    def output(self, job: Any) -> Any:
        """The return value of upstream job ``job`` (an id or a Job)."""
        job_id = getattr(job, "id", job)
        if job_id not in self._outputs:
            raise SparkwingError(
                f'job "{self.job}" read the output of "{job_id}", which has not finished '
                f"successfully before it (add .needs({job_id!r}))"
            )
        return self._outputs[job_id]

    def sh(
        self,
        command: str,
        *,
        check: bool = True,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        log: bool = True,
    ) -> ShellResult:
        """Run ``command`` with ``/bin/sh -c``; output streams into this job's log."""
        ensure_not_planning("ctx.sh()")
        from sparkwing.sdk.shell import run_command  # most jobs never start a command

        return run_command(
            self._sink,
            command,
            shell=True,
            check=check,
            cwd=cwd or self.workdir,
            env=env,
            input=input,
            log=log,
        )

    def exec(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        log: bool = True,
    ) -> ShellResult:
        """Run ``argv`` without a shell; output streams into this job's log."""
        ensure_not_planning("ctx.exec()")
        from sparkwing.sdk.shell import run_command

        return run_command(
            self._sink,
            list(argv),
            shell=False,
            check=check,
            cwd=cwd or self.workdir,
            env=env,
            input=input,
            log=log,
        )

    def annotate(self, text: str) -> None:
        """Attach a short note to this job's record (shown by ``runs status``)."""
        self._sink.annotate(self._sink.mask_text(str(text)))
