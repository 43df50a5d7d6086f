"""The runs page's data: one page of runs, newest first, from the state store's own paging
(filters the store cannot apply, branch and trigger, scan a bounded number of records)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sparkwing.dashboard.timing import duration, shown
from sparkwing.errors import UsageError
from sparkwing.status import RUN_STATUSES

if TYPE_CHECKING:
    from sparkwing.dashboard.source import Source
    from sparkwing.surfaces.state.base import RunRecord

PAGE_SIZE = 50
# With a branch or trigger filter, at most this many records are read for one page: a rare
# branch then shows a short page with a link to look further, never a scan of all history.
MAX_SCAN = 2000


@dataclass(frozen=True)
class RunFilters:
    pipeline: str | None = None
    status: str | None = None
    since: str | None = None  # as typed: an age (2h), a date or an ISO time
    branch: str | None = None
    trigger: str | None = None

    @classmethod
    def of(cls, query: dict[str, str]) -> RunFilters:
        def value(name: str) -> str | None:
            text = (query.get(name) or "").strip()
            return text or None

        filters = cls(*(value(n) for n in ("pipeline", "status", "since", "branch", "trigger")))
        if filters.status is not None and filters.status not in RUN_STATUSES:
            raise UsageError(f"status must be one of {', '.join(RUN_STATUSES)}")
        return filters

    def query(self) -> dict[str, str]:
        """The filters as URL query parameters (unset ones left out)."""
        return {k: v for k, v in vars(self).items() if v}


@dataclass(frozen=True)
class RunRow:
    run_id: str
    pipeline: str
    status: str
    trigger: str
    branch: str
    sha: str
    started: str
    duration: str


@dataclass
class RunsView:
    rows: list[RunRow]
    filters: RunFilters
    next_cursor: str | None = None
    first_page: bool = True
    scanned_out: bool = False  # the scan limit ended the page before it was full
    pipelines: list[str] = field(default_factory=list)


def run_row(run: RunRecord) -> RunRow:
    git = run.git if isinstance(run.git, dict) else {}
    started = run.started_at or run.created_at or None
    return RunRow(
        run_id=run.run_id,
        pipeline=run.pipeline,
        status=run.status,
        trigger=run.trigger,
        branch=str(git.get("branch") or ""),
        sha=str(git.get("sha") or "")[:7],
        started=shown(started),
        duration=duration(started, run.finished_at) if run.started_at else "-",
    )


def _matches(run: RunRecord, filters: RunFilters) -> bool:
    git = run.git if isinstance(run.git, dict) else {}
    if filters.branch is not None and str(git.get("branch") or "") != filters.branch:
        return False
    return filters.trigger is None or run.trigger == filters.trigger


def runs_data(source: Source, filters: RunFilters, cursor: str | None = None) -> RunsView:
    """One page of runs matching ``filters``, after ``cursor`` (None: the newest)."""
    from sparkwing.cli.timefmt import parse_since

    since = parse_since(filters.since) if filters.since else None
    post = filters.branch is not None or filters.trigger is not None
    rows: list[RunRow] = []
    scanned = 0
    next_cursor = cursor
    while True:
        page = source.state.list_runs(
            pipeline=filters.pipeline,
            status=filters.status,
            since=since,
            limit=PAGE_SIZE,
            cursor=next_cursor,
        )
        scanned += len(page.runs)
        rows += [run_row(r) for r in page.runs if not post or _matches(r, filters)]
        next_cursor = page.next_cursor
        if not post or next_cursor is None or len(rows) >= PAGE_SIZE or scanned >= MAX_SCAN:
            break
    return RunsView(
        rows=rows,
        filters=filters,
        next_cursor=next_cursor,
        first_page=cursor is None,
        scanned_out=post and next_cursor is not None and len(rows) < PAGE_SIZE,
    )
