"""API operations for the fleet: workers register and heartbeat through the controller, and
``sparkwing workers list`` reads them back. Passed through to the controller's state store,
which refuses them (501) when it keeps no workers registry."""

from __future__ import annotations

from typing import Any

from sparkwing.controller import schemas as s
from sparkwing.controller.endpoint import Call, Endpoint, Param, Reply
from sparkwing.controller.routes_state import NO_CONTENT, READ, WRITE
from sparkwing.ids import check_segment
from sparkwing.surfaces.state.fleet import WorkerInfo, require_fleet

WORKER = s.obj(
    {
        "name": s.SHORT,
        "host": s.SHORT,
        "labels": s.array(s.SHORT, 256),
        "version": s.SHORT,
        "started_at": s.SHORT,
        "last_seen": s.SHORT,
        "heartbeat": {"type": "number", "minimum": 0, "maximum": 10**9},
        "running": s.array(s.SHORT, 10_000),
        "extra": s.OBJ,
    },
    ("name", "last_seen"),
    extra=True,
)
WORKERS = s.obj({"workers": s.array(WORKER)}, ("workers",))
PRUNE = s.obj({"before": s.SHORT}, ("before",))


def _name(value: str) -> object:
    return check_segment(value, "worker name")


WORKER_NAME = Param("worker", "path", s.STR, "Worker name.", required=True, check=_name)


def heartbeat(call: Call) -> Any:
    worker = WorkerInfo.from_dict(call.body)
    check_segment(worker.name, "worker name")
    require_fleet(call.backend.state).heartbeat(worker)
    return None


def leave(call: Call) -> Any:
    return {"ok": require_fleet(call.backend.state).leave(call.path["worker"])}


def list_workers(call: Call) -> Any:
    return {"workers": [w.to_dict() for w in require_fleet(call.backend.state).list()]}


def prune(call: Call) -> Any:
    return {"removed": require_fleet(call.backend.state).prune(str(call.body["before"]))}


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/v1/workers",
        "worker_heartbeat",
        "Register a worker, or replace its entry with this heartbeat.",
        WRITE,
        heartbeat,
        NO_CONTENT,
        body=WORKER,
        errors=(501,),
    ),
    Endpoint(
        "GET",
        "/v1/workers",
        "worker_list",
        "Every registered worker, by name.",
        READ,
        list_workers,
        Reply(200, "The workers.", WORKERS),
        errors=(501,),
    ),
    Endpoint(
        "DELETE",
        "/v1/workers/{worker}",
        "worker_leave",
        "Remove a worker that stopped.",
        WRITE,
        leave,
        Reply(200, "Whether it was registered.", s.OK),
        params=(WORKER_NAME,),
        errors=(501,),
    ),
    Endpoint(
        "POST",
        "/v1/workers/prune",
        "worker_prune",
        "Forget workers last seen before a time.",
        WRITE,
        prune,
        Reply(200, "How many were forgotten.", s.obj({"removed": s.INT64}, ("removed",))),
        body=PRUNE,
        errors=(501,),
    ),
)
