"""Gate waiting: opens approval and pause gates in the state surface, polls them, and
resolves an approval that outlives its timeout as its ``on_expiry`` says."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sparkwing.engine.clock import now_iso
from sparkwing.errors import GateResolvedError
from sparkwing.surfaces.state.base import TIMED_OUT_BY, Gate, StateStore, require_gates

GATE_POLL_SECONDS = 0.5
# What an approval that times out becomes, per on_expiry.
EXPIRY_RESOLUTION = {"fail": "expired", "deny": "denied", "approve": "approved"}


@dataclass
class _Waiting:
    """A node parked at a gate: the gate kind, its deadline and what expiry does."""

    kind: str
    deadline: float | None
    on_expiry: str


class GateWaiter:
    """The gates one run's nodes wait at (at most one per node)."""

    def __init__(self, state: StateStore, run_id: str) -> None:
        self._state = state
        self._run_id = run_id
        self._waiting: dict[str, _Waiting] = {}

    def prepare(
        self,
        node_id: str,
        kind: str,
        message: str,
        timeout_s: float | None,
        extra: dict[str, Any] | None = None,
        on_expiry: str = "fail",
    ) -> Gate:
        """The gate to open for ``node_id``; ``open`` it once the node's status says what
        it waits for (whoever finds the gate then also finds the run explaining it)."""
        expires = None
        deadline = None
        if timeout_s is not None:
            expires = (datetime.now(UTC) + timedelta(seconds=timeout_s)).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )
            deadline = time.monotonic() + timeout_s
        self._waiting[node_id] = _Waiting(kind, deadline, on_expiry)
        return Gate(
            run_id=self._run_id,
            node_id=node_id,
            kind=kind,
            message=message,
            created_at=now_iso(),
            expires_at=expires,
            extra=extra or {},
        )

    def open(self, gate: Gate) -> None:
        require_gates(self._state).open(gate)

    def status_of(self, gate: Gate) -> tuple[str, str]:
        """The node status and reason while it waits at ``gate``."""
        hint = f"--run {self._run_id} --node {gate.node_id}"
        if gate.kind == "approval":
            return (
                "approval_pending",
                f"waiting for approval: {gate.message} (sparkwing runs approvals approve {hint})",
            )
        return "paused", f"{gate.message} (sparkwing runs resume {hint})"

    def poll(self, node_id: str, now: float) -> Gate | None:
        """The node's gate once resolved (by someone, or by its timeout), else None."""
        waiting = self._waiting[node_id]
        gate = require_gates(self._state).get(self._run_id, node_id, waiting.kind)
        if gate is None:
            return None
        if gate.status == "pending":
            if waiting.deadline is None or now < waiting.deadline:
                return None
            resolution = EXPIRY_RESOLUTION[waiting.on_expiry]
            try:
                gate = require_gates(self._state).resolve(
                    self._run_id,
                    node_id,
                    gate.kind,
                    resolution,
                    TIMED_OUT_BY,
                    f"no decision within the timeout ({resolution})",
                )
            except GateResolvedError:
                resolved = require_gates(self._state).get(self._run_id, node_id, gate.kind)
                if resolved is None:
                    return None
                gate = resolved
        del self._waiting[node_id]
        return gate

    def forget(self, node_id: str) -> None:
        self._waiting.pop(node_id, None)
