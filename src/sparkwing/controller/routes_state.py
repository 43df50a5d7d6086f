"""API operations of the state surface: runs, plan snapshots, nodes, events, memo leases.

A run is written only by the tokens that created or claimed it (:mod:`.owners`), and its
status, plan and jobs only until it has finished."""

from __future__ import annotations

from dataclasses import asdict
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
from sparkwing.controller.retrylink import is_retry_link
from sparkwing.ids import check_key, check_segment
from sparkwing.surfaces.state.base import NewEvent, NodeRecord, RunRecord

READ, WRITE = "runs.read", "runs.write"


def _run_id(value: str) -> object:
    return check_segment(value, "run id")


RUN_ID = Param("run_id", "path", s.STR, "Run id.", required=True, check=_run_id)
NO_CONTENT = Reply(204, "Done.")
NOT_FOUND = (404,)


def create_run(call: Call) -> Any:
    run = RunRecord.from_dict(call.body)
    check_segment(run.run_id, "run id")
    call.backend.state.create_run(run)
    record(call, run.run_id, "created")
    return json_response({"run_id": run.run_id}, 201)


def list_runs(call: Call) -> Any:
    q = call.query
    page = call.backend.state.list_runs(
        pipeline=q.get("pipeline"),
        status=q.get("status"),
        since=q.get("since"),
        limit=q.get("limit", 50),
        cursor=q.get("cursor"),
    )
    return {"runs": [r.to_dict() for r in page.runs], "next_cursor": page.next_cursor}


def get_run(call: Call) -> Any:
    run = call.backend.state.get_run(call.path["run_id"])
    if run is None:
        return error_response(404, "NotFoundError", f"run {call.path['run_id']} not found")
    return run.to_dict()


def update_run(call: Call) -> None:
    fields = call.body["fields"]
    if not is_retry_link(call, call.path["run_id"], fields):
        check_run_write(call, call.path["run_id"], requeue=fields.get("status") == "queued")
    call.backend.state.update_run(call.path["run_id"], **fields)


def heartbeat(call: Call) -> None:
    check_writer(call, call.path["run_id"])
    call.backend.state.heartbeat(call.path["run_id"], call.body["at"])


def save_plan(call: Call) -> None:
    check_run_write(call, call.path["run_id"])
    call.backend.state.save_plan(call.path["run_id"], call.body)


def get_plan(call: Call) -> Any:
    plan = call.backend.state.get_plan(call.path["run_id"])
    if plan is None:
        return error_response(404, "NotFoundError", f"run {call.path['run_id']} has no plan")
    return plan


def upsert_nodes(call: Call) -> None:
    nodes = [NodeRecord.from_dict(n) for n in call.body["nodes"]]
    # Every id is checked before the store sees any node, so a bad one writes nothing.
    for node in nodes:
        check_segment(node.run_id, "run id")
        check_segment(node.node_id, "node id")
    for run_id in sorted({node.run_id for node in nodes}):
        check_run_write(call, run_id)
    call.backend.state.upsert_nodes(nodes)


def list_nodes(call: Call) -> Any:
    return {"nodes": [n.to_dict() for n in call.backend.state.list_nodes(call.path["run_id"])]}


def append_events(call: Call) -> Any:
    check_writer(call, call.path["run_id"])
    events = [NewEvent(**e) for e in call.body["events"]]
    return {"seqs": call.backend.state.append_events(call.path["run_id"], events)}


def list_events(call: Call) -> Any:
    events = call.backend.state.list_events(
        call.path["run_id"], call.query.get("after_seq", 0), call.query.get("limit")
    )
    return {"events": [e.to_dict() for e in events]}


def _memo_key(call: Call) -> str:
    return check_key(call.body["key"], "memo key")


def memo_acquire(call: Call) -> Any:
    claim = call.backend.state.memo.acquire(
        _memo_key(call), call.body["holder"], float(call.body.get("lease_seconds", 60))
    )
    return asdict(claim)


def memo_renew(call: Call) -> Any:
    lease = float(call.body.get("lease_seconds", 60))
    return {"ok": call.backend.state.memo.renew(_memo_key(call), call.body["holder"], lease)}


def memo_complete(call: Call) -> None:
    call.backend.state.memo.complete(_memo_key(call), call.body["holder"], call.body["result"])


def memo_release(call: Call) -> None:
    call.backend.state.memo.release(_memo_key(call), call.body["holder"])


def memo_forget(call: Call) -> None:
    call.backend.state.memo.forget(_memo_key(call))


