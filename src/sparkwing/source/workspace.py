"""A queued run's workspace on a worker: ``$SPARKWING_HOME/work/<run_id>``, holding a clean
worktree of its git commit or its unpacked snapshot, locked while a worker uses it, so a
worker starting later removes only what a killed one left behind."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkwing.paths import local_dir, make_private_dirs
from sparkwing.source import snapshot
from sparkwing.source.mirror import Mirrors, SourceError
from sparkwing.source.record import describe_source

if TYPE_CHECKING:
    from sparkwing.surfaces.cache.base import Cache


def default_root() -> Path:
    """Where this machine's run workspaces live: ``$SPARKWING_HOME/work``."""
    return local_dir() / "work"


def prepare(
    source: dict[str, Any], cache: Cache | None, dest: Path, *, mirrors: Mirrors | None = None
) -> Path:
    """Materialise ``source`` (git or snapshot) at ``dest``, which must not exist yet;
    returns the project root inside it. Raises SourceError naming what is missing."""
    kind = source.get("kind")
    if kind == "git":
        url, sha = str(source.get("url", "")), str(source.get("sha", ""))
        if not url or not sha:
            raise SourceError("the run's git source names no url or commit")
        mirrors = mirrors or Mirrors()
        # The recorded sha, not the ref: the run is of the commit it was submitted at. A
        # mirror that has it already (the run's other jobs) is not fetched again.
        try:
            mirrors.resolve(url, sha)
        except SourceError:
            mirrors.fetch(url)
            mirrors.resolve(url, sha)
        mirrors.checkout(url, sha, dest)
    elif kind == "snapshot":
        if cache is None:
            raise SourceError("the run's snapshot needs a cache surface, and there is none")
        key, sha256 = str(source.get("key", "")), str(source.get("sha256", ""))
        make_private_dirs(dest.parent)
        with tempfile.TemporaryDirectory(prefix=".snapshot-", dir=dest.parent) as tmp:
            archive = Path(tmp) / "src.tar.gz"
            snapshot.download(cache, key, sha256, archive)
            snapshot.unpack(archive, dest)
    else:
        raise SourceError(f"unknown source kind {kind!r}")
    root = dest / str(source.get("subdir") or "")
    if not (root / ".sparkwing").is_dir():
        raise SourceError(f"{describe_source(source)} has no .sparkwing/ folder")
    return root


@dataclass
class Held:
    """A workspace a worker holds: ``path`` exists while ``fd`` (its lock) is open."""

    path: Path
    lock: Path
    fd: int
    source: dict[str, Any]


class Workspaces:
    """The run workspaces under ``root``: ``<run_id>/`` beside its lock ``<run_id>.lock``.
    A folder whose lock is gone was kept on purpose (``--keep-failed``)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_root()

    def hold(self, run_id: str, source: dict[str, Any]) -> Held:
        """Lock the workspace of ``run_id`` and clear what an earlier attempt left there."""
        make_private_dirs(self.root)
        lock = self.root / f"{run_id}.lock"
        fd = os.open(lock, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        held = Held(self.root / run_id, lock, fd, source)
        _remove_tree(held.path, source)
        return held

    def release(self, held: Held, *, keep: bool) -> None:
        """Remove the workspace (``keep``: leave its files, drop only the lock)."""
        try:
            if not keep:
                _remove_tree(held.path, held.source)
            held.lock.unlink(missing_ok=True)
        finally:
            os.close(held.fd)

    def clean_stale(self) -> list[Path]:
        """Remove the workspaces of workers that died (their lock is free); those in use or
        kept on purpose stay. Returns what was removed."""
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        for lock in sorted(self.root.glob("*.lock")):
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # a live worker holds it
            try:
                path = self.root / lock.name.removesuffix(".lock")
                if path.exists():
                    _remove_tree(path, {})
                    removed.append(path)
                lock.unlink(missing_ok=True)
            finally:
                os.close(fd)
        return removed


def _remove_tree(path: Path, source: dict[str, Any]) -> None:
    from sparkwing.bundle.store import LocalStore

    if not os.path.lexists(path):
        return
    # The bundle cache keeps a small memo per project folder (by its resolved path): this
    # one will not come back.
    project = (path / str(source.get("subdir") or "") / ".sparkwing").resolve()
    if source.get("kind") == "git" and source.get("url"):
        Mirrors().remove(str(source["url"]), path)
    else:
        shutil.rmtree(path, ignore_errors=True)
    LocalStore().project_path(project).unlink(missing_ok=True)
