"""The local bundle cache under ``local_dir()/bundles``: one object, one metadata file and,
for bundles with requirements, one unpacked tree per key; per-key locks; LRU pruning.

Layout: ``objects/<key>.swb`` (the verified bundle object), ``objects/<key>.json`` (digest,
where it came from, where it was uploaded), ``objects/<key>.hits`` (hit count and last use),
``trees/<key>/`` (its unpacked ``src/`` and ``site-packages/``), ``locks/<key>.build`` and
``.use``, ``projects/<id>.json`` (each project's memo of file hashes and last bundle),
``logs/<key>.log`` (installer output), ``work/`` (builds and unpacks in progress).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from sparkwing.errors import InvalidKeyError
from sparkwing.ids import check_segment
from sparkwing.paths import make_private_dirs

# A build or unpack folder this old belongs to a process that died: prune may remove it.
STALE_WORK_SECONDS = 3600.0
TREE_MARKER = ".sparkwing-bundle"


def iso(seconds: float | None) -> str | None:
    """POSIX seconds as the UTC ISO time every record uses."""
    if seconds is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


def check_bundle_key(key: str) -> str:
    check_segment(key, "bundle key")
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise InvalidKeyError(f"{key!r} is not a bundle key (64 hex digits)")
    return key


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Atomically (temp + rename), so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{os.urandom(6).hex()}-{path.name}"
    tmp.write_text(json.dumps(doc, sort_keys=True, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def tree_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


class Entry(NamedTuple):
    """One bundle of the local cache, as `cache info` shows it."""

    key: str
    size: int  # the object plus its unpacked tree
    object_size: int
    tree_size: int
    hits: int
    created: float | None  # POSIX seconds
    last_used: float | None
    source: str | None  # how it arrived here: built or remote
    project: str | None
    requirements: str | None
    uploaded: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "size": self.size,
            "object_size": self.object_size,
            "tree_size": self.tree_size,
            "hits": self.hits,
            "created_at": iso(self.created),
            "last_used_at": iso(self.last_used),
            "source": self.source,
            "project": self.project,
            "requirements": self.requirements,
            "uploaded": list(self.uploaded),
        }


class LocalStore:
    """The local bundle cache of this machine (``root`` defaults to ``local_dir()/bundles``)."""

    def __init__(self, root: Path | None = None) -> None:
        if root is None:
            from sparkwing.paths import local_dir

            root = local_dir() / "bundles"
        self.root = root

    # -- paths ------------------------------------------------------------------------
    def object_path(self, key: str) -> Path:
        return self.root / "objects" / f"{check_bundle_key(key)}.swb"

    def meta_path(self, key: str) -> Path:
        return self.root / "objects" / f"{check_bundle_key(key)}.json"

    def tree_path(self, key: str) -> Path:
        return self.root / "trees" / check_bundle_key(key)

    def hits_path(self, key: str) -> Path:
        """One byte appended per hit: its size is the hit count, its mtime the last use (far
        cheaper on every run than rewriting the metadata file)."""
        return self.root / "objects" / f"{check_bundle_key(key)}.hits"

    def log_path(self, key: str) -> Path:
        return self.root / "logs" / f"{check_bundle_key(key)}.log"

    def project_path(self, sparkwing_dir: Path) -> Path:
        ident = hashlib.sha256(str(sparkwing_dir).encode(errors="surrogateescape")).hexdigest()
        return self.root / "projects" / f"{ident[:32]}.json"

    def work_dir(self) -> Path:
        """A fresh private folder on the same filesystem as the cache (renames stay atomic)."""
        path = self.root / "work" / f"{os.getpid()}-{os.urandom(6).hex()}"
        path.mkdir(parents=True)
        return path

    # -- locks ------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(
        self, key: str, kind: str, *, shared: bool = False, blocking: bool = True
    ) -> Iterator[bool]:
        """Hold ``key``'s ``build`` lock (finding, fetching or building it: one process at a
        time) or its ``use`` lock (shared by the runs using its tree; prune takes it
        exclusively). Yields False when not blocking and the lock is taken."""
        path = self.root / "locks" / f"{check_bundle_key(key)}.{kind}"
        make_private_dirs(path.parent)  # the first folder a run creates: SPARKWING_HOME too
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
            try:
                fcntl.flock(fd, mode | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    # -- metadata ---------------------------------------------------------------------
    def read_meta(self, key: str) -> dict[str, Any]:
        return read_json(self.meta_path(key)) or {}

    def write_meta(self, key: str, meta: dict[str, Any]) -> None:
        write_json(self.meta_path(key), meta)

    def record_use(self, key: str, *, hit: bool) -> None:
        fd = os.open(self.hits_path(key), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if hit:
                os.write(fd, b".")
            else:
                os.utime(fd)
        finally:
            os.close(fd)

    def remove(self, key: str, *, unused: bool | None = None) -> None:
        """Forget ``key`` here: object, metadata and tree (the caller holds its build lock;
        ``unused=True`` when it also holds the use lock)."""
        for path in (self.object_path(key), self.meta_path(key), self.hits_path(key)):
            path.unlink(missing_ok=True)
        self.retire_tree(key, unused=unused)

    def retire_tree(self, key: str, *, unused: bool | None = None) -> None:
        """Move ``key``'s tree out of the way (a reader never sees half a tree) and delete it
        unless a run still uses it (then prune deletes it once it is old)."""
        tree = self.tree_path(key)
        if not tree.exists():
            return
        doomed = self.root / "work" / f"retired-{os.urandom(6).hex()}"
        doomed.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tree, doomed)
            os.utime(doomed)  # its age now counts from retirement (see _prune_work)
        except OSError:
            return
        if unused is None:
            with self.locked(key, "use", blocking=False) as free:
                unused = free
        if unused:
            rmtree(doomed)

    # -- listing and pruning ----------------------------------------------------------
    def keys(self) -> list[str]:
        folder = self.root / "objects"
        found: set[str] = set()
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(folder):
                stem, _, ext = entry.name.partition(".")
                if ext in ("swb", "json") and len(stem) == 64:
                    found.add(stem)
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.root / "trees"):
                if len(entry.name) == 64:
                    found.add(entry.name)
        good = []
        for key in sorted(found):
            with contextlib.suppress(InvalidKeyError):
                good.append(check_bundle_key(key))
        return good

    def entry(self, key: str) -> Entry:
        meta = self.read_meta(key)
        try:
            object_size = self.object_path(key).stat().st_size
        except OSError:
            object_size = 0
        tree = self.tree_path(key)
        tree_size = int(meta.get("tree_size") or 0) if tree.exists() else 0
        if tree.exists() and not tree_size:
            tree_size = tree_bytes(tree)
        last_used: float | None
        try:
            st = self.hits_path(key).stat()
            hits, last_used = st.st_size, st.st_mtime
        except OSError:
            hits, last_used = 0, _seconds(meta.get("created"))
        return Entry(
            key=key,
            size=object_size + tree_size,
            object_size=object_size,
            tree_size=tree_size,
            hits=hits,
            created=_seconds(meta.get("created")),
            last_used=last_used,
            source=meta.get("source"),
            project=meta.get("project"),
            requirements=meta.get("requirements"),
            uploaded=tuple(meta.get("uploaded") or ()),
        )

    def entries(self) -> list[Entry]:
        return [self.entry(key) for key in self.keys()]

    def prune(
        self, max_bytes: int | None = None, older_than: float | None = None
    ) -> tuple[list[Entry], list[Entry]]:
        """Remove entries unused for ``older_than`` seconds, then the least recently used until
        the total is at most ``max_bytes``. Entries in use (locked) are kept. Returns
        (removed, skipped because in use)."""
        entries = sorted(self.entries(), key=lambda e: e.last_used or 0.0)
        total = sum(e.size for e in entries)
        cutoff = time.time() - older_than if older_than is not None else None
        removed: list[Entry] = []
        busy: list[Entry] = []
        for entry in entries:
            stale = cutoff is not None and (entry.last_used or 0.0) < cutoff
            over = max_bytes is not None and total > max_bytes
            if not (stale or over):
                continue
            with (
                self.locked(entry.key, "build", blocking=False) as building,
                self.locked(entry.key, "use", blocking=False) as unused,
            ):
                if not (building and unused):
                    busy.append(entry)
                    continue
                self.remove(entry.key, unused=True)
            removed.append(entry)
            total -= entry.size
        self._prune_work()
        return removed, busy

    def _prune_work(self) -> None:
        """Folders of builds and unpacks whose process died."""
        cutoff = time.time() - STALE_WORK_SECONDS
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.root / "work"):
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        rmtree(Path(entry.path))


def rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
