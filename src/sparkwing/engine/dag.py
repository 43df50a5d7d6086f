"""The run's DAG as a pure state machine: which nodes are ready, and what a node's final
status does to its dependants. No processes, no I/O; every walk uses a work list."""

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


@dataclass(frozen=True, slots=True)
class DagNode:
    """What the state machine needs to know of a job."""

    id: str
    deps: tuple[str, ...] = ()
    optional: bool = False  # its failure neither fails the run nor cancels dependants
    continue_on_error: bool = False  # its failure fails the run; dependants still run


@dataclass(frozen=True, slots=True)
class Cancelled:
    """A dependant the state machine cancelled because something upstream ended badly."""

    id: str
    reason: str


@dataclass(slots=True)
class _State:
    node: DagNode
    phase: str = WAITING
    waiting_on: int = 0
    dependants: list[str] = field(default_factory=list)


class Dag:
    """Node phases and propagation. Ready ids come out in plan order (the order given)."""

    def __init__(self, nodes: Iterable[DagNode]) -> None:
        self._nodes: dict[str, _State] = {}
        for node in nodes:
            if node.id in self._nodes:
                raise ValueError(f"duplicate node {node.id!r}")
            self._nodes[node.id] = _State(node, waiting_on=len(set(node.deps)))
        for state in self._nodes.values():
            for dep in dict.fromkeys(state.node.deps):
                if dep not in self._nodes:
                    raise ValueError(f"node {state.node.id!r} needs unknown node {dep!r}")
                self._nodes[dep].dependants.append(state.node.id)
        self._ready: deque[str] = deque()
        for node_id, state in self._nodes.items():
            if state.waiting_on == 0:
                state.phase = READY
                self._ready.append(node_id)
        self._open = len(self._nodes)  # nodes not in a final status
        self.failed_required = False

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

    def unfinished(self) -> list[str]:
        """Ids of the nodes without a final status, in plan order."""
        return [i for i, s in self._nodes.items() if s.phase not in FINAL_NODE_STATUSES]

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
        return cancelled
