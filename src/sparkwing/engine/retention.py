"""Retention policies: which finished runs a policy prunes (the newest of each pipeline and
every run in progress are kept), and the tally of what a prune removed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sparkwing.status import FINAL_RUN_STATUSES
from sparkwing.surfaces.state.base import RunRecord, StateStore

PAGE = 500  # runs per list_runs request while scanning the history


@dataclass(frozen=True)
class Policy:
    """Prune finished runs created more than ``max_age`` seconds ago, except the
    ``keep_last`` newest finished runs of each pipeline; either may be None (not applied)."""

    max_age: float | None = None
    keep_last: int | None = None
    pipeline: str | None = None

    def describe(self) -> str:
        parts = []
        if self.max_age is not None:
            parts.append(f"older than {_age(self.max_age)}")
        if self.keep_last is not None:
            parts.append(f"keeping the last {self.keep_last} per pipeline")
        if self.pipeline is not None:
            parts.append(f"of pipeline {self.pipeline}")
        return ", ".join(parts) or "everything finished"


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass
class Result:
    """What a prune removed (or, with ``dry_run``, would remove)."""

    runs: list[RunRecord] = field(default_factory=list)
    kept: int = 0
    memo: int = 0
    manifests: int = 0
    blobs: int = 0
    artifact_bytes: int = 0
    dry_run: bool = False
    # Runs that turned out not to be finished when their turn came (left alone).
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "runs": [
                {
                    "run_id": r.run_id,
                    "pipeline": r.pipeline,
                    "status": r.status,
                    "created_at": r.created_at,
                }
                for r in self.runs
            ],
            "skipped": self.skipped,
            "totals": {
                "runs": len(self.runs),
                "kept": self.kept,
                "memo_entries": self.memo,
                "manifests": self.manifests,
                "blobs": self.blobs,
                "artifact_bytes": self.artifact_bytes,
            },
        }


def all_runs(state: StateStore, pipeline: str | None = None) -> Iterator[RunRecord]:
    """Every run of the store (of ``pipeline``), newest first, a page at a time."""
    cursor: str | None = None
    while True:
        page = state.list_runs(pipeline=pipeline, limit=PAGE, cursor=cursor)
        yield from page.runs
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def select(
    runs: Iterable[RunRecord], policy: Policy, now: datetime
) -> tuple[list[RunRecord], list[RunRecord]]:
    """(prune, keep) from ``runs`` newest first. Only finished runs are ever pruned; the
    ``keep_last`` newest finished runs of each pipeline are kept whatever their age."""
    cutoff = None
    if policy.max_age is not None:
        cutoff = (now - timedelta(seconds=policy.max_age)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    seen: dict[str, int] = {}
    prune: list[RunRecord] = []
    keep: list[RunRecord] = []
    for run in runs:
        if policy.pipeline is not None and run.pipeline != policy.pipeline:
            keep.append(run)
            continue
        if run.status not in FINAL_RUN_STATUSES:
            keep.append(run)
            continue
        rank = seen.get(run.pipeline, 0)
        seen[run.pipeline] = rank + 1
        protected = policy.keep_last is not None and rank < policy.keep_last
        young = cutoff is not None and run.created_at >= cutoff
        (keep if protected or young else prune).append(run)
    return prune, keep
