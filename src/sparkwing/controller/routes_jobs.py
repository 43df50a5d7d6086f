"""API operations of the job queue (jobs dispatched to workers): enqueue, claim, renew,
complete, cancel, and a run's entries. They pass through to the controller's state store,
which refuses them (501) when it has no job queue.

A runner's token enqueues and cancels its own run's jobs; a worker's token that claims a
job may then write that run (its logs, its job's completion), as a run worker's may."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sparkwing.controller import schemas as s
from sparkwing.controller.authority import check_writer, record
from sparkwing.controller.endpoint import Call, Endpoint, Reply, json_response
from sparkwing.controller.routes_coord import NODE_ID
from sparkwing.controller.routes_state import READ, RUN_ID, WRITE
from sparkwing.surfaces.state.jobqueue import JobRef, JobResult, QueuedJob, require_jobs

LABELS = s.array(s.SHORT, 64)
ATTEMPT: s.Schema = {"type": "integer", "minimum": 1, "maximum": s.INT64_MAX}
REF = s.obj({"run_id": s.SHORT, "node_id": s.SHORT, "attempt": ATTEMPT}, ("run_id", "node_id"))
ENQUEUE = s.obj(
    {"run_id": s.SHORT, "node_id": s.SHORT, "attempt": ATTEMPT, "labels": LABELS, "spec": s.OBJ},
    ("run_id", "node_id", "attempt", "labels", "spec"),
)
CLAIM_REQUEST = s.obj(
    {"worker": s.SHORT, "labels": LABELS, "lease_seconds": s.LEASE}, ("worker", "labels")
)
CLAIM = s.obj(
    {
        "ref": REF,
        "labels": LABELS,
        "spec": s.OBJ,
        "worker": s.SHORT,
        "claim": s.INT64,
        "expires_at": {"type": "number"},
        "previous_worker": s.OPT_SHORT,
    },
    ("ref", "labels", "spec", "worker", "claim", "expires_at"),
)
CLAIMED = s.obj({"claim": {"anyOf": [CLAIM, {"type": "null"}]}}, ("claim",))
RENEW = s.obj(
    {"attempt": ATTEMPT, "worker": s.SHORT, "claim": s.INT64, "lease_seconds": s.LEASE},
    ("attempt", "worker", "claim"),
)
RENEWAL = s.obj({"renewal": {"type": "string", "enum": ["held", "cancel", "lost"]}}, ("renewal",))
RESULT = s.obj(
    {
        "status": {"type": "string", "enum": ["success", "failed", "cancelled"]},
        "output": s.ANY,
        "artifacts": s.OPT_SHORT,
        "error": s.OPT_STR,
        "started_at": s.OPT_SHORT,
        "finished_at": s.OPT_SHORT,
        "extra": s.OBJ,
    },
    ("status",),
)
COMPLETE = s.obj(
    {"attempt": ATTEMPT, "worker": s.SHORT, "claim": s.INT64, "result": RESULT},
    ("attempt", "worker", "claim"),
)
CANCEL = s.obj({"attempt": ATTEMPT, "reason": s.STR}, ("attempt", "reason"))
ENTRY = s.obj(
    {
        "ref": REF,
        "state": s.SHORT,
        "labels": LABELS,
        "worker": s.OPT_SHORT,
        "claim": s.INT64,
        "cancel": s.OPT_STR,
        "result": {"anyOf": [s.OBJ, {"type": "null"}]},
        "enqueued_at": s.SHORT,
    },
    ("ref", "state", "labels"),
)
ENTRIES = s.obj({"jobs": s.array(ENTRY)}, ("jobs",))


JOB_PATH = "/v1/jobs/{run_id}/{node_id}"


def _ref(call: Call) -> JobRef:
    """The attempt a call is about: run and node in the path, attempt in the body."""
    p = call.path
    check_writer(call, p["run_id"])
    return JobRef(p["run_id"], p["node_id"], int(call.body["attempt"]))


def enqueue(call: Call) -> Any:
    b = call.body
    check_writer(call, b["run_id"])
    ref = JobRef(b["run_id"], b["node_id"], int(b["attempt"]))
    require_jobs(call.backend.state).enqueue(QueuedJob(ref, list(b["labels"]), b["spec"]))
    return json_response({"ok": True}, 201)


def claim(call: Call) -> Any:
    b = call.body
    got = require_jobs(call.backend.state).claim(
        b["worker"], list(b["labels"]), float(b.get("lease_seconds", 60))
    )
    if got is None:
        return {"claim": None}
    # The worker now writes this run (its job's logs and completion).
    record(call, got.ref.run_id, "claimed")
    return {"claim": asdict(got)}


def renew(call: Call) -> Any:
    b = call.body
    renewal = require_jobs(call.backend.state).renew(
        _ref(call), b["worker"], int(b["claim"]), float(b.get("lease_seconds", 60))
    )
    return {"renewal": renewal}


def complete(call: Call) -> Any:
    b = call.body
    result = JobResult(**b.get("result") or {"status": "failed"})
    ok = require_jobs(call.backend.state).complete(_ref(call), b["worker"], int(b["claim"]), result)
    return {"ok": ok}


def cancel(call: Call) -> Any:
    require_jobs(call.backend.state).cancel(_ref(call), str(call.body["reason"]))
    return {"ok": True}


def entries(call: Call) -> Any:
    found = require_jobs(call.backend.state).entries(call.path["run_id"])
    return {"jobs": [e.to_dict() for e in found]}


def jobs_capability(call: Call) -> Any:
    return {"ok": call.backend.state.jobs is not None}


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/v1/jobs/capability",
        "jobs_capability",
        "Whether the controller's store has a job queue.",
        READ,
        jobs_capability,
        Reply(200, "Whether jobs can be dispatched.", s.OK),
    ),
    Endpoint(
        "POST",
        "/v1/jobs",
        "jobs_enqueue",
        "Queue one attempt of a run's job for a worker with its labels (409 if queued).",
        WRITE,
        enqueue,
        Reply(201, "Queued.", s.OK),
        body=ENQUEUE,
        errors=(409, 501),
    ),
    Endpoint(
        "POST",
        "/v1/jobs/claim",
        "jobs_claim",
        "Take the oldest job the worker's labels cover (or one whose lease lapsed).",
        WRITE,
        claim,
        Reply(200, "The claim, or null.", CLAIMED),
        body=CLAIM_REQUEST,
        errors=(501,),
    ),
    Endpoint(
        "GET",
        "/v1/jobs/{run_id}",
        "jobs_entries",
        "Every job attempt queued for a run, oldest first.",
        READ,
        entries,
        Reply(200, "The entries.", ENTRIES),
        params=(RUN_ID,),
        errors=(501,),
    ),
    Endpoint(
        "POST",
        JOB_PATH + "/renew",
        "jobs_renew",
        "Extend a worker's lease on a job; says whether it still holds it or is asked to stop.",
        WRITE,
        renew,
        Reply(200, "held, cancel or lost.", RENEWAL),
        params=(RUN_ID, NODE_ID),
        body=RENEW,
        errors=(501,),
    ),
    Endpoint(
        "POST",
        JOB_PATH + "/complete",
        "jobs_complete",
        "Record how a job attempt ended (refused, ok false, unless the claim still holds it).",
        WRITE,
        complete,
        Reply(200, "Whether the result was recorded.", s.OK),
        params=(RUN_ID, NODE_ID),
        body=COMPLETE,
        errors=(501,),
    ),
    Endpoint(
        "POST",
        JOB_PATH + "/cancel",
        "jobs_cancel",
        "Ask for a job attempt to stop (a queued one ends cancelled at once).",
        WRITE,
        cancel,
        Reply(200, "Asked.", s.OK),
        params=(RUN_ID, NODE_ID),
        body=CANCEL,
        errors=(501,),
    ),
)
