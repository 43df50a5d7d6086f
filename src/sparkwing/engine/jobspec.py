"""Immutable job specs: what the engine runs, frozen from the authoring ``Job`` builders
once ``plan()`` has returned, so nothing can change a job while the run executes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sparkwing.sdk.plan import ApprovalSpec, Job, Plan


@dataclass(frozen=True)
class JobSpec:
    """One job as the engine runs it, frozen from its authoring ``Job``."""

    id: str
    fn: Callable[..., Any] | str | None
    deps: tuple[str, ...] = ()
    retries: int = 0
    backoff: float = 1.0
    timeout_s: float | None = None
    is_optional: bool = False
    continues_on_error: bool = False
    skip_fn: Callable[..., Any] | None = None
    env_vars: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    memo_fn: Callable[..., Any] | None = None
    memo_ttl: float | None = None
    output_globs: tuple[str, ...] = ()
    consumed: tuple[str, ...] = ()
    approval: ApprovalSpec | None = None
    labels: tuple[str, ...] = ()  # what a machine must have to run it (.requires)
    role: str = "job"  # job | on_failure | finally (see engine.dag)

    @classmethod
    def of(cls, job: Job) -> JobSpec:
        return cls(
            id=job.id,
            fn=job.fn,
            deps=tuple(job.deps),
            retries=job.retries,
            backoff=job.backoff,
            timeout_s=job.timeout_s,
            is_optional=job.is_optional,
            continues_on_error=job.continues_on_error,
            skip_fn=job.skip_fn,
            env_vars=MappingProxyType(dict(job.env_vars)),
            memo_fn=job.memo_fn,
            memo_ttl=job.memo_ttl,
            output_globs=tuple(job.output_globs),
            consumed=tuple(job.consumed),
            approval=job.approval,
            labels=tuple(job.labels),
            role=job.role,
        )


def freeze(plan: Plan, order: list[str]) -> list[JobSpec]:
    """The plan's jobs as specs, in ``order`` (a topological order from ``plan.order()``)."""
    return [JobSpec.of(plan.jobs[job_id]) for job_id in order]
