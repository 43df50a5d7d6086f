"""Which runs a token may write: those it created or claimed (an admin token may write any),
and none once it has finished, so one runner's token cannot rewrite another run's history."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparkwing.controller.httperror import HttpError
from sparkwing.controller.owners import How
from sparkwing.controller.scopes import ADMIN
from sparkwing.errors import PreconditionFailedError
from sparkwing.status import FINAL_RUN_STATUSES

if TYPE_CHECKING:
    from sparkwing.controller.endpoint import Call


def is_admin(call: Call) -> bool:
    return call.token is not None and ADMIN in call.token.scopes


def record(call: Call, run_id: str, how: How) -> None:
    """Remember that the calling token created or claimed ``run_id``."""
    if call.token is not None:
        call.backend.owners.add(run_id, call.token.name, how)


def check_writer(call: Call, run_id: str) -> set[str]:
    """Refuse (403) a token that neither created nor claimed ``run_id``; how it got the run
    (empty for an admin token that did neither, or for a run that does not exist yet)."""
    token = call.token
    if token is None:
        return set()
    owners = call.backend.owners.of(run_id)
    ways = owners.get(token.name, set())
    if ways or ADMIN in token.scopes:
        return ways
    # A run nobody has created (nor claimed) has no history to protect: the store answers
    # for it (not found), as it does for any token. A run written before owners were
    # recorded (or outside the controller) has none either, and is an admin's to change.
    if not owners and call.backend.state.get_run(run_id) is None:
        return ways
    raise HttpError(
        403,
        "Forbidden",
        f"token {token.name!r} did not create or claim run {run_id}: "
        "only the run's own tokens (or an admin token) may write it",
        run=run_id,
    )


def check_open(call: Call, run_id: str, *, requeue: bool = False) -> None:
    """Refuse (409) a write to a finished run, unless the token is an admin. ``requeue``: the
    write only puts the run back to ``queued``, which the token that claimed it may do (a
    worker starting a requeued or abandoned run over)."""
    if is_admin(call):
        return
    run = call.backend.state.get_run(run_id)
    if run is None or run.status not in FINAL_RUN_STATUSES:
        return
    if requeue and "claimed" in check_writer(call, run_id):
        return
    raise PreconditionFailedError(
        f"run {run_id} has finished ({run.status}): its status, plan and jobs can no longer "
        "be changed"
    )


def check_run_write(call: Call, run_id: str, *, requeue: bool = False) -> None:
    """Both checks: the token's own run, and not finished."""
    check_writer(call, run_id)
    check_open(call, run_id, requeue=requeue)
