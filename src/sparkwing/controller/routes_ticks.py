"""API operations for schedule ticks: claim a tick together with the run it queues, and
read a schedule's latest tick (the controller's state store answers 501 without them)."""

from __future__ import annotations

from typing import Any

from sparkwing.controller import schemas as s
from sparkwing.controller.authority import record
from sparkwing.controller.endpoint import Call, Endpoint, Param, Reply
from sparkwing.controller.routes_state import READ, WRITE
from sparkwing.surfaces.state.base import RunRecord, require_ticks

KEY = {"type": "string", "minLength": 1, "maxLength": 512}
FIRE = s.obj(
    {"schedule": KEY, "tick": KEY, "run": s.RUN, "spec": s.OBJ},
    ("schedule", "tick", "run", "spec"),
)
LAST = s.obj({"tick": s.OPT_STR}, ("tick",))


def fire(call: Call) -> Any:
    run = RunRecord.from_dict(call.body["run"])
    fired = require_ticks(call.backend.state).fire(
        call.body["schedule"], call.body["tick"], run, call.body["spec"]
    )
    if fired:
        record(call, run.run_id, "created")
    return {"ok": fired}


def last(call: Call) -> Any:
    return {"tick": require_ticks(call.backend.state).last(call.query["schedule"])}


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/v1/ticks/fire",
        "ticks_fire",
        "Claim a schedule's tick and queue its run in one step; ok is false (nothing "
        "queued) when another caller's run holds the tick.",
        WRITE,
        fire,
        Reply(200, "Whether this call's run holds the tick.", s.OK),
        body=FIRE,
        errors=(409, 501),
    ),
    Endpoint(
        "GET",
        "/v1/ticks/last",
        "ticks_last",
        "The latest tick claimed for a schedule (null: never).",
        READ,
        last,
        Reply(200, "The tick.", LAST),
        params=(Param("schedule", "query", KEY, "The schedule key.", required=True),),
        errors=(501,),
    ),
)
