"""The state interface every state backend implements, and the records it stores.

Kept deliberately small (the original Go interface had 40 methods): the run record
operations, plus coordination parts (``memo``; ``gates`` and ``queue``, None where a backend
cannot provide them).
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sparkwing.errors import NotSupportedError
from sparkwing.status import NodeStatus, RunStatus

if TYPE_CHECKING:
    from sparkwing.surfaces.state.fleet import Fleet
    from sparkwing.surfaces.state.groups import ConcurrencyGroups
    from sparkwing.surfaces.state.jobqueue import JobQueue


@dataclass
class RunRecord:
    """One pipeline run. Times are UTC ISO-8601 strings (``2026-11-27T03:26:17.123456Z``)."""

    run_id: str
    pipeline: str
    status: str = RunStatus.PENDING
    reason: str | None = None
    created_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    heartbeat_at: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    git: dict[str, Any] = field(default_factory=dict)
    trigger: str = "cli"
    profile: str = "local"
    profile_source: str = "built-in"
    # Resolved location of each surface (SurfaceSpec.to_record()), so readers find the data.
    surfaces: dict[str, Any] = field(default_factory=dict)
    host: str = ""
    pid: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Where the run's code came from when it ran away from a checkout: {"kind": "git", "url",
    # "ref", "sha"} or {"kind": "snapshot", "key": "src/<sha256>", ...}; empty for a local run.
    source: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def not_final_error(run_id: str, status: str) -> Exception:
    """The refusal every backend's ``delete_run`` gives a run still in progress."""
    from sparkwing.errors import PreconditionFailedError

    return PreconditionFailedError(
        f"run {run_id} is {status}, not finished: only finished runs can be deleted"
    )


def check_run_update(fields: dict[str, Any]) -> None:
    """What every backend's ``update_run`` refuses: a field RunRecord does not have."""
    from sparkwing.errors import UsageError

    unknown = sorted(set(fields) - (RunRecord.__dataclass_fields__.keys() - {"run_id"}))
    if unknown:
        raise UsageError(f"cannot update run field(s): {', '.join(unknown)}")


@dataclass
class NodeRecord:
    """One job (node) of a run and its latest attempt."""

    run_id: str
    node_id: str
    status: str = NodeStatus.PENDING
    reason: str | None = None
    attempt: int = 0
    needs: list[str] = field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None
    output: Any = None
    error: str | None = None
    memo_key: str | None = None
    artifacts: str | None = None  # manifest digest in the cache surface, when the job had outputs
    extra: dict[str, Any] = field(default_factory=dict)

    def why(self) -> str:
        """Why the job is where it is, for people: its reason, its error if it failed, or
        an error an earlier attempt left before it succeeded."""
        if self.reason:
            return self.reason
        if self.error and self.status == "failed":
            return self.error
        return f"earlier attempt: {self.error}" if self.error else ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class Event:
    """An entry of a run's event sequence; ``seq`` is assigned by the store, from 1, gap-free."""

    run_id: str
    seq: int
    ts: str
    kind: str
    node_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class NewEvent:
    """An event to append; the store assigns ``seq``."""

    kind: str
    ts: str
    node_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunPage:
    """One page of a run listing and the cursor of the next."""

    runs: list[RunRecord]
    next_cursor: str | None = None


MemoState = Literal["leader", "held", "done"]


@dataclass
class MemoClaim:
    """Answer to :meth:`Memo.acquire`.

    ``leader``: the caller holds the key and must compute, then call ``complete`` or
    ``release``. ``held``: another live holder is computing; poll again later.
    ``done``: a holder completed; ``result`` is what it passed to ``complete``.
    """

    state: MemoState
    holder: str | None = None
    result: str | None = None
    expires_at: float | None = None


@dataclass
class RunClaim:
    """A queued run a worker now holds (answer to :meth:`RunQueue.claim`).

    ``attempt`` is 1 on the first claim and grows each time the run is claimed again after
    a holder's lease expired (or it was requeued); ``previous_worker`` is who held it last.
    ``expires_at`` is when the lease ends unless renewed (seconds since the epoch).
    """

    run: RunRecord
    spec: dict[str, Any]
    worker: str
    attempt: int
    expires_at: float
    previous_worker: str | None = None


