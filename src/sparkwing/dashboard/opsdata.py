"""Data of the pages beyond runs: approvals and pauses waiting, the queue, the workers
holding queued runs, the pipelines and the overview. Each page's data is one function, so a
new capability of the stores (a worker registry, schedules) changes one place."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING

from sparkwing.dashboard.timing import seconds_between, shown
from sparkwing.errors import NotSupportedError
from sparkwing.status import FINAL_RUN_STATUSES

if TYPE_CHECKING:
    from sparkwing.dashboard.source import Source
    from sparkwing.surfaces.state.base import Gate, QueueEntry, RunRecord

QUEUE_ROWS = 200
OVERVIEW_RUNS = 500


@dataclass
class ApprovalsView:
    gates: list[Gate]
    supported: bool


def approvals_data(source: Source) -> ApprovalsView:
    """Every pending approval and pause, oldest first."""
    gates = source.state.gates
    if gates is None:
        return ApprovalsView([], False)
    return ApprovalsView(gates.list(pending_only=True), True)


@dataclass(frozen=True)
class QueueRow:
    run_id: str
    pipeline: str
    state: str
    worker: str
    attempts: int
    submitted: str
    lease: str  # "in 42s", "expired 3s ago", or ""


@dataclass
class QueueView:
    rows: list[QueueRow]
    supported: bool
    note: str = ""


def _lease(entry: QueueEntry, now: float) -> str:
    if entry.lease_expires is None:
        return ""
    left = entry.lease_expires - now
    return f"ends in {left:.0f}s" if left >= 0 else f"expired {-left:.0f}s ago"


def _queue_entries(source: Source) -> tuple[list[QueueEntry], str | None]:
    queue = source.state.queue
    if queue is None:
        return [], f"{source.state.describe()} has no run queue"
    try:
        return queue.entries(QUEUE_ROWS), None
    except NotSupportedError as exc:
        return [], str(exc)


def queue_data(source: Source) -> QueueView:
    """Runs waiting in the queue or held by a worker, oldest first."""
    entries, problem = _queue_entries(source)
    if problem is not None:
        return QueueView([], False, problem)
    now = time.time()
    rows = []
    for entry in entries:
        run = source.state.get_run(entry.run_id)
        rows.append(
            QueueRow(
                run_id=entry.run_id,
                pipeline=run.pipeline if run else "?",
                state=entry.state,
                worker=entry.worker or "",
                attempts=entry.attempts,
                submitted=shown(entry.submitted_at),
                lease=_lease(entry, now),
            )
        )
    note = f"the {QUEUE_ROWS} oldest shown" if len(entries) >= QUEUE_ROWS else ""
    return QueueView(rows, True, note)


@dataclass
class WorkerRow:
    name: str
    runs: list[tuple[str, str]] = field(default_factory=list)  # (run id, lease)
    # From the workers registry, where the store keeps one (empty otherwise).
    host: str = ""
    labels: list[str] = field(default_factory=list)
    last_seen: str = ""
    stale: bool = False
    registered: bool = False


@dataclass
class WorkersView:
    workers: list[WorkerRow]
    supported: bool
    note: str = ""


def workers_data(source: Source) -> WorkersView:
    """The workers registry (labels, last heartbeat; stale ones marked) where the store keeps
    one, and from the queue's claims the runs each worker holds with their leases."""
    from datetime import datetime

    entries, problem = _queue_entries(source)
    if problem is not None:
        return WorkersView([], False, problem)
    now = time.time()
    by_name: dict[str, WorkerRow] = {}
    fleet = source.state.fleet
    if fleet is not None:
        moment = datetime.now(UTC)
        for info in fleet.list():
            by_name[info.name] = WorkerRow(
                info.name,
                host=info.host,
                labels=list(info.labels),
                last_seen=shown(info.last_seen),
                stale=info.stale(moment),
                registered=True,
            )
    for entry in entries:
        if entry.state != "claimed" or not entry.worker:
            continue
        row = by_name.setdefault(entry.worker, WorkerRow(entry.worker))
        row.runs.append((entry.run_id, _lease(entry, now)))
    return WorkersView(sorted(by_name.values(), key=lambda w: w.name), True)


@dataclass(frozen=True)
class PipelineRow:
    name: str
    description: str
    last_run: str
    last_status: str
    last_started: str


def pipelines_data(source: Source) -> list[PipelineRow]:
    """The project's pipelines (or, without a project, those of recent runs) with their
    newest run: the schedules page's table."""
    described: dict[str, str] = {}
    if source.project is not None:
        described = {p.name: p.description or "" for p in source.project.pipelines}
    else:
        page = source.state.list_runs(limit=OVERVIEW_RUNS)
        described = {r.pipeline: "" for r in page.runs}
    rows = []
    for name in sorted(described):
        newest = source.state.list_runs(pipeline=name, limit=1).runs
        run = newest[0] if newest else None
        rows.append(
            PipelineRow(
                name=name,
                description=described[name],
                last_run=run.run_id if run else "",
                last_status=run.status if run else "",
                last_started=shown(run.started_at or run.created_at) if run else "",
            )
        )
    return rows


@dataclass(frozen=True)
class PipelineStats:
    name: str
    runs: int
    finished: int
    success_rate: float | None  # of finished runs
    median_seconds: float | None  # of finished runs
    last_status: str


def _stats(name: str, runs: list[RunRecord]) -> PipelineStats:
    finished = [r for r in runs if r.status in FINAL_RUN_STATUSES]
    times = [
        s
        for r in finished
        if (s := seconds_between(r.started_at, r.finished_at)) is not None and r.finished_at
    ]
    return PipelineStats(
        name=name,
        runs=len(runs),
        finished=len(finished),
        success_rate=(sum(r.status == "success" for r in finished) / len(finished))
        if finished
        else None,
        median_seconds=statistics.median(times) if times else None,
        last_status=runs[0].status,
    )


def overview_data(source: Source, limit: int = OVERVIEW_RUNS) -> list[PipelineStats]:
    """Success rate and median duration per pipeline over the newest ``limit`` runs."""
    runs: list[RunRecord] = []
    cursor = None
    while len(runs) < limit:
        page = source.state.list_runs(limit=min(200, limit - len(runs)), cursor=cursor)
        runs += page.runs
        cursor = page.next_cursor
        if cursor is None:
            break
    by_pipeline: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_pipeline.setdefault(run.pipeline, []).append(run)
    return [_stats(name, group) for name, group in sorted(by_pipeline.items())]


@dataclass(frozen=True)
class ScheduleRow:
    pipeline: str
    cron: str
    timezone: str
    next_tick: str
    last_tick: str


def schedules_data(source: Source) -> list[ScheduleRow]:
    """The project's ``on.schedule`` entries: when each fires next and the last tick the
    state recorded (none without a project: a controller's repositories keep theirs)."""
    from datetime import UTC, datetime

    from sparkwing.triggers.firing import schedules_of
    from sparkwing.triggers.ticks import tick_key

    if source.project is None:
        return []
    now = datetime.now(UTC)
    ticks = source.state.ticks
    rows = []
    for item in schedules_of(source.project.pipelines, "project", {}):
        last = ticks.last(item.key) if ticks is not None else None
        rows.append(
            ScheduleRow(
                pipeline=item.pipeline,
                cron=item.schedule.cron,
                timezone=item.schedule.timezone,
                next_tick=tick_key(item.next_after(now)),
                last_tick=last or "",
            )
        )
    return rows
