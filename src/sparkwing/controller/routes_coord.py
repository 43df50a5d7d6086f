"""API operations for coordination beyond memo leases: the run queue (submit, claim, renew,
release) and human gates (approvals, debug pauses). Both pass through to the controller's
state store, which refuses them (501) when it lacks the capability.

Resolving a gate needs ``runs.approve`` and is recorded under the calling token's name; a
runner's own token may only open its run's gates and, once a deadline has passed, apply
the expiry its plan names."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from sparkwing.controller import schemas as s
from sparkwing.controller.authority import check_run_write, check_writer, record
from sparkwing.controller.endpoint import (
    Call,
    Endpoint,
    Param,
    Reply,
    error_response,
    json_response,
)
from sparkwing.controller.routes_state import READ, RUN_ID, WRITE
from sparkwing.engine.clock import now_iso
from sparkwing.errors import NotFoundError, PreconditionFailedError
from sparkwing.ids import check_segment
from sparkwing.surfaces.state.base import (
    GATE_KINDS,
    TIMED_OUT_BY,
    Gate,
    RunRecord,
    check_gate,
    require_gates,
    require_queue,
)

APPROVE = "runs.approve"


def state_capabilities(call: Call) -> Any:
    state = call.backend.state
    return {
        "gates": state.gates is not None,
        "queue": state.queue is not None,
        "fleet": state.fleet is not None,
        "ticks": state.ticks is not None,
        "groups": state.groups is not None,
    }


# -- run queue -----------------------------------------------------------------------------
def submit(call: Call) -> Any:
    run = RunRecord.from_dict(call.body["run"])
    check_segment(run.run_id, "run id")
    require_queue(call.backend.state).submit(run, call.body["spec"])
    record(call, run.run_id, "created")
    return json_response({"run_id": run.run_id}, 201)


def claim(call: Call) -> Any:
    got = require_queue(call.backend.state).claim(
        call.body["worker"],
        float(call.body.get("lease_seconds", 60)),
        labels=call.body.get("labels") or (),
    )
    if got is None:
        return {"claim": None}
    record(call, got.run.run_id, "claimed")
    return {"claim": {**asdict(got), "run": got.run.to_dict()}}


def renew(call: Call) -> Any:
    lease = float(call.body.get("lease_seconds", 60))
    check_writer(call, call.path["run_id"])
    return {
        "ok": require_queue(call.backend.state).renew(
            call.path["run_id"], call.body["worker"], lease
        )
    }


def release(call: Call) -> Any:
    check_writer(call, call.path["run_id"])
    ok = require_queue(call.backend.state).release(
        call.path["run_id"], call.body["worker"], requeue=bool(call.body.get("requeue", False))
    )
    return {"ok": ok}


def cancel_queued(call: Call) -> Any:
    check_writer(call, call.path["run_id"])
    ok = require_queue(call.backend.state).cancel_queued(
        call.path["run_id"], str(call.body["reason"]), str(call.body["at"])
    )
    return {"ok": ok}


# -- gates ---------------------------------------------------------------------------------
def _node_id(value: str) -> object:
    return check_segment(value, "node id")


def _kind(value: str) -> object:
    check_gate("run", "node", value)
    return value


NODE_ID = Param("node_id", "path", s.STR, "Node (job) id.", required=True, check=_node_id)
KIND = Param(
    "kind",
    "path",
    {"type": "string", "enum": list(GATE_KINDS)},
    "Gate kind.",
    required=True,
    check=_kind,
)


def gate_open(call: Call) -> Any:
    gate = Gate.from_dict(call.body)
    check_gate(gate.run_id, gate.node_id, gate.kind)
    check_run_write(call, gate.run_id)
    # Opened pending, whatever the body says: a resolution is runs.approve's alone.
    gate = replace(
        gate,
        status="pending",
        resolved_by=None,
        resolved_at=None,
        comment=None,
        created_at=now_iso(),
    )
    return require_gates(call.backend.state).open(gate).to_dict()


def gate_resolve(call: Call) -> Any:
    p, b = call.path, call.body
    assert call.token is not None  # a scoped endpoint always has one
    # The decision is the token's: a "by" in the body is not trusted (nor used).
    gate = require_gates(call.backend.state).resolve(
        p["run_id"], p["node_id"], p["kind"], b["status"], call.token.name, b.get("comment")
    )
    return gate.to_dict()


def _expiry_status(call: Call, node_id: str) -> str:
    """What an approval of ``node_id`` becomes when nobody decides: what the run's plan says."""
    from sparkwing.engine.gatewait import EXPIRY_RESOLUTION

    plan = call.backend.state.get_plan(call.path["run_id"]) or {}
    for job in plan.get("jobs", []):
        if isinstance(job, dict) and job.get("id") == node_id:
            approval = job.get("approval") or {}
            return EXPIRY_RESOLUTION.get(str(approval.get("on_expiry") or "fail"), "expired")
    return "expired"


