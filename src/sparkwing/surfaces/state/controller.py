"""The controller state backend (mode 4): every StateStore call as an HTTP request.

Ids and keys are validated here before any request, so a bad one never reaches the wire
(where a URL library might normalise ``..`` away) and fails exactly as it does locally.
"""

from __future__ import annotations

import builtins
from typing import Any

from sparkwing.controller.client import ControllerClient, segment
from sparkwing.ids import check_key, check_segment
from sparkwing.surfaces.state.base import (
    TIMED_OUT_BY,
    Event,
    Gate,
    Gates,
    Memo,
    MemoClaim,
    NewEvent,
    NodeRecord,
    RunClaim,
    RunPage,
    RunQueue,
    RunRecord,
    StateStore,
    check_gate,
)
from sparkwing.surfaces.state.controller_jobs import ControllerJobs
from sparkwing.surfaces.state.jobqueue import JobQueue


def _run(run_id: str) -> str:
    return "/v1/runs/" + segment(check_segment(run_id, "run id"))


class ControllerState(StateStore):
    def __init__(self, client: ControllerClient) -> None:
        self.client = client
        self.memo = _ControllerMemo(client)
        self._gates = _ControllerGates(client)
        self._queue = _ControllerQueue(client)
        self._jobs = ControllerJobs(client)
        self._capabilities: dict[str, Any] | None = None

    def describe(self) -> str:
        return f"{self.client.describe()} (state)"

    def _supports(self, part: str) -> bool:
        """What the controller's own state store has (asked once per handle)."""
        if self._capabilities is None:
            doc = self.client.call("GET", "/v1/state/capabilities", what="probe the state")
            self._capabilities = dict(doc)
        return bool(self._capabilities.get(part, False))

    @property
    def gates(self) -> Gates | None:
        return self._gates if self._supports("gates") else None

    @property
    def queue(self) -> RunQueue | None:
        return self._queue if self._supports("queue") else None

    @property
    def jobs(self) -> JobQueue | None:
        return self._jobs if self._jobs.supported() else None

    # -- runs -------------------------------------------------------------------------
    def create_run(self, run: RunRecord) -> None:
        check_segment(run.run_id, "run id")
        self.client.call("POST", "/v1/runs", what="create a run", body=run.to_dict())

    def update_run(self, run_id: str, **fields: Any) -> None:
        self.client.call("PATCH", _run(run_id), what="update a run", body={"fields": fields})

    def get_run(self, run_id: str) -> RunRecord | None:
        doc = self.client.call("GET", _run(run_id), what="read a run", missing=True)
        return None if doc is None else RunRecord.from_dict(doc)

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        params = {
            "pipeline": pipeline,
            "status": status,
            "since": since,
            "limit": limit,
            "cursor": cursor,
        }
        doc = self.client.call("GET", "/v1/runs", what="list runs", params=params)
        return RunPage(
            runs=[RunRecord.from_dict(r) for r in doc["runs"]], next_cursor=doc.get("next_cursor")
        )

    def heartbeat(self, run_id: str, at: str) -> None:
        path = _run(run_id) + "/heartbeat"
        self.client.call("POST", path, what="record a heartbeat", body={"at": at})

    # -- plan, nodes, events ----------------------------------------------------------
    def save_plan(self, run_id: str, plan: dict[str, Any]) -> None:
        self.client.call("PUT", _run(run_id) + "/plan", what="save a plan", body=plan)

    def get_plan(self, run_id: str) -> dict[str, Any] | None:
        doc = self.client.call("GET", _run(run_id) + "/plan", what="read a plan", missing=True)
        return None if doc is None else dict(doc)

    def upsert_nodes(self, nodes: list[NodeRecord]) -> None:
        if not nodes:
            return
        for node in nodes:
            check_segment(node.run_id, "run id")
            check_segment(node.node_id, "node id")
        body = {"nodes": [n.to_dict() for n in nodes]}
        self.client.call("POST", "/v1/nodes", what="record nodes", body=body)

    def list_nodes(self, run_id: str) -> list[NodeRecord]:
        doc = self.client.call("GET", _run(run_id) + "/nodes", what="list nodes")
        return [NodeRecord.from_dict(n) for n in doc["nodes"]]

    def append_events(self, run_id: str, events: list[NewEvent]) -> list[int]:
        path = _run(run_id) + "/events"
        if not events:
            return []
        body = {
            "events": [
                {"kind": e.kind, "ts": e.ts, "node_id": e.node_id, "data": e.data} for e in events
            ]
        }
        doc = self.client.call("POST", path, what="append events", body=body)
        return [int(seq) for seq in doc["seqs"]]

    def list_events(self, run_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        params = {"after_seq": after_seq, "limit": limit}
        doc = self.client.call("GET", _run(run_id) + "/events", what="list events", params=params)
        return [Event(**e) for e in doc["events"]]


class _ControllerMemo(Memo):
    """Memo reservation by the controller's own state store."""

    def __init__(self, client: ControllerClient) -> None:
        self.client = client

    def _memo(self, action: str, key: str, **fields: Any) -> Any:
        check_key(key, "memo key")
        body = {"key": key, **fields}
        return self.client.call("POST", f"/v1/memo/{action}", what=f"{action} a memo", body=body)

    def acquire(self, key: str, holder: str, lease_seconds: float) -> MemoClaim:
        doc = self._memo("acquire", key, holder=holder, lease_seconds=lease_seconds)
        return MemoClaim(
            state=doc["state"],
            holder=doc.get("holder"),
            result=doc.get("result"),
            expires_at=doc.get("expires_at"),
        )

    def renew(self, key: str, holder: str, lease_seconds: float) -> bool:
        return bool(self._memo("renew", key, holder=holder, lease_seconds=lease_seconds)["ok"])

    def complete(self, key: str, holder: str, result: str) -> None:
        self._memo("complete", key, holder=holder, result=result)

    def release(self, key: str, holder: str) -> None:
        self._memo("release", key, holder=holder)

    def forget(self, key: str) -> None:
        self._memo("forget", key)


class _ControllerGates(Gates):
    """Gates kept by the controller (present when its store has them)."""

    def __init__(self, client: ControllerClient) -> None:
        self.client = client

    def open(self, gate: Gate) -> Gate:
        check_gate(gate.run_id, gate.node_id, gate.kind)
        doc = self.client.call("POST", "/v1/gates", what="open a gate", body=gate.to_dict())
        return Gate.from_dict(doc)

    @staticmethod
    def _gate(run_id: str, node_id: str, kind: str) -> str:
        check_gate(run_id, node_id, kind)
        return f"/v1/gates/{segment(run_id)}/{segment(node_id)}/{segment(kind)}"

    def resolve(
        self, run_id: str, node_id: str, kind: str, status: str, by: str, comment: str | None
    ) -> Gate:
        # The engine's own expiry goes through the route a runner's token may use; every
        # other resolution needs runs.approve and is recorded under the token's name.
        route = "/expire" if by == TIMED_OUT_BY else "/resolve"
        path = self._gate(run_id, node_id, kind) + route
        body = {"status": status, "comment": comment}
        return Gate.from_dict(self.client.call("POST", path, what="resolve a gate", body=body))

    def get(self, run_id: str, node_id: str, kind: str) -> Gate | None:
        path = self._gate(run_id, node_id, kind)
        doc = self.client.call("GET", path, what="read a gate", missing=True)
        return None if doc is None else Gate.from_dict(doc)

    def list(
        self, *, run_id: str | None = None, kind: str | None = None, pending_only: bool = True
    ) -> builtins.list[Gate]:
        if run_id is not None:
            check_segment(run_id, "run id")
        params = {"run_id": run_id, "kind": kind, "pending_only": str(pending_only).lower()}
        doc = self.client.call("GET", "/v1/gates", what="list gates", params=params)
        return [Gate.from_dict(g) for g in doc["gates"]]


class _ControllerQueue(RunQueue):
    """The controller's run queue (present when its store has one)."""

    def __init__(self, client: ControllerClient) -> None:
        self.client = client

    def submit(self, run: RunRecord, spec: dict[str, Any]) -> None:
        check_segment(run.run_id, "run id")
        run.status = "queued"
        body = {"run": run.to_dict(), "spec": spec}
        self.client.call("POST", "/v1/queue", what="submit a run", body=body)

    def claim(self, worker: str, lease_seconds: float) -> RunClaim | None:
        body = {"worker": worker, "lease_seconds": lease_seconds}
        doc = self.client.call("POST", "/v1/queue/claim", what="claim a run", body=body)["claim"]
        if doc is None:
            return None
        return RunClaim(
            run=RunRecord.from_dict(doc["run"]),
            spec=doc["spec"],
            worker=doc["worker"],
            attempt=int(doc["attempt"]),
            expires_at=float(doc["expires_at"]),
            previous_worker=doc.get("previous_worker"),
        )

    def renew(self, run_id: str, worker: str, lease_seconds: float) -> bool:
        path = "/v1/queue/" + segment(check_segment(run_id, "run id")) + "/renew"
        body = {"worker": worker, "lease_seconds": lease_seconds}
        return bool(self.client.call("POST", path, what="renew a claim", body=body)["ok"])

    def cancel_queued(self, run_id: str, reason: str, at: str) -> bool:
        path = "/v1/queue/" + segment(check_segment(run_id, "run id")) + "/cancel"
        body = {"reason": reason, "at": at}
        return bool(self.client.call("POST", path, what="cancel a queued run", body=body)["ok"])

    def release(self, run_id: str, worker: str, *, requeue: bool = False) -> bool:
        path = "/v1/queue/" + segment(check_segment(run_id, "run id")) + "/release"
        body = {"worker": worker, "requeue": requeue}
        return bool(self.client.call("POST", path, what="release a claim", body=body)["ok"])
