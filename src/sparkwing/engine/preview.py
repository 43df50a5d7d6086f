"""``--sw-dry-run``: the plan a run would follow, as data: its levels (what can run side by
side), what each job would do (run, reuse an earlier outcome, handle a failure, clean up),
which memoize keys would hit and what each job would consume. Nothing runs a job and
nothing is recorded; only memoize key functions (user code the engine runs itself) are
called."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sparkwing import _log
from sparkwing.engine import memo as memo_mod
from sparkwing.engine.selection import Selection
from sparkwing.sdk.context import Context, RunContext
from sparkwing.sdk.plan import Job, Plan
from sparkwing.sdk.runtime import Runtime, running
from sparkwing.surfaces.cache.base import Cache

log = _log.get("sparkwing.engine")


class _Discard:
    """A sink for key functions run by a preview: their log lines are not a run's."""

    def log(self, stream: str, msg: str) -> None:
        log.debug("dry run: %s: %s", stream, msg)

    def mask(self, values: list[str]) -> None:
        return None

    def annotate(self, text: str) -> None:
        return None

    def mask_text(self, text: str) -> str:
        return text


def levels(plan: Plan, order: list[str]) -> dict[str, int]:
    """Each job's level, from 0: one more than its deepest dependency's; a failure handler
    one past its job; the finally jobs after everything."""
    level: dict[str, int] = {}
    for job_id in order:
        job = plan.jobs[job_id]
        if job.role == "finally":
            continue
        deps = [level[d] for d in job.deps if d in level]
        level[job_id] = 1 + max(deps) if deps else 0
    last = 1 + max(level.values(), default=-1)
    for job_id in order:
        if plan.jobs[job_id].role == "finally":
            level[job_id] = last
    return level


def preview(
    plan: Plan,
    selection: Selection,
    *,
    args: Any,
    rc: RunContext,
    cache: Cache,
    open_secrets: Callable[[], Any],
) -> dict[str, Any]:
    """The dry run's document (plain data, as ``-o json`` prints it)."""
    order = selection.order
    level = levels(plan, order)
    known = {j: r.output for j, r in selection.reuse.items()}
    jobs = []
    for job_id in order:
        job = plan.jobs[job_id]
        earlier = selection.reuse.get(job_id)
        entry: dict[str, Any] = {
            "id": job_id,
            "role": job.role,
            "level": level[job_id],
            "needs": list(job.deps),
            "action": _action(job, earlier is not None),
            "does": _target(job),
        }
        if job.description:
            entry["description"] = job.description
        if earlier is not None:
            entry["reused_from"] = earlier.run_id
            entry["reused_status"] = earlier.status
        else:
            entry["memo"] = _memo(plan, job, args, rc, known, cache, open_secrets)
            entry["consumes"] = [_consumed(dep, selection) for dep in job.consumed]
            entry["outputs"] = list(job.output_globs)
            if job.approval is not None:
                entry["approval"] = job.approval.message or f"approve {job_id}?"
        jobs.append(entry)
    by_level: list[list[str]] = [[] for _ in range(1 + max(level.values(), default=-1))]
    for job_id in order:
        by_level[level[job_id]].append(job_id)
    return {
        "pipeline": plan.pipeline,
        "dry_run": True,
        "selection": dict(selection.asked),
        "reused_from": selection.source,
        "levels": by_level,
        "jobs": jobs,
        "not_run": [j for j in plan.jobs if j not in set(order)],
    }


def _action(job: Job, reused: bool) -> str:
    if reused:
        return "reuse"
    if job.role == "on_failure":
        return f"run if {job.handles} fails"
    if job.role == "finally":
        return "run last, whatever happens"
    return "run"


def _target(job: Job) -> str:
    fn = job.fn
    if isinstance(fn, str):
        return f"$ {fn}"
    if fn is None:
        return "approval" if job.approval is not None else "nothing (a no-op job)"
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}()"


def _consumed(dep: str, selection: Selection) -> dict[str, Any]:
    earlier = selection.reuse.get(dep)
    if earlier is not None:
        return {"job": dep, "from": earlier.run_id, "artifacts": earlier.artifacts}
    return {"job": dep, "from": "this run", "artifacts": None}


def _memo(
    plan: Plan,
    job: Job,
    args: Any,
    rc: RunContext,
    known: dict[str, Any],
    cache: Cache,
    open_secrets: Callable[[], Any],
) -> dict[str, Any] | None:
    """Whether the job's memoize key would hit: the key function is called with the
    outputs known before the run (reused ones); one that needs an output this run would
    produce cannot be told yet."""
    if job.memo_fn is None:
        return None
    sink = _Discard()
    ctx = Context(run=rc, job=job.id, args=args, outputs=dict(known), sink=sink)
    try:
        with running(Runtime(sink, open_secrets)):
            user_key = job.memo_fn(ctx)
    except Exception as exc:  # user code: its failure is the preview's answer, not a crash
        return {"key": None, "hit": None, "error": f"{type(exc).__name__}: {exc}"}
    key = memo_mod.full_key(plan.pipeline, job.id, user_key)
    return {"key": key, "hit": memo_mod.load(cache, key) is not None}
