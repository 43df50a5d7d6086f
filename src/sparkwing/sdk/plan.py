"""The authoring DSL: ``Plan`` collects ``Job`` builders and validates the DAG they form.

The builders are mutable while ``plan()`` runs; the engine then freezes them into
``engine.jobspec.JobSpec`` and never holds a builder.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sparkwing.errors import PlanError
from sparkwing.sdk.durations import parse_duration

_JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]{0,62}$")

JobFn = Callable[..., Any]


class Job:
    """One node of the plan. Modifiers return the job, so they chain."""

    def __init__(self, plan: Plan, job_id: str, fn: JobFn | str | None) -> None:
        self.id = job_id
        self.fn = fn
        self.deps: list[str] = []
        self.retries = 0
        self.backoff = 1.0
        self.timeout_s: float | None = None
        self.is_optional = False
        self.continues_on_error = False
        self.skip_fn: Callable[..., Any] | None = None
        self.env_vars: dict[str, str] = {}
        self.memo_fn: Callable[..., Any] | None = None
        self.memo_ttl: float | None = None
        self.output_globs: list[str] = []
        self.consumed: list[str] = []
        self.description: str | None = None
        self.approval: ApprovalSpec | None = None
        self.labels: list[str] = []

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    def needs(self, *jobs: Job | str | Iterable[Job | str]) -> Job:
        """Run after ``jobs`` finish; a failed (non-optional) dependency cancels this job."""
        for job in _flatten(jobs):
            dep = job.id if isinstance(job, Job) else str(job)
            if dep not in self.deps:
                self.deps.append(dep)
        return self

    def retry(self, times: int, backoff: str | float = "1s") -> Job:
        """Retry up to ``times`` more attempts, waiting backoff, 2x backoff, 4x backoff, ..."""
        if isinstance(times, bool) or not isinstance(times, int) or times < 0:
            raise PlanError(f'job "{self.id}": retry count must be a non-negative integer')
        self.retries = times
        self.backoff = parse_duration(backoff, f'job "{self.id}" retry backoff')
        return self

    def timeout(self, duration: str | float) -> Job:
        """Kill an attempt (its whole process group) after ``duration``."""
        seconds = parse_duration(duration, f'job "{self.id}" timeout')
        if seconds <= 0:
            raise PlanError(f'job "{self.id}": timeout must be positive')
        self.timeout_s = seconds
        return self

    def optional(self, value: bool = True) -> Job:
        """A failure is recorded but neither fails the run nor cancels dependants."""
        self.is_optional = value
        return self

    def continue_on_error(self, value: bool = True) -> Job:
        """A failure fails the run but dependants still run."""
        self.continues_on_error = value
        return self

    def skip_if(self, predicate: Callable[..., Any]) -> Job:
        """Evaluated with the job's context just before it would run; truthy means skip."""
        self.skip_fn = predicate
        return self

    def env(self, values: dict[str, Any] | None = None, **more: Any) -> Job:
        """Environment variables for the job's process and the commands it runs."""
        for k, v in {**(values or {}), **more}.items():
            self.env_vars[str(k)] = str(v)
        return self

    def memoize(self, key_fn: Callable[..., Any], ttl: str | float | None = None) -> Job:
        """Reuse a previous result when ``key_fn(ctx)`` gives a key seen before (within ttl)."""
        self.memo_fn = key_fn
        self.memo_ttl = None if ttl is None else parse_duration(ttl, f'job "{self.id}" ttl')
        return self

    def outputs(self, *globs: str) -> Job:
        """Files (globs relative to the project root) stored as this job's artifacts."""
        self.output_globs.extend(str(g) for g in globs)
        return self

    def consumes(self, *jobs: Job | str) -> Job:
        """Restore the artifacts of ``jobs`` into the workspace first (implies ``needs``)."""
        for job in jobs:
            dep = job.id if isinstance(job, Job) else str(job)
            if dep not in self.consumed:
                self.consumed.append(dep)
        self.needs(*jobs)
        return self

    def describe(self, text: str) -> Job:
        self.description = text
        return self

    def requires(self, *labels: str) -> Job:
        """Run only on a machine with every one of ``labels`` (``"gpu"``, ``"arm64"``): where
        the run's machine lacks one, the job is queued for a ``sparkwing worker`` that has them."""
        for label in labels:
            if not isinstance(label, str) or not _LABEL_RE.match(label):
                raise PlanError(
                    f'job "{self.id}": invalid label {label!r} (letters, digits, ".", "_", '
                    '"-" and "=", starting with a letter or digit, at most 63 characters)'
                )
            if label not in self.labels:
                self.labels.append(label)
        return self

    def snapshot(self) -> dict[str, Any]:
        """The job as plain data (for the plan snapshot stored with the run)."""
        fn = self.fn
        target: dict[str, Any]
        if isinstance(fn, str):
            target = {"shell": fn}
        elif fn is None:
            target = {"noop": True}
        else:
            target = {"fn": f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"}
        return {
            "id": self.id,
            **target,
            "needs": list(self.deps),
            "retries": self.retries,
            "backoff_s": self.backoff,
            "timeout_s": self.timeout_s,
            "optional": self.is_optional,
            "continue_on_error": self.continues_on_error,
            "skip_if": self.skip_fn is not None,
            "env": sorted(self.env_vars),
            "memoize": self.memo_fn is not None,
            "memo_ttl_s": self.memo_ttl,
            "outputs": list(self.output_globs),
            "consumes": list(self.consumed),
            "description": self.description,
            **({"requires": list(self.labels)} if self.labels else {}),
            **({"approval": self.approval.snapshot()} if self.approval else {}),
        }


ON_EXPIRY = ("fail", "deny", "approve")


@dataclass(frozen=True)
class ApprovalSpec:
    """A human gate: the job waits in ``approval_pending`` until someone resolves it."""

    message: str
    timeout_s: float | None
    on_expiry: str

    def snapshot(self) -> dict[str, Any]:
        return {"message": self.message, "timeout_s": self.timeout_s, "on_expiry": self.on_expiry}


def _flatten(items: Iterable[Any]) -> Iterable[Job | str]:
    for item in items:
        if isinstance(item, Job | str):
            yield item
        elif isinstance(item, Iterable):
            yield from _flatten(item)
        else:
            raise PlanError(f"needs() takes jobs or job ids, got {item!r}")


class Plan:
    """Collects the jobs of one run. ``plan()`` must only build it (no side effects)."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self.jobs: dict[str, Job] = {}

    def job(
        self, job_id: str, fn: JobFn | str | None = None, *, needs: Iterable[Job | str] = ()
    ) -> Job:
        """Add a job: ``fn(ctx)`` runs it (a string runs as a shell command)."""
        if not isinstance(job_id, str) or not _JOB_ID_RE.match(job_id):
            raise PlanError(
                f"pipeline \"{self.pipeline}\": invalid job id {job_id!r} (letters, digits, '.', "
                "'_' and '-', starting with a letter or digit, at most 100 characters)"
            )
        if job_id in self.jobs:
            raise PlanError(f'pipeline "{self.pipeline}": duplicate job id "{job_id}"')
        if fn is not None and not isinstance(fn, str) and not callable(fn):
            raise PlanError(f'job "{job_id}": expected a function or a shell command, got {fn!r}')
        job = Job(self, job_id, fn)
        self.jobs[job_id] = job
        if needs:
            job.needs(*needs)
        return job

    def approval(
        self,
        job_id: str,
        *,
        message: str = "",
        timeout: str | float | None = None,
        on_expiry: str = "fail",
        needs: Iterable[Job | str] = (),
    ) -> Job:
        """A gate that waits until someone runs ``sparkwing runs approvals approve|deny``.

        After ``timeout`` it resolves by itself per ``on_expiry``: ``fail`` (the gate fails),
        ``deny`` (as if denied) or ``approve``. Downstream jobs ``needs`` it like any job.
        """
        if on_expiry not in ON_EXPIRY:
            raise PlanError(
                f'approval "{job_id}": on_expiry must be one of {", ".join(ON_EXPIRY)}, '
                f"got {on_expiry!r}"
            )
        seconds = None
        if timeout is not None:
            seconds = parse_duration(timeout, f'approval "{job_id}" timeout')
        job = self.job(job_id, None, needs=needs)
        job.approval = ApprovalSpec(str(message), seconds, on_expiry)
        return job

    def order(self) -> list[str]:
        """Validate the DAG and return job ids in a topological order (stable: plan order)."""
        for job in self.jobs.values():
            for dep in job.deps:
                if dep not in self.jobs:
                    raise PlanError(f'job "{job.id}" needs unknown job "{dep}"')
                if dep == job.id:
                    raise PlanError(f'job "{job.id}" needs itself')
        if not self.jobs:
            raise PlanError(f'pipeline "{self.pipeline}": plan() added no jobs')
        state: dict[str, int] = {}
        ordered: list[str] = []
        for start in self.jobs:
            if state.get(start):
                continue
            # Iterative DFS so a 10,000-deep chain cannot hit the recursion limit.
            stack: list[tuple[str, int]] = [(start, 0)]
            path: list[str] = []
            while stack:
                node, idx = stack.pop()
                if idx == 0:
                    if state.get(node) == 2:
                        continue
                    state[node] = 1
                    path.append(node)
                deps = self.jobs[node].deps
                if idx < len(deps):
                    stack.append((node, idx + 1))
                    dep = deps[idx]
                    if state.get(dep) == 1:
                        cycle = [*path[path.index(dep) :], dep]
                        raise PlanError("cycle in needs: " + " -> ".join(cycle))
                    if not state.get(dep):
                        stack.append((dep, 0))
                else:
                    state[node] = 2
                    path.pop()
                    ordered.append(node)
        return ordered

    def snapshot(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "jobs": [j.snapshot() for j in self.jobs.values()]}
