"""Geometry of the two drawings on a run's page: its DAG (jobs in columns by depth, edges
from each need) and its timeline (a bar per job from start to end), both drawn as SVG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sparkwing.dashboard.timing import moment

COLUMN, ROW = 190, 46
BOX_W, BOX_H = 160, 32
MARGIN = 8
LABEL_CHARS = 20


@dataclass(frozen=True)
class DagNode:
    id: str
    label: str
    status: str
    x: int
    y: int


@dataclass(frozen=True)
class DagEdge:
    path: str
    status: str  # of the job the edge leads from


@dataclass(frozen=True)
class Dag:
    nodes: list[DagNode]
    edges: list[DagEdge]
    width: int
    height: int
    box_w: int = BOX_W
    box_h: int = BOX_H


def label(text: str, chars: int = LABEL_CHARS) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def depths(order: Sequence[str], needs: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each job's column: one more than its deepest need (unknown needs are ignored; a job
    on a cycle, which a valid plan never has, goes in the first column)."""
    known = set(order)
    deps = {job: [d for d in needs.get(job, ()) if d in known and d != job] for job in order}
    waiting = {job: len(set(d)) for job, d in deps.items()}
    users: dict[str, list[str]] = {}
    for job, ds in deps.items():
        for d in set(ds):
            users.setdefault(d, []).append(job)
    depth = {job: 0 for job in order}
    ready = [job for job in order if waiting[job] == 0]
    while ready:
        job = ready.pop()
        for user in users.get(job, ()):
            depth[user] = max(depth[user], depth[job] + 1)
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    return depth


def layout(
    order: Sequence[str], needs: Mapping[str, Sequence[str]], status: Mapping[str, str]
) -> Dag:
    """Columns by depth; within a column, jobs follow the mean row of their needs (one
    pass, which keeps a fan-out's edges from crossing), then plan order."""
    depth = depths(order, needs)
    columns: dict[int, list[str]] = {}
    for job in order:
        columns.setdefault(depth[job], []).append(job)
    row: dict[str, int] = {}
    plan_index = {job: i for i, job in enumerate(order)}
    for col in sorted(columns):
        jobs = columns[col]

        def key(job: str) -> tuple[float, int]:
            rows = [row[d] for d in needs.get(job, ()) if d in row]
            return (sum(rows) / len(rows) if rows else 0.0, plan_index[job])

        if col > 0:
            jobs.sort(key=key)
        for i, job in enumerate(jobs):
            row[job] = i
    nodes = [
        DagNode(
            id=job,
            label=label(job),
            status=status.get(job, "pending"),
            x=MARGIN + depth[job] * COLUMN,
            y=MARGIN + row[job] * ROW,
        )
        for job in order
    ]
    at = {n.id: n for n in nodes}
    edges = []
    for node in nodes:
        for dep in needs.get(node.id, ()):
            source = at.get(dep)
            if source is None:
                continue
            x1, y1 = source.x + BOX_W, source.y + BOX_H // 2
            x2, y2 = node.x, node.y + BOX_H // 2
            bend = (x2 - x1) // 2
            path = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
            edges.append(DagEdge(path, source.status))
    width = MARGIN * 2 + (max(depth.values(), default=0)) * COLUMN + BOX_W
    height = MARGIN * 2 + max((len(c) for c in columns.values()), default=1) * ROW - (ROW - BOX_H)
    return Dag(nodes=nodes, edges=edges, width=width, height=height)


GANTT_LABEL_W, GANTT_BAR_W, GANTT_ROW = 170, 560, 22


@dataclass(frozen=True)
class Bar:
    id: str
    label: str
    status: str
    x: float
    width: float
    y: int
    text: str  # start offset and duration, for the bar's title


@dataclass(frozen=True)
class Timeline:
    bars: list[Bar]
    span_seconds: float
    width: int
    height: int
    label_w: int = GANTT_LABEL_W


def timeline(
    jobs: Sequence[tuple[str, str, str | None, str | None]], now: datetime | None = None
) -> Timeline:
    """Bars for (id, status, started_at, finished_at) of the jobs that started; a running
    job's bar reaches now."""
    from sparkwing.sdk.durations import format_duration

    now = now or datetime.now(UTC)
    started = [(j, moment(j[2]), moment(j[3])) for j in jobs if moment(j[2]) is not None]
    if not started:
        return Timeline([], 0.0, GANTT_LABEL_W + GANTT_BAR_W, 0)
    t0 = min(s for _, s, _ in started if s is not None)
    t1 = max((e or now) for _, _, e in started)
    span = max((t1 - t0).total_seconds(), 0.001)
    scale = GANTT_BAR_W / span
    bars = []
    for i, ((job_id, status, _, _), start, end) in enumerate(started):
        assert start is not None
        offset = (start - t0).total_seconds()
        length = max(((end or now) - start).total_seconds(), 0.0)
        bars.append(
            Bar(
                id=job_id,
                label=label(job_id, 22),
                status=status,
                x=GANTT_LABEL_W + offset * scale,
                width=max(length * scale, 2.0),
                y=i * GANTT_ROW,
                text=f"started +{format_duration(offset)}, took {format_duration(length)}",
            )
        )
    return Timeline(bars, span, GANTT_LABEL_W + GANTT_BAR_W + 10, len(bars) * GANTT_ROW + 4)
