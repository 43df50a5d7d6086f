"""Which pipelines an event starts: branch and tag globs, negated paths, deleted refs,
pull-request types and base branches (pure: entries parsed from real project text)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sparkwing.conf.model import PipelineEntry
from sparkwing.conf.project import parse_project
from sparkwing.triggers.globs import matches
from sparkwing.triggers.match import PullRequestEvent, PushEvent, matching

SHA = "a" * 40
PROJECT = """
pipelines:
  - name: ci
    entrypoint: CI
    on:
      push: { branches: [main, "release/*"], paths: ["src/**", "!src/**/*.md"] }
      pull_request: { branches: [main] }
  - name: docs
    entrypoint: Docs
    on:
      push: { branches: ["**"], paths: ["docs/**"] }
  - name: release
    entrypoint: Release
    on:
      push: { tags: ["v*", "!v*-rc*"] }
  - name: everything
    entrypoint: All
    on:
      push:
  - name: not-main
    entrypoint: NotMain
    on:
      push: { branches: ["!main"] }
  - name: nightly
    entrypoint: Nightly
    on:
      schedule: [{ cron: "0 3 * * *" }]
  - name: manual
    entrypoint: Manual
"""


@pytest.fixture(scope="module")
def pipelines() -> list[PipelineEntry]:
    return parse_project(PROJECT, Path("/p/.sparkwing/sparkwing.yaml")).pipelines


def names(pipelines: list[PipelineEntry], event: PushEvent | PullRequestEvent) -> list[str]:
    return [p.name for p in matching(pipelines, event)]


def push(ref: str, paths: tuple[str, ...] | None = ("src/a.py",)) -> PushEvent:
    return PushEvent(ref=ref, sha=SHA, before="b" * 40, paths=paths)


@pytest.mark.parametrize(
    ("patterns", "value", "expected"),
    [
        (["main"], "main", True),
        (["main"], "mainline", False),
        (["release/*"], "release/1.2", True),
        (["release/*"], "release/1/2", False),  # * stays inside one segment
        (["release/**"], "release/1/2", True),
        (["release/**"], "release", True),
        (["**"], "a/b/c", True),
        (["**/*.py"], "x.py", True),
        (["**/*.py"], "a/b/x.py", True),
        (["src/**", "!src/**/*.md"], "src/a/README.md", False),
        (["src/**", "!src/**/*.md"], "src/a/main.py", True),
        (["src/**", "!src/gen/**", "src/gen/keep.py"], "src/gen/keep.py", True),
        (["!docs/**"], "docs/x.md", False),
        (["!docs/**"], "src/x.py", True),  # only negations: everything else passes
        (["v?"], "v1", True),
        (["v?"], "v10", False),
        (["a.b"], "aXb", False),  # a dot is a dot, not a regex wildcard
        (["feat[1]"], "feat[1]", True),
    ],
)
def test_globs(patterns: list[str], value: str, expected: bool) -> None:
    assert matches(patterns, value) is expected


def test_push_to_main_in_src(pipelines: list[PipelineEntry]) -> None:
    assert names(pipelines, push("refs/heads/main")) == ["ci", "everything"]


def test_push_to_a_release_branch(pipelines: list[PipelineEntry]) -> None:
    got = names(pipelines, push("refs/heads/release/2.0"))
    assert got == ["ci", "everything", "not-main"]


def test_a_branch_glob_does_not_cross_a_slash(pipelines: list[PipelineEntry]) -> None:
    assert "ci" not in names(pipelines, push("refs/heads/release/2.0/hotfix"))


def test_only_negated_paths_changed_skips(pipelines: list[PipelineEntry]) -> None:
    event = push("refs/heads/main", paths=("src/guide.md", "src/deep/notes.md"))
    assert names(pipelines, event) == ["everything"]


def test_one_path_passing_is_enough(pipelines: list[PipelineEntry]) -> None:
    event = push("refs/heads/feature/x", paths=("src/guide.md", "docs/index.md"))
    assert names(pipelines, event) == ["docs", "everything", "not-main"]


def test_unknown_changed_paths_pass_every_paths_filter(pipelines: list[PipelineEntry]) -> None:
    # A new branch: there is no "before" to compare with.
    event = push("refs/heads/main", paths=None)
    assert names(pipelines, event) == ["ci", "docs", "everything"]


def test_no_changed_paths_fails_a_paths_filter(pipelines: list[PipelineEntry]) -> None:
    assert names(pipelines, push("refs/heads/main", paths=())) == ["everything"]


def test_a_deleted_branch_starts_nothing(pipelines: list[PipelineEntry]) -> None:
    event = PushEvent(ref="refs/heads/main", sha="", before=SHA, deleted=True)
    assert names(pipelines, event) == []


def test_a_deleted_tag_starts_nothing(pipelines: list[PipelineEntry]) -> None:
    event = PushEvent(ref="refs/tags/v1", sha="", deleted=True)
    assert names(pipelines, event) == []


def test_tag_pushes(pipelines: list[PipelineEntry]) -> None:
    # A filter naming only branches skips tags; a bare `push:` takes them; paths do not apply.
    assert names(pipelines, push("refs/tags/v1.2", paths=("docs/x",))) == ["release", "everything"]
    assert names(pipelines, push("refs/tags/v1.2-rc1")) == ["everything"]
    assert names(pipelines, push("refs/tags/nightly")) == ["everything"]


def test_a_ref_that_is_neither_branch_nor_tag(pipelines: list[PipelineEntry]) -> None:
    for ref in ("refs/notes/commits", "main", "refs/pull/3/head", "refs/heads"):
        assert names(pipelines, push(ref)) == [], ref


def test_negated_branches_only(pipelines: list[PipelineEntry]) -> None:
    assert "not-main" not in names(pipelines, push("refs/heads/main"))
    assert "not-main" in names(pipelines, push("refs/heads/dev"))


def pr(
    action: str = "opened", base: str = "main", paths: tuple[str, ...] | None = None
) -> PullRequestEvent:
    return PullRequestEvent(action, 7, base=base, head="feature", sha=SHA, paths=paths)


def test_pull_requests(pipelines: list[PipelineEntry]) -> None:
    assert names(pipelines, pr()) == ["ci"]
    assert names(pipelines, pr("synchronize")) == ["ci"]
    assert names(pipelines, pr(base="dev")) == []
    assert names(pipelines, pr("closed")) == []  # not in the default types
    assert names(pipelines, pr("edited")) == []


def test_pull_request_types_and_paths() -> None:
    text = """
    pipelines:
      - name: lint
        entrypoint: Lint
        on:
          pull_request: { types: [closed, edited], paths: ["**/*.py"] }
    """
    entries = parse_project(textwrap.dedent(text), Path("/p/.sparkwing/sparkwing.yaml")).pipelines
    assert names(entries, pr("closed", base="any", paths=("a/b.py",))) == ["lint"]
    assert names(entries, pr("closed", paths=("README.md",))) == []
    assert names(entries, pr("opened", paths=("a/b.py",))) == []