@dataclass
class QueueEntry:
    """A run in the queue that no worker has finished with: ``queued`` (waiting) or
    ``claimed`` by ``worker`` until ``lease_expires`` (seconds since the epoch)."""

    run_id: str
    state: str
    worker: str | None
    attempts: int
    lease_expires: float | None
    submitted_at: str


class Memo(abc.ABC):
    """Memo reservation: which runner computes a memoized job's result (every store has it)."""

    @abc.abstractmethod
    def acquire(self, key: str, holder: str, lease_seconds: float) -> MemoClaim:
        """Try to become the one computing ``key``; an expired lease may be taken over."""

    @abc.abstractmethod
    def renew(self, key: str, holder: str, lease_seconds: float) -> bool:
        """Extend the lease; False if ``holder`` no longer holds the key."""

    @abc.abstractmethod
    def complete(self, key: str, holder: str, result: str) -> None:
        """Mark the key done with ``result`` (a reference, e.g. a cache key)."""

    @abc.abstractmethod
    def release(self, key: str, holder: str) -> None:
        """Give up the key (the computation failed) so a waiter can take over."""

    @abc.abstractmethod
    def forget(self, key: str) -> None:
        """Drop a done entry (its result expired or went missing) so it can be recomputed."""


class Gates(abc.ABC):
    """Human gates, approvals and debug pauses, coordinated across machines."""

    @abc.abstractmethod
    def open(self, gate: Gate) -> Gate:
        """Create the pending gate for (run, node, kind); an existing pending one is kept and
        returned, a resolved one is replaced (a job may pause again after a resume)."""

    @abc.abstractmethod
    def resolve(
        self, run_id: str, node_id: str, kind: str, status: str, by: str, comment: str | None
    ) -> Gate:
        """Resolve a pending gate exactly once: the first resolution wins; any later one
        raises GateResolvedError naming who resolved it. NotFoundError when there is none."""

    @abc.abstractmethod
    def get(self, run_id: str, node_id: str, kind: str) -> Gate | None: ...

    @abc.abstractmethod
    def list(
        self, *, run_id: str | None = None, kind: str | None = None, pending_only: bool = True
    ) -> builtins.list[Gate]:
        """Gates, oldest first."""


class RunQueue(abc.ABC):
    """Runs submitted now and started later by a worker, each by exactly one."""

    @abc.abstractmethod
    def submit(self, run: RunRecord, spec: dict[str, Any]) -> None:
        """Store ``run`` with status ``queued`` and the ``spec`` a worker needs to start it
        (JSON-serialisable); raises PreconditionFailedError if the id exists."""

    @abc.abstractmethod
    def claim(
        self, worker: str, lease_seconds: float, labels: Collection[str] = ()
    ) -> RunClaim | None:
        """Take the oldest queued run, or one whose holder's lease expired, for ``worker``,
        among the runs whose labels (``spec["labels"]``) are all in ``labels``; None when
        there is none. Each queued run is held by at most one worker at a time."""

    @abc.abstractmethod
    def renew(self, run_id: str, worker: str, lease_seconds: float) -> bool:
        """Extend ``worker``'s lease on ``run_id``; False if it no longer holds the run."""

    @abc.abstractmethod
    def release(self, run_id: str, worker: str, *, requeue: bool = False) -> bool:
        """``worker`` is done with ``run_id`` (it will not be claimed again), or with
        ``requeue`` puts it back in the queue; False if ``worker`` did not hold it."""

    @abc.abstractmethod
    def cancel_queued(self, run_id: str, reason: str, at: str) -> bool:
        """Cancel ``run_id`` only if it still waits in the queue (no worker holds it): it
        will never be claimed and its record ends ``cancelled`` with ``reason``. False when
        it is not queued (running, finished, or never submitted)."""

    def entries(self, limit: int = 500) -> builtins.list[QueueEntry]:
        """Runs waiting or held by a worker, oldest first (for dashboards); NotSupportedError
        where this queue cannot list them."""
        raise NotSupportedError("this run queue cannot list its entries")

    def spec_of(self, run_id: str) -> dict[str, Any] | None:
        """The spec ``run_id`` was submitted with (kept after it ran), or None when it was
        never queued; NotSupportedError where this queue cannot read it back."""
        raise NotSupportedError("this run queue cannot read a submitted spec back")


