"""Bare git mirrors, one per repository URL, kept under a machine's home.

Workers (to check out a run's commit) and the controller (to read ``sparkwing.yaml`` at a
pushed commit) share this code. A mirror is fetched under an exclusive file lock, so two
processes on one machine never fetch into it at once, and a later fetch transfers only what
changed. Each run gets its own clean, detached worktree of the mirror.

A run's git source is recorded as ``{"kind": "git", "url": URL, "ref": REF, "sha": SHA}``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sparkwing.errors import SparkwingError
from sparkwing.paths import local_dir, make_private_dirs
from sparkwing.source.record import redact_url

__all__ = ["Mirrors", "SourceError", "default_root", "redact_url"]

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
# Fetch every branch and tag; pull-request heads too where the server offers them (GitHub's
# refs/pull/N/head, GitLab's refs/merge-requests/N/head: a pattern matching nothing is fine).
_REFSPECS = (
    "+refs/heads/*:refs/heads/*",
    "+refs/tags/*:refs/tags/*",
    "+refs/pull/*/head:refs/pull/*/head",
    "+refs/merge-requests/*/head:refs/merge-requests/*/head",
)
_GIT_ENV = {
    # Never prompt for credentials on a worker: a missing credential is an error, not a hang.
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "true",
    "GCM_INTERACTIVE": "never",
}


class SourceError(SparkwingError):
    """A repository could not be fetched, or a ref or path is not in it."""


def default_root() -> Path:
    """Where this machine keeps its mirrors: ``$SPARKWING_HOME/mirrors`` (or ``~/.sparkwing``)."""
    return local_dir() / "mirrors"


class Mirrors:
    """The mirrors under ``root``, one bare repository per URL."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_root()

    def path_for(self, url: str) -> Path:
        """The bare repository of ``url`` (named by a hash, so any URL is a safe name)."""
        digest = hashlib.sha256(url.encode()).hexdigest()[:20]
        return self.root / f"{digest}.git"

    def fetch(self, url: str) -> Path:
        """Bring the mirror of ``url`` up to date (creating it on first use); its path."""
        make_private_dirs(self.root)
        path = self.path_for(url)
        with self._locked(path):
            if not (path / "HEAD").exists():
                tmp = path.with_name(path.name + ".new")
                shutil.rmtree(tmp, ignore_errors=True)
                self._git(None, "init", "--bare", "--quiet", str(tmp))
                self._git(tmp, "config", "remote.origin.url", url)
                # Renamed into place only once it exists, so a crash never leaves a half mirror
                # that later fetches would treat as good.
                os.replace(tmp, path)
            self._git(path, "fetch", "--quiet", "--prune", "--no-tags", url, *_REFSPECS)
        return path

    def resolve(self, url: str, ref: str) -> str:
        """The commit sha ``ref`` (branch, tag or sha) names in the mirror of ``url``."""
        path = self.path_for(url)
        out = self._git(path, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        sha = out.strip()
        if not _SHA.match(sha):
            raise SourceError(f"{redact_url(url)}: no commit {ref!r} (after fetching)")
        return sha

    def default_branch(self, url: str) -> str | None:
        """The branch the repository at ``url`` names as its HEAD, or None when it names
        none (asked of the repository itself: a mirror keeps no HEAD of its own)."""
        out = self._git(None, "ls-remote", "--symref", url, "HEAD")
        for line in out.splitlines():
            if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
                return line[len("ref: refs/heads/") : -len("\tHEAD")]
        return None

    def show(self, url: str, sha: str, path: str) -> bytes | None:
        """The content of ``path`` at commit ``sha``, or None when the commit lacks it."""
        mirror = self.path_for(url)
        proc = subprocess.run(
            ["git", "--git-dir", str(mirror), "show", f"{sha}:{path}"],
            capture_output=True,
            env=_env(),
            check=False,
        )
        return proc.stdout if proc.returncode == 0 else None

    def changed_paths(self, url: str, before: str | None, after: str) -> list[str] | None:
        """Paths changed between two commits (None when ``before`` is unknown: treat as all)."""
        if not before or not _SHA.match(before) or set(before) == {"0"}:
            return None
        mirror = self.path_for(url)
        proc = subprocess.run(
            ["git", "--git-dir", str(mirror), "diff", "--name-only", "-z", before, after],
            capture_output=True,
            env=_env(),
            check=False,
        )
        if proc.returncode != 0:
            return None
        return [p for p in proc.stdout.decode("utf-8", "replace").split("\0") if p]

    def merge_base(self, url: str, a: str, b: str) -> str | None:
        """The best common ancestor of two commits (None when they have none, or one is
        missing): what a pull request's changes are counted from."""
        mirror = self.path_for(url)
        proc = subprocess.run(
            ["git", "--git-dir", str(mirror), "merge-base", a, b],
            capture_output=True,
            env=_env(),
            check=False,
        )
        sha = proc.stdout.decode("ascii", "replace").strip()
        return sha if proc.returncode == 0 and _SHA.match(sha) else None

    def checkout(self, url: str, sha: str, dest: Path) -> None:
        """A clean, detached worktree of ``sha`` at ``dest`` (which must not exist yet)."""
        mirror = self.path_for(url)
        with self._locked(mirror):
            self._git(mirror, "worktree", "prune")
            self._git(mirror, "worktree", "add", "--detach", "--force", str(dest), sha)

    def remove(self, url: str, dest: Path) -> None:
        """Remove a worktree made by :meth:`checkout` (its files and the mirror's note of it)."""
        shutil.rmtree(dest, ignore_errors=True)
        mirror = self.path_for(url)
        if mirror.exists():
            with self._locked(mirror):
                self._git(mirror, "worktree", "prune", check=False)

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        lock = path.with_name(path.name + ".lock")
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _git(self, git_dir: Path | None, *args: str, check: bool = True) -> str:
        if shutil.which("git") is None:
            raise SourceError("git is not installed on this machine (needed for git sources)")
        argv = ["git"] + (["--git-dir", str(git_dir)] if git_dir else []) + list(args)
        proc = subprocess.run(argv, capture_output=True, env=_env(), check=False)
        if check and proc.returncode != 0:
            detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            last = detail[-1] if detail else f"exit {proc.returncode}"
            raise SourceError(f"git {args[0]} failed: {redact_url(last)}")
        return proc.stdout.decode("utf-8", "replace")


def _env() -> dict[str, str]:
    return {**os.environ, **_GIT_ENV}
