"""Which jobs of a plan a run executes, and which outcomes it takes from an earlier run:
``--sw-only`` (jobs and what they need), ``--sw-start-at`` (a job and what follows it, the
rest from the latest successful run) and ``runs retry --failed`` (what did not succeed)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sparkwing.errors import UsageError
from sparkwing.sdk.plan import Plan
from sparkwing.status import NodeStatus
from sparkwing.surfaces.state.base import NodeRecord, StateStore

# Outcomes an earlier run's job may be taken over with: it did what it should.
REUSABLE = frozenset({NodeStatus.SUCCESS, NodeStatus.CACHED, NodeStatus.REUSED, NodeStatus.SKIPPED})
# How many of a pipeline's newest successful runs --sw-start-at looks through.
START_AT_SEARCH = 200


@dataclass(frozen=True)
class Selection:
    """The jobs of this run in plan order, the earlier records of those it reuses, the run
    those come from, and what was asked (kept in the run record as ``extra.selection``)."""

    order: list[str]
    reuse: dict[str, NodeRecord] = field(default_factory=dict)
    source: str | None = None
    asked: dict[str, Any] = field(default_factory=dict)


def select(
    plan: Plan,
    order: list[str],
    state: StateStore,
    *,
    only: Iterable[str] = (),
    start_at: str | None = None,
    retry_failed_of: str | None = None,
) -> Selection:
    """The selection a run's flags ask for; a UsageError (one line) for a job the plan does
    not have, or a start without an earlier successful run to take outcomes from."""
    only = list(dict.fromkeys(only))
    if only and start_at:
        raise UsageError("--sw-only and --sw-start-at cannot be used together")
    graph = _Graph(plan, order)
    if only:
        for name in only:
            graph.check(name, "--sw-only")
        return graph.selection(graph.closure(only), asked={"only": only})
    if start_at:
        graph.check(start_at, "--sw-start-at")
        run = graph.descendants(start_at)
        upstream = [j for j in graph.closure(run) if j not in run]
        source, reuse = _latest_with(plan.pipeline, upstream, state, start_at)
        return graph.selection(
            graph.closure(run), reuse, source, {"start_at": start_at, "from": source}
        )
    if retry_failed_of:
        return _retry_failed(graph, state, retry_failed_of)
    return Selection(order)


def _retry_failed(graph: _Graph, state: StateStore, run_id: str) -> Selection:
    """Everything the earlier run ran again, except the jobs that succeeded there (their
    outcomes are reused); the earlier run's own selection is kept."""
    earlier = state.get_run(run_id)
    if earlier is None:
        raise UsageError(f'run "{run_id}" not found in {state.describe()}')
    records = {n.node_id: n for n in state.list_nodes(run_id)}
    jobs = graph.jobs
    if isinstance(earlier.extra.get("selection"), dict):
        jobs = graph.closure([j for j in graph.jobs if j in records])
    reuse = {
        j: records[j]
        for j in jobs
        if j in records and records[j].status in REUSABLE and not records[j].extra.get("role")
    }
    return graph.selection(jobs, reuse, run_id, {"retry_failed_of": run_id})


def _latest_with(
    pipeline: str, upstream: list[str], state: StateStore, start_at: str
) -> tuple[str | None, dict[str, NodeRecord]]:
    """The newest successful run of ``pipeline`` holding a reusable outcome of every job
    in ``upstream``, and those records."""
    if not upstream:
        return None, {}
    cursor: str | None = None
    seen = 0
    while seen < START_AT_SEARCH:
        page = state.list_runs(pipeline=pipeline, status="success", limit=50, cursor=cursor)
        for run in page.runs:
            records = {n.node_id: n for n in state.list_nodes(run.run_id)}
            if all(j in records and records[j].status in REUSABLE for j in upstream):
                return run.run_id, {j: records[j] for j in upstream}
        seen += len(page.runs)
        cursor = page.next_cursor
        if not cursor:
            break
    raise UsageError(
        f'--sw-start-at {start_at}: no successful run of pipeline "{pipeline}" in '
        f"{state.describe()} has the results of {', '.join(upstream)} to start from "
        "(run the whole pipeline once first)"
    )


class _Graph:
    """The plan's jobs (role ``job``) and their edges, for walking up and down."""

    def __init__(self, plan: Plan, order: list[str]) -> None:
        self.plan = plan
        self.order = order
        self.jobs = [j for j in order if plan.jobs[j].role == "job"]
        self.dependants: dict[str, list[str]] = {j: [] for j in self.jobs}
        for j in self.jobs:
            for dep in plan.jobs[j].deps:
                self.dependants[dep].append(j)

    def check(self, name: str, flag: str) -> None:
        if name not in self.dependants:
            raise UsageError(
                f'{flag}: pipeline "{self.plan.pipeline}" has no job "{name}" '
                f"(jobs: {', '.join(self.jobs)})"
            )

    def closure(self, start: Iterable[str]) -> list[str]:
        """``start`` and every job they need, transitively, in plan order."""
        return self._walk(start, lambda j: self.plan.jobs[j].deps)

    def descendants(self, start: str) -> list[str]:
        """``start`` and every job that needs it, transitively, in plan order."""
        return self._walk([start], lambda j: self.dependants[j])

    def _walk(self, start: Iterable[str], step: Any) -> list[str]:
        seen = set(start)
        work = deque(seen)
        while work:
            for nxt in step(work.popleft()):
                if nxt not in seen:
                    seen.add(nxt)
                    work.append(nxt)
        return [j for j in self.jobs if j in seen]

    def selection(
        self,
        jobs: list[str],
        reuse: dict[str, NodeRecord] | None = None,
        source: str | None = None,
        asked: dict[str, Any] | None = None,
    ) -> Selection:
        """``jobs`` with the failure handlers of those that run, and every finally job."""
        reuse = reuse or {}
        chosen = set(jobs)
        order = []
        for j in self.order:
            job = self.plan.jobs[j]
            handled = job.handles
            if j in chosen or job.role == "finally" or (handled in chosen and handled not in reuse):
                order.append(j)
        return Selection(order, reuse, source, dict(asked or {}))
