"""The job queue: single jobs of a run handed to workers on other machines (``.requires``,
``--sw-dispatch``), each attempt executed by one worker holding a lease, reclaimed once
when that worker dies. A state store offers it as ``store.jobs`` (None when it cannot)."""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sparkwing.errors import NotSupportedError

# queued: waits for a capable worker; claimed: a worker holds its lease; done: has a result.
JobQueueState = Literal["queued", "claimed", "done"]
# What a holder learns when it renews: it still holds the job, it is asked to stop it, or
# another worker took it over (its own completion will be refused).
Renewal = Literal["held", "cancel", "lost"]


@dataclass(frozen=True)
class JobRef:
    """One attempt of one job of a run (``attempt`` is the runner's attempt, 1 for the first
    run of the job and one more for each retry)."""

    run_id: str
    node_id: str
    attempt: int


@dataclass
class QueuedJob:
    """What a runner enqueues: the attempt, the labels a worker needs, and the ``spec`` a
    worker starts it from (JSON-serialisable)."""

    ref: JobRef
    labels: list[str]
    spec: dict[str, Any]


@dataclass
class JobClaim:
    """A job a worker now holds. ``claim`` counts the claims of this attempt (1, then one
    more each time it was reclaimed after a lease lapsed): renewals and the completion name
    it, so a worker that lost the job cannot complete it."""

    ref: JobRef
    labels: list[str]
    spec: dict[str, Any]
    worker: str
    claim: int
    expires_at: float
    previous_worker: str | None = None


@dataclass
class JobEntry:
    """What a runner reads back for one attempt: where it is, who holds (or held) it, and
    once done its ``result`` (``status``, ``output``, ``artifacts``, ``error``, times)."""

    ref: JobRef
    state: str
    labels: list[str]
    worker: str | None = None
    claim: int = 0
    cancel: str | None = None
    result: dict[str, Any] | None = None
    enqueued_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobEntry:
        doc = dict(data)
        doc["ref"] = JobRef(**doc["ref"])
        return cls(**doc)


@dataclass
class JobResult:
    """How a worker says an attempt ended. ``status``: success, failed or cancelled."""

    status: str
    output: Any = None
    artifacts: str | None = None
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class JobQueue(abc.ABC):
    """Jobs queued by runners and executed by workers, each claim by exactly one."""

    @abc.abstractmethod
    def enqueue(self, job: QueuedJob) -> None:
        """Queue ``job``; raises PreconditionFailedError if that attempt is queued already."""

    @abc.abstractmethod
    def claim(self, worker: str, labels: list[str], lease_seconds: float) -> JobClaim | None:
        """Take the oldest job whose labels ``labels`` all include that is queued, or whose
        holder's lease lapsed (and was not cancelled); None when there is none."""

    @abc.abstractmethod
    def renew(self, ref: JobRef, worker: str, claim: int, lease_seconds: float) -> Renewal:
        """Extend the lease of ``worker``'s ``claim``; ``lease_seconds`` 0 gives it up now
        (it is claimable again at once)."""

    @abc.abstractmethod
    def complete(self, ref: JobRef, worker: str, claim: int, result: JobResult) -> bool:
        """Record the attempt's result; False (nothing written) when ``worker``'s ``claim`` no
        longer holds the job."""

    @abc.abstractmethod
    def cancel(self, ref: JobRef, reason: str) -> None:
        """Ask for the attempt to stop: a queued one ends ``cancelled`` at once, a held one is
        stopped by its worker at its next renewal. No-op for a done or unknown one."""

    @abc.abstractmethod
    def entries(self, run_id: str) -> list[JobEntry]:
        """Every attempt queued for ``run_id``, oldest first."""


def require_jobs(store: Any) -> JobQueue:
    """``store.jobs``, or the refusal every caller gives a store without a job queue."""
    jobs: JobQueue | None = getattr(store, "jobs", None)
    if jobs is None:
        raise NotSupportedError(
            f"{store.describe()} does not support dispatching jobs to workers "
            "(sqlite, postgres and controller state do)"
        )
    return jobs


def labels_fit(required: list[str], offered: list[str]) -> bool:
    """Whether a worker offering ``offered`` may run a job that requires ``required``."""
    return set(required) <= set(offered)