class ScheduleTicks(abc.ABC):
    """Claims of schedule ticks, each made together with the run it queues, so any number
    of schedulers sharing the state queue one run per (schedule, tick).

    A schedule is a stable key (``repo/NAME/pipeline/cron@zone``); a tick is its UTC time as
    ``YYYY-MM-DDTHH:MM:SSZ``, so ticks of one schedule sort as strings."""

    @abc.abstractmethod
    def fire(self, schedule: str, tick: str, run: RunRecord, spec: dict[str, Any]) -> bool:
        """Claim ``tick`` of ``schedule`` and queue ``run`` with ``spec`` (as
        ``RunQueue.submit``) in one step: True for the one caller whose claim it became
        (retrying the same run is True again); False, queueing nothing, when another
        caller's run holds the tick."""

    @abc.abstractmethod
    def last(self, schedule: str) -> str | None:
        """The latest tick claimed for ``schedule`` (None: never fired)."""


class StateStore(abc.ABC):
    """Durable run history plus coordination. Every method is safe across processes.

    The run record operations are methods; coordination comes in parts: ``memo`` (always
    there), and ``gates`` and ``queue``, which are None on a store that cannot coordinate
    them. That attribute being None is the one way to ask whether a store supports a part.
    """

    memo: Memo  # set by every backend

    @property
    def gates(self) -> Gates | None:
        """Approvals and pauses, or None where this store cannot coordinate them."""
        return None

    @property
    def queue(self) -> RunQueue | None:
        """The run queue, or None where this store has none."""
        return None

    @property
    def fleet(self) -> Fleet | None:
        """The workers registry, or None where this store has none."""
        return None

    @property
    def jobs(self) -> JobQueue | None:
        """The job queue (jobs dispatched to workers), or None where this store has none."""
        return None

    @property
    def ticks(self) -> ScheduleTicks | None:
        """Schedule tick claims, or None where this store cannot coordinate them."""
        return None

    @property
    def groups(self) -> ConcurrencyGroups | None:
        """Concurrency groups (surfaces.state.groups), or None where this store cannot
        coordinate them."""
        return None

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the state lives, for messages (never a secret)."""

    # -- runs -------------------------------------------------------------------------
    @abc.abstractmethod
    def create_run(self, run: RunRecord) -> None:
        """Insert a new run; raises PreconditionFailedError if the id exists, unless the
        existing record is ``queued`` (submitted, not started): then ``run`` replaces it,
        keeping its ``created_at`` (submission time) and ``source`` (when ``run`` has none)
        and merging ``extra`` (starting a queued run is creating it)."""

    @abc.abstractmethod
    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set the given RunRecord fields; raises NotFoundError for an unknown run."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunRecord | None: ...

    @abc.abstractmethod
    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """Newest first (by run id, which sorts by creation time); ``since`` is an ISO time."""

    @abc.abstractmethod
    def heartbeat(self, run_id: str, at: str) -> None: ...

    # -- plan, nodes, events ----------------------------------------------------------
    @abc.abstractmethod
    def save_plan(self, run_id: str, plan: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def get_plan(self, run_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def upsert_nodes(self, nodes: list[NodeRecord]) -> None:
        """Insert or replace node records (whole record), in one transaction."""

    def write_batch(self, run_id: str, nodes: list[NodeRecord], events: list[NewEvent]) -> None:
        """Node upserts, then events of ``run_id``: what a scheduler turn records. Stores
        that can write both in one transaction override this."""
        if nodes:
            self.upsert_nodes(nodes)
        if events:
            self.append_events(run_id, events)

    @abc.abstractmethod
    def list_nodes(self, run_id: str) -> list[NodeRecord]:
        """Nodes in insertion (plan) order."""

    @abc.abstractmethod
    def append_events(self, run_id: str, events: list[NewEvent]) -> list[int]:
        """Append atomically; returns the assigned seqs (monotonic, gap-free, from 1)."""

    @abc.abstractmethod
    def list_events(
        self, run_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[Event]: ...

    # -- retention ----------------------------------------------------------------------
    def delete_run(self, run_id: str) -> bool:
        """Delete a finished run and all it recorded here (plan, nodes, events, gates, queue
        row), the run record first, so a reader never finds the run with its data half gone.
        Refuses (PreconditionFailedError) a run that is not final. Calling it again after an
        interrupted delete removes what was left; False when there was no run record."""
        raise NotSupportedError(f"{self.describe()} cannot delete runs")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the store is unusable afterwards."""


