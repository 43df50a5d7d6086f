"""What the controller does with an event of a known repository: bring its mirror up to
date, read ``.sparkwing/sparkwing.yaml`` at the event's commit, and queue a run (with that
git source) of every pipeline whose ``on:`` filters the event passes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from sparkwing.conf.project import PROJECT_DIR, PROJECT_FILE, Project, parse_project
from sparkwing.controller.repos import Repo
from sparkwing.errors import ConfigError, UsageError
from sparkwing.ids import new_run_id
from sparkwing.source.mirror import Mirrors, SourceError
from sparkwing.surfaces.state.base import StateStore, require_queue
from sparkwing.triggers.match import PullRequestEvent, PushEvent, matching
from sparkwing.triggers.queueing import Trigger, git_source, triggered_run

log = logging.getLogger("sparkwing.controller")
PROJECT_PATH = f"{PROJECT_DIR}/{PROJECT_FILE}"


class UnprocessableError(UsageError):
    """The event is well-formed but cannot be acted on: its commit is not in the
    repository, or its project file is invalid (answered 422)."""


@dataclass(frozen=True)
class Queued:
    pipeline: str
    run_id: str

    def to_dict(self) -> dict[str, str]:
        return {"pipeline": self.pipeline, "run_id": self.run_id}


def project_at(mirrors: Mirrors, repo: Repo, sha: str) -> Project | None:
    """The project file of ``repo`` at ``sha`` (None when that commit has none)."""
    raw = mirrors.show(repo.url, sha, PROJECT_PATH)
    if raw is None:
        return None
    where = Path(f"{repo.name}@{sha[:12]}") / PROJECT_PATH
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnprocessableError(f"{where}: not valid UTF-8") from None
    try:
        return parse_project(text, where)
    except ConfigError as exc:  # the file's own problem, named with its line
        raise UnprocessableError(str(exc)) from None


def commit_of(mirrors: Mirrors, repo: Repo, ref_or_sha: str) -> str:
    """The commit ``ref_or_sha`` names after a fetch (a tag object is peeled to its commit)."""
    try:
        return mirrors.resolve(repo.url, ref_or_sha)
    except SourceError:
        raise UnprocessableError(
            f"repository {repo.name}: no commit {ref_or_sha!r} after fetching"
        ) from None


def act(
    state: StateStore,
    mirrors: Mirrors,
    repo: Repo,
    event: PushEvent | PullRequestEvent,
    ref: str,
    facts: dict[str, object],
    received: datetime | None = None,
) -> list[Queued]:
    """Queue the runs ``event`` starts; ``facts`` (delivery id, sender) go in their extra.

    A delivery (its id in ``facts``, first ``received`` then) gives each pipeline's run an id
    of its own: handling it again after a crash or a partial failure queues only the runs
    the first attempt did not."""
    if isinstance(event, PushEvent) and event.deleted:
        return []  # a deleted branch or tag: nothing to run at
    try:
        mirrors.fetch(repo.url)
    except SourceError as exc:
        log.warning("repository %s: %s", repo.name, exc)
        raise
    sha = commit_of(mirrors, repo, event.sha)
    project = project_at(mirrors, repo, sha)
    if project is None:
        return []
    if isinstance(event, PushEvent):
        paths = mirrors.changed_paths(repo.url, event.before, sha)
        event = replace(event, sha=sha, paths=None if paths is None else tuple(paths))
        kind = "push"
        facts = {**facts, "branch": event.branch, "tag": event.tag, "before": event.before}
    else:
        base = mirrors.merge_base(repo.url, f"refs/heads/{event.base}", sha)
        paths = mirrors.changed_paths(repo.url, base, sha) if base else None
        event = replace(event, sha=sha, paths=None if paths is None else tuple(paths))
        kind = "pull_request"
        facts = {
            **facts,
            "branch": event.head,
            "base": event.base,
            "pull_request": event.number,
            "action": event.action,
        }
    facts = {"repo": repo.name, "event": kind, "sha": sha, **facts}
    facts = {k: v for k, v in facts.items() if v is not None}
    trigger = Trigger(kind, git_source(repo.url, ref, sha), facts)
    queue = require_queue(state)
    queued = []
    delivery = facts.get("delivery")
    for entry in matching(project.pipelines, event):
        run_id = None
        if delivery is not None and received is not None:
            run_id = new_run_id(received, f"{repo.name}/{delivery}/{entry.name}")
        run, spec = triggered_run(entry.name, trigger, run_id)
        if run_id is None or state.get_run(run_id) is None:
            queue.submit(run, spec)
        queued.append(Queued(entry.name, run.run_id))
    log.info(
        "repository %s: %s %s at %s queued %d run(s)", repo.name, kind, ref, sha[:12], len(queued)
    )
    return queued
