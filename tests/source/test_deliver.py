"""What `runs submit` sends, decided from a real checkout: its origin and commit when the
tree is clean and pushed, a snapshot otherwise, an explicit --ref only when origin has it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkwing.source.deliver import deliver, project_at
from sparkwing.source.mirror import Mirrors, SourceError
from sparkwing.surfaces.cache.filesystem import FilesystemCache
from tests.source.gitrepo import git


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    bare = tmp_path / "up.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    (work / "app" / ".sparkwing").mkdir(parents=True)
    (work / "app" / ".sparkwing" / "sparkwing.yaml").write_text(
        "pipelines:\n  - name: p\n    entrypoint: p\n    requires: [gpu, linux]\n"
    )
    git(work, "add", "-A")
    git(work, "commit", "-qm", "one")
    git(work, "push", "-q", "origin", "HEAD:main")
    return work


def test_a_clean_pushed_checkout_sends_its_origin_and_commit(clone: Path, tmp_path: Path) -> None:
    got = deliver(clone / "app", repo=None, ref=None, cache=None)
    sha = git(clone, "rev-parse", "HEAD")
    assert got.source == {
        "kind": "git",
        "url": str(tmp_path / "up.git"),
        "ref": "main",
        "sha": sha,
        "subdir": "app",
    }


def test_a_pushed_ref_goes_as_git_an_unpushed_one_is_refused(clone: Path) -> None:
    first = git(clone, "rev-parse", "HEAD")
    (clone / "x").write_text("x")
    git(clone, "add", "x")
    git(clone, "commit", "-qm", "local only")
    got = deliver(clone, repo=None, ref=first, cache=None)
    assert (got.source["kind"], got.source["sha"]) == ("git", first)
    with pytest.raises(SourceError, match="is not on origin; push it"):
        deliver(clone, repo=None, ref="HEAD", cache=None)
    with pytest.raises(SourceError, match="no such commit"):
        deliver(clone, repo=None, ref="nope", cache=None)


def test_a_dirty_tree_needs_a_cache_for_its_snapshot(clone: Path, tmp_path: Path) -> None:
    (clone / "app" / "new.txt").write_text("new")
    with pytest.raises(SourceError, match="uncommitted changes, and there is no cache"):
        deliver(clone, repo=None, ref=None, cache=None)
    cache = FilesystemCache(tmp_path / "cache")
    got = deliver(clone / "app", repo=None, ref=None, cache=lambda: cache)
    assert got.source["kind"] == "snapshot" and got.source["subdir"] == "app"
    assert cache.has(got.source["key"]) and "uploaded" in got.note
    assert deliver(clone, repo=None, ref=None, cache=lambda: cache).note.endswith("already there")


def test_a_folder_outside_git_is_a_snapshot(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    (root / ".sparkwing").mkdir(parents=True)
    (root / ".sparkwing" / "p.py").write_text("")
    cache = FilesystemCache(tmp_path / "cache")
    got = deliver(root, repo=None, ref=None, cache=lambda: cache)
    assert got.source["kind"] == "snapshot" and "not a git checkout" in got.note


def test_a_repo_source_reads_its_project_file_at_the_commit(clone: Path, tmp_path: Path) -> None:
    mirrors = Mirrors(tmp_path / "mirrors")
    url = f"file://{tmp_path / 'up.git'}"
    got = deliver(None, repo=url, ref=None, mirrors=mirrors)
    assert (got.source["ref"], got.source["sha"]) == ("main", git(clone, "rev-parse", "HEAD"))
    assert project_at(got.source, mirrors) is None  # the project is in app/, not at the top
    project = project_at({**got.source, "subdir": "app"}, mirrors)
    assert project is not None
    entry = project.pipeline("p")
    assert entry is not None and entry.requires == ("gpu", "linux")