GATE_KINDS = ("approval", "pause")
# Resolutions per kind; "expired" is set by the engine when an approval times out.
GATE_RESOLUTIONS = {
    "approval": ("approved", "denied", "expired"),
    "pause": ("resumed", "aborted"),
}
# Who resolved a gate the engine closed because its deadline passed.
TIMED_OUT_BY = "sparkwing (timed out)"


@dataclass
class Gate:
    """A point where a run waits for a person: an approval job or a debug pause."""

    run_id: str
    node_id: str
    kind: str  # approval | pause
    status: str = "pending"  # pending, or one of GATE_RESOLUTIONS[kind]
    message: str | None = None
    created_at: str = ""
    expires_at: str | None = None
    resolved_by: str | None = None
    resolved_at: str | None = None
    comment: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Gate:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def check_gate(run_id: str, node_id: str, kind: str) -> None:
    from sparkwing.errors import UsageError
    from sparkwing.ids import check_segment

    check_segment(run_id, "run id")
    check_segment(node_id, "node id")
    if kind not in GATE_KINDS:
        raise UsageError(f"gate kind must be one of {', '.join(GATE_KINDS)}, not {kind!r}")


def already_resolved(gate: Gate) -> Exception:
    """The refusal every backend gives a second resolution (first one wins)."""
    from sparkwing.errors import GateResolvedError

    return GateResolvedError(
        f'{gate.kind} "{gate.node_id}" of {gate.run_id} was already resolved by '
        f"{gate.resolved_by} at {gate.resolved_at} ({gate.status})"
    )


def require_gates(store: StateStore) -> Gates:
    """``store.gates``, or the refusal every caller gives a store without them."""
    if store.gates is None:
        raise NotSupportedError(
            f"approvals and pauses are not supported on this store ({store.describe()}): "
            "use postgres or a controller"
        )
    return store.gates


def require_queue(store: StateStore) -> RunQueue:
    """``store.queue``, or the refusal every caller gives a store without one."""
    if store.queue is None:
        raise NotSupportedError(
            f"{store.describe()} does not support the run queue (sqlite and postgres state do)"
        )
    return store.queue


def require_ticks(store: StateStore) -> ScheduleTicks:
    """``store.ticks``, or the refusal every caller gives a store without them."""
    if store.ticks is None:
        raise NotSupportedError(
            f"{store.describe()} cannot coordinate schedules (sqlite, postgres and a "
            "controller can)"
        )
    return store.ticks


def check_schedule_key(schedule: str, tick: str) -> None:
    """Keys every backend refuses: empty, over-long, or with control characters."""
    from sparkwing.errors import UsageError

    for what, value in (("schedule", schedule), ("tick", tick)):
        if not value or len(value) > 512 or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise UsageError(f"{what} key {value!r} is empty, too long or has control characters")


def require_groups(store: StateStore) -> ConcurrencyGroups:
    """``store.groups``, or the refusal every caller gives a store without them."""
    groups = store.groups
    if groups is None:
        raise NotSupportedError(
            f"concurrency groups are not supported on this store ({store.describe()}): use "
            "sqlite, postgres, a controller, or an object store that enforces conditional writes"
        )
    return groups
