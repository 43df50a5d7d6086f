"""API operations for concurrency groups (enter, poll, leave, members), passed through to the
controller's state store, which refuses them (501) when it cannot coordinate groups.

A token may enter, poll and leave only for runs it created or claimed; it may also clear a
finished run that still holds a group (its own leave was lost), so a group is never stuck."""

from __future__ import annotations

from typing import Any

from sparkwing.conf.model import ON_BUSY
from sparkwing.controller import schemas as s
from sparkwing.controller.authority import check_writer
from sparkwing.controller.endpoint import Call, Endpoint, Param, Reply
from sparkwing.controller.routes_state import READ, WRITE
from sparkwing.ids import check_segment
from sparkwing.status import FINAL_RUN_STATUSES
from sparkwing.surfaces.state.base import require_groups
from sparkwing.surfaces.state.groups import check_group

MEMBER = s.obj(
    {
        "run_id": s.STR,
        "state": s.STR,
        "expires": {"type": "number"},
        "submitted": s.STR,
        "preempted_by": s.OPT_STR,
    },
    ("run_id", "state", "expires"),
)
TURN = s.obj(
    {
        "state": {"type": "string", "enum": ["holding", "waiting", "skipped", "cancelled", "lost"]},
        "holder": s.OPT_STR,
        "position": {"type": "integer", "minimum": 0},
        "by": s.OPT_STR,
    },
    ("state",),
)
ENTER = s.obj(
    {
        "run_id": s.SHORT,
        "on_busy": {"type": "string", "enum": list(ON_BUSY)},
        "lease_seconds": s.LEASE,
        "submitted": s.SHORT,
    },
    ("run_id", "on_busy", "lease_seconds", "submitted"),
)
POLL = s.obj({"run_id": s.SHORT, "lease_seconds": s.LEASE}, ("run_id", "lease_seconds"))
LEAVE = s.obj({"run_id": s.SHORT}, ("run_id",))
MEMBERS = s.obj({"members": s.array(MEMBER)}, ("members",))

GROUP = Param("group", "path", s.STR, "Concurrency group name.", required=True, check=check_group)


def _run_id(call: Call) -> str:
    return check_segment(str(call.body["run_id"]), "run id")


def enter(call: Call) -> Any:
    run_id = _run_id(call)
    check_writer(call, run_id)
    b = call.body
    groups = require_groups(call.backend.state)
    turn = groups.enter(
        call.path["group"], run_id, b["on_busy"], float(b["lease_seconds"]), str(b["submitted"])
    )
    return turn.to_dict()


def poll(call: Call) -> Any:
    run_id = _run_id(call)
    check_writer(call, run_id)
    groups = require_groups(call.backend.state)
    return groups.poll(call.path["group"], run_id, float(call.body["lease_seconds"])).to_dict()


def leave(call: Call) -> Any:
    run_id = _run_id(call)
    run = call.backend.state.get_run(run_id)
    if run is None or run.status not in FINAL_RUN_STATUSES:
        check_writer(call, run_id)
    require_groups(call.backend.state).leave(call.path["group"], run_id)
    return {"ok": True}


def members(call: Call) -> Any:
    found = require_groups(call.backend.state).members(call.path["group"])
    return {"members": [m.to_dict() for m in found]}


PATH = "/v1/groups/{group}"
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        PATH + "/enter",
        "group_enter",
        "Join a concurrency group for a run (what happens when it is busy is on_busy's); "
        "entering again is a poll.",
        WRITE,
        enter,
        Reply(200, "Where the run stands.", TURN),
        params=(GROUP,),
        body=ENTER,
        errors=(501,),
    ),
    Endpoint(
        "POST",
        PATH + "/poll",
        "group_poll",
        "Renew a member's lease and say where it stands (lost when it is not a member).",
        WRITE,
        poll,
        Reply(200, "Where the run stands.", TURN),
        params=(GROUP,),
        body=POLL,
        errors=(501,),
    ),
    Endpoint(
        "POST",
        PATH + "/leave",
        "group_leave",
        "Remove a run from a concurrency group (its own end, or a finished run's place).",
        WRITE,
        leave,
        Reply(200, "Done.", s.OK),
        params=(GROUP,),
        body=LEAVE,
        errors=(501,),
    ),
    Endpoint(
        "GET",
        PATH,
        "group_members",
        "The live members of a concurrency group: its holder first, then waiters in order.",
        READ,
        members,
        Reply(200, "The members.", MEMBERS),
        params=(GROUP,),
        errors=(501,),
    ),
)
