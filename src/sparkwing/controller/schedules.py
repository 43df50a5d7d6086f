"""The controller's schedules: each turn reads ``sparkwing.yaml`` at the tip of every known
repository's branch and fires the ticks that are due, with that commit as the runs' git
source. Runs as a background task of the app; peers sharing the database fire a tick once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sparkwing.controller.backend import Backend
from sparkwing.controller.repos import RepoStore
from sparkwing.controller.triggering import UnprocessableError, project_at
from sparkwing.source.mirror import Mirrors, SourceError
from sparkwing.triggers.clock import Clock
from sparkwing.triggers.firing import Fired, Scheduled, fire_due, grace_for, schedules_of
from sparkwing.triggers.match import BRANCH_PREFIX
from sparkwing.triggers.queueing import git_source

log = logging.getLogger("sparkwing.controller")


def repo_schedules(backend: Backend, mirrors: Mirrors) -> list[Scheduled]:
    """Every schedule of every repository (one that cannot be read is logged and skipped)."""
    items: list[Scheduled] = []
    for repo in RepoStore(backend.tokens.db).list():
        ref = BRANCH_PREFIX + repo.branch
        try:
            mirrors.fetch(repo.url)
            sha = mirrors.resolve(repo.url, ref)
            project = project_at(mirrors, repo, sha)
        except (SourceError, UnprocessableError) as exc:
            log.warning("repository %s: schedules not read: %s", repo.name, exc)
            continue
        if project is None:
            continue
        facts = {"repo": repo.name, "branch": repo.branch, "sha": sha}
        source = git_source(repo.url, ref, sha)
        items.extend(schedules_of(project.pipelines, f"repo/{repo.name}", source, facts))
    return items


def schedule_turn(backend: Backend, mirrors: Mirrors, now: datetime, poll: float) -> list[Fired]:
    ticks = backend.state.ticks
    if ticks is None:
        return []
    fired = fire_due(ticks, repo_schedules(backend, mirrors), now, grace_for(poll))
    for one in fired:
        if one.run is not None:
            log.info(
                "schedule %s: tick %s queued run %s", one.scheduled.key, one.due.key, one.run.run_id
            )
    return fired


async def run_schedules(get_backend: Callable[[], Backend], clock: Clock, poll: float) -> None:
    """Turns every ``poll`` seconds until cancelled; ``get_backend()`` is asked each turn
    (tests swap the stores of a running app)."""
    mirrors = Mirrors()
    while True:
        try:
            await asyncio.to_thread(schedule_turn, get_backend(), mirrors, clock(), poll)
        except Exception as exc:  # the next turn tries again; the app keeps serving
            log.warning("schedules: turn failed: %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(poll)


def start_schedules(get_backend: Callable[[], Backend], poll: float) -> asyncio.Task[None]:
    """The background task of an app's lifespan (time from the clock the environment says)."""
    import os

    from sparkwing.triggers.clock import clock_from_env

    return asyncio.create_task(run_schedules(get_backend, clock_from_env(os.environ), poll))
