"""Which pipelines an event starts: a push or pull-request event, described once whatever
sent it, matched against each pipeline's ``on:`` filters. Pure: no git, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sparkwing.conf.model import PipelineEntry
from sparkwing.conf.triggers import PullRequestFilter, PushFilter
from sparkwing.triggers.globs import any_matches, matches

BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"


@dataclass(frozen=True)
class PushEvent:
    """A push of ``ref`` to ``sha``. ``paths`` are the changed files (None: unknown, as for
    a new branch, which then passes every paths filter); ``deleted`` when the ref went away."""

    ref: str
    sha: str
    before: str | None = None
    paths: tuple[str, ...] | None = None
    deleted: bool = False

    @property
    def branch(self) -> str | None:
        return self.ref[len(BRANCH_PREFIX) :] if self.ref.startswith(BRANCH_PREFIX) else None

    @property
    def tag(self) -> str | None:
        return self.ref[len(TAG_PREFIX) :] if self.ref.startswith(TAG_PREFIX) else None


@dataclass(frozen=True)
class PullRequestEvent:
    """A pull request ``action`` (opened, synchronize ...) from ``head`` into ``base``."""

    action: str
    number: int
    base: str
    head: str
    sha: str
    paths: tuple[str, ...] | None = None


def push_matches(rule: PushFilter, event: PushEvent) -> bool:
    """Whether ``event`` passes ``rule``. A filter naming only branches skips tag pushes and
    one naming only tags skips branch pushes; paths do not apply to tags (GitHub's rules)."""
    if event.deleted:
        return False  # nothing left to run at
    branch, tag = event.branch, event.tag
    if branch is not None:
        if rule.branches is None and rule.tags is not None:
            return False
        if rule.branches is not None and not matches(rule.branches, branch):
            return False
        return _paths_pass(rule.paths, event.paths)
    if tag is not None:
        if rule.tags is None:
            return rule.branches is None
        return matches(rule.tags, tag)
    return False  # refs/notes/..., refs/pull/...: not a push a pipeline filters on


def pull_request_matches(rule: PullRequestFilter, event: PullRequestEvent) -> bool:
    if event.action not in rule.types:
        return False
    if rule.branches is not None and not matches(rule.branches, event.base):
        return False
    return _paths_pass(rule.paths, event.paths)


def _paths_pass(patterns: tuple[str, ...] | None, paths: tuple[str, ...] | None) -> bool:
    if patterns is None or paths is None:
        return True
    return any_matches(patterns, paths)


def matching(
    pipelines: Sequence[PipelineEntry], event: PushEvent | PullRequestEvent
) -> list[PipelineEntry]:
    """The pipelines ``event`` starts, in file order."""
    out: list[PipelineEntry] = []
    for entry in pipelines:
        on = entry.on
        if on is None:
            continue
        if isinstance(event, PushEvent):
            if on.push is not None and push_matches(on.push, event):
                out.append(entry)
        elif on.pull_request is not None and pull_request_matches(on.pull_request, event):
            out.append(entry)
    return out