def _query(name: str, schema: s.Schema, description: str) -> Param:
    return Param(name, "query", schema, description)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/v1/runs",
        "create_run",
        "Create a run record (409 if the id exists); the calling token may then write it.",
        WRITE,
        create_run,
        Reply(201, "Created.", s.obj({"run_id": s.STR}, ("run_id",))),
        body=s.RUN,
        errors=(409,),
    ),
    Endpoint(
        "GET",
        "/v1/runs",
        "list_runs",
        "Runs newest first, filtered; page with next_cursor.",
        READ,
        list_runs,
        Reply(200, "A page of runs.", s.RUN_PAGE),
        params=(
            _query("pipeline", s.STR, "Only runs of this pipeline."),
            _query("status", s.STR, "Only runs with this status."),
            _query("since", s.STR, "Only runs created at or after this ISO time."),
            _query(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 1000},
                "Page size (default 50).",
            ),
            _query("cursor", s.STR, "next_cursor of the previous page."),
        ),
    ),
    Endpoint(
        "GET",
        "/v1/runs/{run_id}",
        "get_run",
        "One run record.",
        READ,
        get_run,
        Reply(200, "The run.", s.RUN),
        params=(RUN_ID,),
        errors=NOT_FOUND,
    ),
    Endpoint(
        "PATCH",
        "/v1/runs/{run_id}",
        "update_run",
        "Set some fields of a run (one the token created or claimed; 409 once it finished).",
        WRITE,
        update_run,
        NO_CONTENT,
        params=(RUN_ID,),
        body=s.RUN_UPDATE,
        errors=(404, 409),
    ),
    Endpoint(
        "POST",
        "/v1/runs/{run_id}/heartbeat",
        "heartbeat",
        "Record that the run's runner is alive.",
        WRITE,
        heartbeat,
        NO_CONTENT,
        params=(RUN_ID,),
        body=s.HEARTBEAT,
        errors=NOT_FOUND,
    ),
    Endpoint(
        "PUT",
        "/v1/runs/{run_id}/plan",
        "save_plan",
        "Store the run's plan snapshot (409 once the run finished).",
        WRITE,
        save_plan,
        NO_CONTENT,
        params=(RUN_ID,),
        body=s.PLAN,
        errors=(409,),
    ),
    Endpoint(
        "GET",
        "/v1/runs/{run_id}/plan",
        "get_plan",
        "The run's plan snapshot.",
        READ,
        get_plan,
        Reply(200, "The plan.", s.PLAN),
        params=(RUN_ID,),
        errors=NOT_FOUND,
    ),
    Endpoint(
        "POST",
        "/v1/nodes",
        "upsert_nodes",
        "Insert or replace node records, in one transaction (409 once their run finished).",
        WRITE,
        upsert_nodes,
        NO_CONTENT,
        body=s.NODES,
        errors=(409,),
    ),
    Endpoint(
        "GET",
        "/v1/runs/{run_id}/nodes",
        "list_nodes",
        "The run's nodes in plan order.",
        READ,
        list_nodes,
        Reply(200, "The nodes.", s.NODES),
        params=(RUN_ID,),
    ),
    Endpoint(
        "POST",
        "/v1/runs/{run_id}/events",
        "append_events",
        "Append events; returns their sequence numbers.",
        WRITE,
        append_events,
        Reply(200, "The assigned seqs.", s.SEQS),
        params=(RUN_ID,),
        body=s.NEW_EVENTS,
    ),
    Endpoint(
        "GET",
        "/v1/runs/{run_id}/events",
        "list_events",
        "Events after a sequence number.",
        READ,
        list_events,
        Reply(200, "The events.", s.EVENTS),
        params=(
            RUN_ID,
            _query("after_seq", {**s.INT64, "minimum": 0}, "Only events after this seq."),
            _query("limit", {"type": "integer", "minimum": 0, "maximum": 100_000}, "At most."),
        ),
    ),
    Endpoint(
        "POST",
        "/v1/memo/acquire",
        "memo_acquire",
        "Try to become the one computing a memo key.",
        WRITE,
        memo_acquire,
        Reply(200, "The claim.", s.MEMO_CLAIM),
        body=s.MEMO_ACQUIRE,
    ),
    Endpoint(
        "POST",
        "/v1/memo/renew",
        "memo_renew",
        "Extend a memo lease.",
        WRITE,
        memo_renew,
        Reply(200, "Whether the holder still holds the key.", s.OK),
        body=s.MEMO_ACQUIRE,
    ),
    Endpoint(
        "POST",
        "/v1/memo/complete",
        "memo_complete",
        "Mark a memo key done with its result.",
        WRITE,
        memo_complete,
        NO_CONTENT,
        body=s.MEMO_COMPLETE,
    ),
    Endpoint(
        "POST",
        "/v1/memo/release",
        "memo_release",
        "Give up a memo key.",
        WRITE,
        memo_release,
        NO_CONTENT,
        body=s.MEMO_HOLDER,
    ),
    Endpoint(
        "POST",
        "/v1/memo/forget",
        "memo_forget",
        "Drop a done memo key.",
        WRITE,
        memo_forget,
        NO_CONTENT,
        body=s.MEMO_KEY,
    ),
)
