"""The run's DAG as a pure state machine: which nodes are ready, and what a node's final
status does to its dependants (and to the failure handlers and ``finally_`` jobs that wait
on outcomes rather than successes). No processes, no I/O; every walk uses a work list."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from sparkwing.status import FINAL_NODE_STATUSES

# Where a node is before it ends: waiting for dependencies, queued to start, or taken by
# the scheduler (preparing, running, retrying, parked at a gate or a memo holder).
WAITING = "waiting"
READY = "ready"
ACTIVE = "active"

# What a node is for: a job of the plan, a job's failure handler (``.on_failure``: it runs
# only when the job it handles failed), or a ``finally_`` job (it runs once every other
# node has ended, whatever their outcome).
JOB = "job"
ON_FAILURE = "on_failure"
FINALLY = "finally"
ROLES = (JOB, ON_FAILURE, FINALLY)


@dataclass(frozen=True, slots=True)
class DagNode:
    """What the state machine needs to know of a job."""

    id: str
    deps: tuple[str, ...] = ()
    optional: bool = False  # its failure neither fails the run nor cancels dependants
    continue_on_error: bool = False  # its failure fails the run; dependants still run
    role: str = JOB  # an on_failure node has one dep, the job it handles; finally has none


@dataclass(frozen=True, slots=True)
class Cancelled:
    """A dependant the state machine ended because of an upstream outcome: cancelled when
    something upstream ended badly, skipped for a failure handler whose job did not fail."""

    id: str
    reason: str
    status: str = "cancelled"


@dataclass(slots=True)
class _State:
    """One node's place in the walk: its phase and how many of its needs are still open."""

    node: DagNode
    phase: str = WAITING
    waiting_on: int = 0
    dependants: list[str] = field(default_factory=list)


class Dag:
    """Node phases and propagation. Ready ids come out in plan order (the order given)."""

    def __init__(self, nodes: Iterable[DagNode]) -> None:
        self._nodes: dict[str, _State] = {}
        self._finally: list[str] = []
        for node in nodes:
            if node.id in self._nodes:
                raise ValueError(f"duplicate node {node.id!r}")
            if node.role not in ROLES:
                raise ValueError(f"node {node.id!r} has unknown role {node.role!r}")
            if node.role == FINALLY:
                # It waits on every other node, not on deps of its own.
                if node.deps:
                    raise ValueError(f"finally node {node.id!r} cannot have deps")
                self._finally.append(node.id)
            elif node.role == ON_FAILURE and len(set(node.deps)) != 1:
                raise ValueError(f"on_failure node {node.id!r} must have exactly one dep")
            self._nodes[node.id] = _State(node, waiting_on=len(set(node.deps)))
        for state in self._nodes.values():
            for dep in dict.fromkeys(state.node.deps):
                if dep not in self._nodes:
                    raise ValueError(f"node {state.node.id!r} needs unknown node {dep!r}")
                if self._nodes[dep].node.role != JOB:
                    raise ValueError(f"node {state.node.id!r} needs {dep!r}, not a job")
                self._nodes[dep].dependants.append(state.node.id)
        self._ready: deque[str] = deque()
        for node_id, state in self._nodes.items():
            if state.waiting_on == 0 and state.node.role != FINALLY:
                state.phase = READY
                self._ready.append(node_id)
        self._open = len(self._nodes)  # nodes not in a final status
        self._open_before_finally = self._open - len(self._finally)
        self.failed_required = False
        self._release_finally()

    # ---------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    @property
    def done(self) -> bool:
        """Every node has a final status."""
        return self._open == 0

    def phase(self, node_id: str) -> str:
        """``waiting``, ``ready``, ``active`` or the node's final status."""
        return self._nodes[node_id].phase

    def is_final(self, node_id: str) -> bool:
        return self._nodes[node_id].phase in FINAL_NODE_STATUSES

    def has_ready(self) -> bool:
        return bool(self._ready)

    def unfinished(self, *, keep_finally: bool = False) -> list[str]:
        """Ids of the nodes without a final status, in plan order (without the finally
        nodes when ``keep_finally``: a cancelled run still runs those)."""
        return [
            i
            for i, s in self._nodes.items()
            if s.phase not in FINAL_NODE_STATUSES and not (keep_finally and s.node.role == FINALLY)
        ]

    def role(self, node_id: str) -> str:
        return self._nodes[node_id].node.role

    def _release_finally(self) -> None:
        """Once every other node has ended, the finally nodes are ready (in plan order)."""
        if self._open_before_finally:
            return
        for node_id in self._finally:
            state = self._nodes[node_id]
            if state.phase == WAITING:
                state.phase = READY
                self._ready.append(node_id)

    # ---------------------------------------------------------------- transitions
    def take(self) -> str | None:
        """The next ready node, now active; None when nothing is ready."""
        while self._ready:
            node_id = self._ready.popleft()
            state = self._nodes[node_id]
            if state.phase == READY:
                state.phase = ACTIVE
                return node_id
        return None

    def requeue(self, node_id: str) -> None:
        """Put an active node back in the ready queue (a retry, a resumed pause, a memo
        holder to ask again)."""
        state = self._nodes[node_id]
        if state.phase != ACTIVE:
            raise ValueError(f"node {node_id!r} is {state.phase}, not active")
        state.phase = READY
        self._ready.append(node_id)

    def finish(self, node_id: str, status: str, *, propagate: bool = True) -> list[Cancelled]:
        """Give a node its final status; returns the dependants this cancels, in the order
        they were reached. Without ``propagate`` (the run is being cancelled as a whole)
        dependants are left for the caller to end."""
        if status not in FINAL_NODE_STATUSES:
            raise ValueError(f"{status!r} is not a final status")
        cancelled: list[Cancelled] = []
        work: deque[tuple[str, str]] = deque([(node_id, status)])
        while work:
            current, current_status = work.popleft()
            state = self._nodes[current]
            if state.phase in FINAL_NODE_STATUSES:
                raise ValueError(f"node {current!r} already ended ({state.phase})")
            state.phase = current_status
            self._open -= 1
            node = state.node
            if node.role != FINALLY:
                self._open_before_finally -= 1
            if current_status == "failed" and not node.optional:
                self.failed_required = True
            if not propagate:
                continue
            blocks = current_status == "cancelled" or (
                current_status == "failed" and not (node.optional or node.continue_on_error)
            )
            for dep_id in state.dependants:
                dependant = self._nodes[dep_id]
                if dependant.phase in FINAL_NODE_STATUSES:
                    continue
                if dependant.node.role == ON_FAILURE:
                    if current_status == "failed":
                        dependant.phase = READY
                        self._ready.append(dep_id)
                    else:
                        reason = f"{current} did not fail ({current_status})"
                        cancelled.append(Cancelled(dep_id, reason, "skipped"))
                        dependant.phase = ACTIVE
                        work.append((dep_id, "skipped"))
                    continue
                if blocks:
                    if dependant.phase != WAITING:
                        continue  # already started by another path; it ends on its own
                    reason = f"upstream-failed: {current} {current_status}"
                    cancelled.append(Cancelled(dep_id, reason))
                    # Marked now so a node reached twice (a diamond) is cancelled once.
                    dependant.phase = ACTIVE
                    work.append((dep_id, "cancelled"))
                    continue
                dependant.waiting_on -= 1
                if dependant.waiting_on == 0 and dependant.phase == WAITING:
                    dependant.phase = READY
                    self._ready.append(dep_id)
        self._release_finally()
        return cancelled
