"""A run page's data: its record, jobs (from the plan snapshot and the node records), the
DAG and timeline geometry, outputs, artifacts, annotations and the gates it waits at."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sparkwing.dashboard.graph import Dag, Timeline, layout, timeline
from sparkwing.dashboard.timing import duration, shown
from sparkwing.status import FINAL_RUN_STATUSES, WAITING_NODE_STATUSES

if TYPE_CHECKING:
    from sparkwing.dashboard.source import Source
    from sparkwing.surfaces.state.base import Gate, NodeRecord, RunRecord


@dataclass(frozen=True)
class Artifact:
    path: str
    size: int


@dataclass
class JobView:
    id: str
    status: str
    attempt: int
    needs: list[str]
    started: str
    finished: str
    duration: str
    reason: str
    output: str | None  # JSON text
    annotations: list[str]
    runner: str
    artifacts_digest: str | None
    description: str = ""


@dataclass
class RunView:
    run: RunRecord
    jobs: list[JobView]
    dag: Dag
    timeline: Timeline
    gates: list[Gate]
    live: bool
    started: str
    finished: str
    duration: str
    source: str
    surfaces: list[tuple[str, str]]
    args: list[tuple[str, str]] = field(default_factory=list)
    retryable: bool = False  # submitted through the queue, whose spec a retry reuses


def _retryable(source: Source, run_id: str) -> bool:
    from sparkwing.errors import NotSupportedError

    queue = source.state.queue
    if queue is None:
        return False
    try:
        return queue.spec_of(run_id) is not None
    except NotSupportedError:
        return False


def _source_text(run: RunRecord) -> str:
    from sparkwing.surfaces.spec import public_url

    src = run.source if isinstance(run.source, dict) else {}
    git = run.git if isinstance(run.git, dict) else {}
    if src.get("kind") == "git":
        url = public_url(str(src.get("url") or "")) or "git"
        return f"{url} {src.get('ref') or ''} @ {str(src.get('sha') or '')[:12]}".strip()
    if src.get("kind") == "snapshot":
        return f"snapshot {src.get('key') or ''}"
    if git.get("sha"):
        branch = f" on {git['branch']}" if git.get("branch") else ""
        dirty = " (uncommitted changes)" if git.get("dirty") else ""
        return f"local checkout at {str(git['sha'])[:12]}{branch}{dirty}"
    return "local checkout"


def _surfaces(run: RunRecord, source: Source) -> list[tuple[str, str]]:
    from sparkwing.surfaces.spec import SurfaceSpec

    out: list[tuple[str, str]] = []
    recorded = run.surfaces if isinstance(run.surfaces, dict) else {}
    for name in ("state", "cache", "logs", "secrets"):
        spec = recorded.get(name)
        if isinstance(spec, dict) and spec.get("type") == "controller" and name in source.where:
            # Sent through the controller serving this page: where it keeps them.
            out.append((name, f"controller: {source.where[name]}"))
        elif isinstance(spec, dict) and spec.get("type"):
            # describe() never shows a token or DSN.
            out.append((name, SurfaceSpec.from_record(spec).describe()))
        elif name in source.where:
            out.append((name, source.where[name]))
    return out


def plan_jobs(plan: dict[str, Any] | None, nodes: list[NodeRecord]) -> list[dict[str, Any]]:
    """The plan snapshot's jobs, then any node the plan does not name (an older record)."""
    jobs = [j for j in (plan or {}).get("jobs", []) if isinstance(j, dict) and j.get("id")]
    named = {str(j["id"]) for j in jobs}
    jobs += [{"id": n.node_id, "needs": n.needs} for n in nodes if n.node_id not in named]
    return jobs


def run_data(source: Source, run_id: str) -> RunView | None:
    """Everything the run page shows, or None when there is no such run."""
    state = source.state
    run = state.get_run(run_id)
    if run is None:
        return None
    nodes = {n.node_id: n for n in state.list_nodes(run_id)}
    jobs_plan = plan_jobs(state.get_plan(run_id), list(nodes.values()))
    runner = f"{run.host or '?'}" + (f" (pid {run.pid})" if run.pid else "")
    jobs = []
    for spec in jobs_plan:
        job_id = str(spec["id"])
        node = nodes.get(job_id)
        needs = [str(n) for n in spec.get("needs") or []]
        if node is None:
            jobs.append(JobView(job_id, "pending", 0, needs, "-", "-", "-", "", None, [], "", None))
            continue
        extra = node.extra if isinstance(node.extra, dict) else {}
        notes = extra.get("annotations") or []
        jobs.append(
            JobView(
                id=job_id,
                status=node.status,
                attempt=node.attempt,
                needs=needs,
                started=shown(node.started_at),
                finished=shown(node.finished_at),
                duration=duration(node.started_at, node.finished_at) if node.started_at else "-",
                reason=node.why(),
                output=None
                if node.output is None
                else json.dumps(node.output, indent=2, default=str, ensure_ascii=False),
                annotations=[str(n) for n in notes] if isinstance(notes, list) else [],
                runner=runner if node.started_at else "",
                artifacts_digest=node.artifacts,
                description=str(spec.get("description") or ""),
            )
        )
    status = {j.id: j.status for j in jobs}
    dag = layout([j.id for j in jobs], {j.id: j.needs for j in jobs}, status)
    bars = timeline([(n.node_id, n.status, n.started_at, n.finished_at) for n in nodes.values()])
    gates = []
    if state.gates is not None and any(j.status in WAITING_NODE_STATUSES for j in jobs):
        gates = state.gates.list(run_id=run_id, pending_only=True)
    started = run.started_at or run.created_at or None
    return RunView(
        run=run,
        jobs=jobs,
        dag=dag,
        timeline=bars,
        gates=gates,
        live=run.status not in FINAL_RUN_STATUSES,
        started=shown(started),
        finished=shown(run.finished_at),
        duration=duration(started, run.finished_at) if run.started_at else "-",
        source=_source_text(run),
        surfaces=_surfaces(run, source),
        args=[(k, json.dumps(v, default=str)) for k, v in (run.args or {}).items()],
        retryable=run.status in FINAL_RUN_STATUSES and _retryable(source, run_id),
    )


def artifacts_of(source: Source, run: RunRecord, digest: str | None) -> list[Artifact]:
    """The files a job's outputs() uploaded (its manifest in the run's cache)."""
    from sparkwing.surfaces.cache.content import load_manifest

    if not digest or source.cache_of is None:
        return []
    entries = load_manifest(source.cache_of(run), digest) or []
    return [Artifact(e.path, e.size) for e in entries]
