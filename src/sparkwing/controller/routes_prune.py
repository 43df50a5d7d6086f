"""API operation for retention: deleting a finished run's history from the controller's
state. It needs ``runs.delete`` (or admin): a runner's ``runs.write`` token writes its own
run, it must never erase history (its own run's included)."""

from __future__ import annotations

from typing import Any

from sparkwing.controller import schemas as s
from sparkwing.controller.endpoint import Call, Endpoint, Reply
from sparkwing.controller.routes_state import RUN_ID

DELETE = "runs.delete"


def delete_run(call: Call) -> Any:
    run_id = call.path["run_id"]
    deleted = call.backend.state.delete_run(run_id)
    # Who wrote the run goes with it: a new run reusing the id starts without owners.
    call.backend.owners.forget(run_id)
    return {"deleted": deleted}


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "DELETE",
        "/v1/runs/{run_id}",
        "runs_delete",
        "Delete a finished run and all its state (plan, jobs, events, gates, queue entry); "
        "409 while the run is not finished. Needs runs.delete (a runner's token has not).",
        DELETE,
        delete_run,
        Reply(200, "Whether a run record was there.", s.DELETED),
        params=(RUN_ID,),
        errors=(409, 501),
    ),
)
