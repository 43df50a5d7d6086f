"""The controller's spool: a private folder where streamed bodies wait between a socket and
the cache. For a cache of local files it sits in the cache's own root (on its filesystem),
so an upload is renamed into place rather than copied."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparkwing.surfaces.cache.base import Cache

_LOCK = "owner.lock"


class Spool:
    """A folder only this process writes in, removed by :meth:`close`. Its owner holds a
    lock on it, so a folder a crashed controller left behind is recognised and swept."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Locked before it takes its name: a sweeper never finds it unlocked.
        pending = path / f"{_LOCK}.new"
        self._lock_fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.replace(pending, path / _LOCK)
        except BaseException:
            os.close(self._lock_fd)
            raise

    def file(self, what: str) -> Path:
        """A fresh name in the spool (nothing is created)."""
        return self.path / f"{what}-{secrets.token_hex(8)}"

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)


def open_spool(cache: Cache) -> Spool:
    from sparkwing.surfaces.cache.filesystem import INTERNAL_PREFIX, FilesystemCache

    if isinstance(cache, FilesystemCache):
        prefix = INTERNAL_PREFIX + "spool-"  # reserved: never a key, never listed
        try:
            cache.root.mkdir(parents=True, exist_ok=True)
            _sweep(cache.root, prefix)
            return _create(cache.root, prefix)
        except OSError:
            pass  # a root it cannot write (or lock in): the system's temp folder will do
    return _create(None, "sparkwing-controller-")


def _create(parent: Path | None, prefix: str) -> Spool:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        return Spool(path)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def _sweep(root: Path, prefix: str) -> None:
    """Remove spools whose owner is gone (its lock is free): leftovers of a crash."""
    for entry in os.scandir(root):
        if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            fd = os.open(Path(entry.path) / _LOCK, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue  # being created, or being removed
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live controller's
        finally:
            os.close(fd)
        shutil.rmtree(entry.path, ignore_errors=True)
