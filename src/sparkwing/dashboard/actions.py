"""What the dashboard's buttons do: resolve a gate, cancel a run, retry it through the queue.
Each checks the scope the API asks for the same thing and records the logged-in name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparkwing.errors import NotFoundError, SparkwingError, UsageError
from sparkwing.surfaces.state.base import GATE_RESOLUTIONS, require_gates, require_queue

if TYPE_CHECKING:
    from sparkwing.dashboard.sessions import Identity
    from sparkwing.dashboard.source import Source
    from sparkwing.surfaces.state.base import RunRecord

APPROVE = "runs.approve"  # resolving approvals and pauses, as the API's gate_resolve
WRITE = "runs.write"  # cancelling and submitting runs, as the API's queue routes
MAX_COMMENT = 2000


class Forbidden(SparkwingError):
    """The logged-in token lacks what an action needs (answered 403)."""


def require(identity: Identity, scope: str, what: str) -> None:
    if not identity.can(scope):
        raise Forbidden(f"{identity.name} may not {what}: it needs the {scope} scope")


def _run(source: Source, run_id: str) -> RunRecord:
    run = source.state.get_run(run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id}")
    return run


def _writer(source: Source, identity: Identity, run_id: str, what: str) -> None:
    require(identity, WRITE, what)
    if not source.may_write(identity.name, identity.scopes, run_id):
        raise Forbidden(
            f"{identity.name} did not create or claim run {run_id}: only its own tokens "
            "(or an admin token) may change it"
        )


def resolve_gate(
    source: Source,
    identity: Identity,
    run_id: str,
    node_id: str,
    kind: str,
    status: str,
    comment: str | None,
) -> str:
    require(identity, APPROVE, "resolve approvals or pauses")
    if status not in GATE_RESOLUTIONS.get(kind, ()) or status == "expired":
        raise UsageError(f"a {kind} cannot be resolved as {status!r} here")
    text = (comment or "").strip()[:MAX_COMMENT] or None
    gate = require_gates(source.state).resolve(run_id, node_id, kind, status, identity.name, text)
    return f"{kind} {gate.node_id} of {run_id}: {gate.status} by {gate.resolved_by}"


def cancel(source: Source, identity: Identity, run_id: str) -> str:
    from sparkwing.engine.cancel import cancel_run

    _writer(source, identity, run_id, "cancel runs")
    run = _run(source, run_id)
    where = source.where.get("state") or source.state.describe()
    final = cancel_run(source.state, run, who=identity.name, where=where)
    return f"run {run_id} {final.status}" + (f": {final.reason}" if final.reason else "")


def retry(source: Source, identity: Identity, run_id: str) -> str:
    """Queue a new run of ``run_id``'s pipeline with the spec it was submitted with (for
    any worker of the queue); a run started from a terminal has none to reuse."""
    from sparkwing.engine.clock import now_iso
    from sparkwing.ids import new_run_id
    from sparkwing.surfaces.state.base import RunRecord

    require(identity, WRITE, "retry runs")
    run = _run(source, run_id)
    queue = require_queue(source.state)
    spec = queue.spec_of(run_id)
    if spec is None:
        raise UsageError(
            f"run {run_id} was started from a terminal, not the queue: retry it with "
            f"`sparkwing runs retry {run_id}` in its project"
        )
    new = RunRecord(
        run_id=new_run_id(),
        pipeline=run.pipeline,
        status="queued",
        created_at=now_iso(),
        trigger="retry",
        profile=run.profile,
        profile_source=run.profile_source,
        surfaces={k: v for k, v in (run.surfaces or {}).items() if k == "state"},
        extra={"submitted_by": identity.name, "retry_of": run_id},
    )
    queue.submit(new, spec)
    if source.record_created is not None:
        source.record_created(new.run_id, identity.name)
    return f"queued {new.run_id}, a retry of {run_id}"