def gate_expire(call: Call) -> Any:
    p, b = call.path, call.body
    check_writer(call, p["run_id"])
    gate = require_gates(call.backend.state).get(p["run_id"], p["node_id"], p["kind"])
    if gate is None:
        raise NotFoundError(f"no {p['kind']} gate at {p['node_id']}")
    if gate.kind != "approval" or gate.expires_at is None or gate.status != "pending":
        raise PreconditionFailedError(f"the {gate.kind} gate at {gate.node_id} has no deadline")
    if now_iso() < gate.expires_at:
        raise PreconditionFailedError(
            f"the approval at {gate.node_id} is open until {gate.expires_at}"
        )
    status = _expiry_status(call, gate.node_id)
    if b["status"] != status:
        raise PreconditionFailedError(
            f"the plan of {gate.run_id} says an expired approval of {gate.node_id} is {status}"
        )
    resolved = require_gates(call.backend.state).resolve(
        p["run_id"], p["node_id"], p["kind"], status, TIMED_OUT_BY, b.get("comment")
    )
    return resolved.to_dict()


def gate_get(call: Call) -> Any:
    p = call.path
    gate = require_gates(call.backend.state).get(p["run_id"], p["node_id"], p["kind"])
    if gate is None:
        return error_response(404, "NotFoundError", f"no {p['kind']} gate at {p['node_id']}")
    return gate.to_dict()


def gate_list(call: Call) -> Any:
    q = call.query
    gates = require_gates(call.backend.state).list(
        run_id=q.get("run_id"), kind=q.get("kind"), pending_only=q.get("pending_only", True)
    )
    return {"gates": [g.to_dict() for g in gates]}


def _run_query(value: str) -> object:
    return check_segment(value, "run id")


GATE_PATH = "/v1/gates/{run_id}/{node_id}/{kind}"
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/v1/state/capabilities",
        "state_capabilities",
        "Optional state capabilities of the controller's store.",
        READ,
        state_capabilities,
        Reply(200, "Capabilities.", s.STATE_CAPABILITIES),
    ),
    Endpoint(
        "POST",
        "/v1/queue",
        "queue_submit",
        "Submit a run for a worker to start (409 if the id exists).",
        WRITE,
        submit,
        Reply(201, "Queued.", s.obj({"run_id": s.STR}, ("run_id",))),
        body=s.SUBMIT,
        errors=(409, 501),
    ),
    Endpoint(
        "POST",
        "/v1/queue/claim",
        "queue_claim",
        "Take the oldest queued run (or one whose lease expired); claim is null if none.",
        WRITE,
        claim,
        Reply(200, "The claim, or null.", s.CLAIMED),
        body=s.CLAIM_REQUEST,
        errors=(501,),
    ),
    Endpoint(
        "POST",
        "/v1/queue/{run_id}/renew",
        "queue_renew",
        "Extend a worker's lease on a run.",
        WRITE,
        renew,
        Reply(200, "Whether the worker still holds it.", s.OK),
        params=(RUN_ID,),
        body=s.CLAIM_REQUEST,
        errors=(501,),
    ),
    Endpoint(
        "POST",
        "/v1/queue/{run_id}/release",
        "queue_release",
        "A worker is done with a run, or puts it back in the queue (requeue).",
        WRITE,
        release,
        Reply(200, "Whether the worker held it.", s.OK),
        params=(RUN_ID,),
        body=s.RELEASE,
        errors=(501,),
    ),
    Endpoint(
        "POST",
        "/v1/queue/{run_id}/cancel",
        "queue_cancel",
        "Cancel a run that still waits in the queue (no worker holds it).",
        WRITE,
        cancel_queued,
        Reply(200, "Whether the run was still queued (and is now cancelled).", s.OK),
        params=(RUN_ID,),
        body=s.CANCEL_QUEUED,
        errors=(501,),
    ),
    Endpoint(
        "POST",
        "/v1/gates",
        "gate_open",
        "Open the pending gate (approval or pause) of a run's job; it is always opened "
        "pending (a resolution in the body is ignored).",
        WRITE,
        gate_open,
        Reply(200, "The gate.", s.GATE),
        body=s.GATE,
        errors=(501,),
    ),
    Endpoint(
        "POST",
        GATE_PATH + "/resolve",
        "gate_resolve",
        "Resolve a pending gate (approve, deny, resume, abort), recorded under the calling "
        "token's name; the first resolution wins (409 for later ones).",
        APPROVE,
        gate_resolve,
        Reply(200, "The resolved gate.", s.GATE),
        params=(RUN_ID, NODE_ID, KIND),
        body=s.GATE_RESOLVE,
        errors=(404, 409, 501),
    ),
    Endpoint(
        "POST",
        GATE_PATH + "/expire",
        "gate_expire",
        "Apply the expiry the run's plan names to an approval whose deadline has passed "
        "(the runner's timeout; 409 before the deadline or for another resolution).",
        WRITE,
        gate_expire,
        Reply(200, "The resolved gate.", s.GATE),
        params=(RUN_ID, NODE_ID, KIND),
        body=s.GATE_EXPIRE,
        errors=(404, 409, 501),
    ),
    Endpoint(
        "GET",
        GATE_PATH,
        "gate_get",
        "One gate.",
        READ,
        gate_get,
        Reply(200, "The gate.", s.GATE),
        params=(RUN_ID, NODE_ID, KIND),
        errors=(404, 501),
    ),
    Endpoint(
        "GET",
        "/v1/gates",
        "gate_list",
        "Gates, oldest first (pending ones unless pending_only=false).",
        READ,
        gate_list,
        Reply(200, "The gates.", s.GATES),
        params=(
            Param("run_id", "query", s.STR, "Only this run's gates.", check=_run_query),
            Param("kind", "query", {"type": "string", "enum": list(GATE_KINDS)}, "Only this kind."),
            Param("pending_only", "query", s.BOOL, "Only pending gates (default true)."),
        ),
        errors=(501,),
    ),
)
