"""The git mirror: created once, fetched incrementally, worktrees per commit, files at a commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sparkwing.source.mirror import Mirrors, SourceError, redact_url


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def _commit(work: Path, name: str, text: str) -> str:
    (work / name).write_text(text)
    _git(work, "add", name)
    _git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", name)
    _git(work, "push", "-q", "origin", "HEAD:main")
    return _git(work, "rev-parse", "HEAD")


@pytest.fixture()
def upstream(tmp_path: Path) -> tuple[str, Path]:
    bare = tmp_path / "up.git"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    _git(tmp_path, "clone", "-q", str(bare), str(work))
    return f"file://{bare}", work


def test_fetch_resolve_show_and_checkout(tmp_path: Path, upstream: tuple[str, Path]) -> None:
    url, work = upstream
    first = _commit(work, "a.txt", "one")
    mirrors = Mirrors(tmp_path / "mirrors")
    path = mirrors.fetch(url)
    assert (path / "HEAD").exists()
    assert mirrors.resolve(url, "main") == first
    assert mirrors.show(url, first, "a.txt") == b"one"
    assert mirrors.show(url, first, "missing.txt") is None

    second = _commit(work, "b.txt", "two")
    mirrors.fetch(url)
    assert mirrors.resolve(url, "main") == second
    assert mirrors.changed_paths(url, first, second) == ["b.txt"]
    assert mirrors.changed_paths(url, "0" * 40, second) is None

    dest = tmp_path / "run"
    mirrors.checkout(url, first, dest)
    assert (dest / "a.txt").read_text() == "one"
    assert not (dest / "b.txt").exists()
    mirrors.remove(url, dest)
    assert not dest.exists()


def test_unknown_ref_and_bad_url_are_clear_errors(
    tmp_path: Path, upstream: tuple[str, Path]
) -> None:
    url, work = upstream
    _commit(work, "a.txt", "one")
    mirrors = Mirrors(tmp_path / "mirrors")
    mirrors.fetch(url)
    with pytest.raises(SourceError, match="no commit 'nope'"):
        mirrors.resolve(url, "nope")
    with pytest.raises(SourceError, match="git fetch failed"):
        mirrors.fetch(f"file://{tmp_path}/absent.git")


def test_redact_url_drops_credentials() -> None:
    assert redact_url("https://user:tok@example.com/r.git") == "https://example.com/r.git"
    assert redact_url("file:///srv/r.git") == "file:///srv/r.git"
