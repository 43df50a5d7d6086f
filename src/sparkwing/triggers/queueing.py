"""The queued run a trigger makes: a run record (``trigger`` push / pull_request / schedule)
and its queue spec, version 2, naming where the code comes from. ``profile`` is null: the
worker that claims the run runs it with its own profile."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from sparkwing.engine.clock import now_iso
from sparkwing.ids import new_run_id
from sparkwing.surfaces.state.base import RunRecord

SPEC_VERSION = 2
TRIGGERS: tuple[str, ...] = ("push", "pull_request", "schedule")


@dataclass(frozen=True)
class Trigger:
    """Why a run starts: ``kind`` (one of TRIGGERS), the code's ``source`` (a spec v2
    source) and facts about the event kept in the record's ``extra`` (branch, sha, delivery,
    tick ...; never a secret)."""

    kind: str
    source: dict[str, Any]
    facts: dict[str, Any] = field(default_factory=dict)


def git_source(url: str, ref: str, sha: str) -> dict[str, Any]:
    return {"kind": "git", "url": url, "ref": ref, "sha": sha}


def triggered_run(
    pipeline: str, trigger: Trigger, run_id: str | None = None
) -> tuple[RunRecord, dict[str, Any]]:
    """The queued record and spec of one run of ``pipeline`` started by ``trigger`` (under
    ``run_id`` when the caller derived one, else a new id)."""
    source = trigger.source
    git: dict[str, Any] = {}
    if source.get("kind") == "git":
        branch = trigger.facts.get("branch")
        git = {"sha": source["sha"], **({"branch": branch} if branch else {})}
    run = RunRecord(
        run_id=run_id or new_run_id(),
        pipeline=pipeline,
        status="queued",
        created_at=now_iso(),
        trigger=trigger.kind,
        profile="",
        profile_source="worker",
        host=socket.gethostname(),
        git=git,
        source=dict(source),
        # The trigger again in extra: a worker starting the run replaces the record but
        # keeps (merges) its extra.
        extra={**trigger.facts, "trigger": trigger.kind},
    )
    spec: dict[str, Any] = {
        "version": SPEC_VERSION,
        "pipeline": pipeline,
        "args": [],
        "labels": [],
        "profile": None,
        "source": dict(source),
    }
    return run, spec
