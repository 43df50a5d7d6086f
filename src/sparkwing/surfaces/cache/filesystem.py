"""The filesystem cache: one file per key under a root, atomic writes, sharded blob folders.

Only the cache prefixes (``bin/``, ``artifacts/``, ``memo/``) are ever read, listed or
deleted, so a logs folder (or anything else) nested under the root is never touched.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from sparkwing.errors import InvalidKeyError, PreconditionFailedError, StorageError
from sparkwing.paths import PRIVATE_FILE_MODE, make_private_dirs
from sparkwing.surfaces.cache.base import (
    BLOB_PREFIX,
    MANIFEST_PREFIX,
    Cache,
    ObjectInfo,
    check_cache_key,
    covered_prefixes,
    sha256_bytes,
)

# Content-addressed folders would hold millions of entries flat; a two-character shard
# folder after the prefix keeps each directory small. The logical key never shows it.
SHARDED_PREFIXES: tuple[str, ...] = (BLOB_PREFIX, MANIFEST_PREFIX)

# Temp and lock files live beside the objects they protect (same filesystem, so
# os.replace is atomic); key segments with this prefix are refused so they can never
# collide with or be listed as objects.
INTERNAL_PREFIX = ".sparkwing-"
_TMP_PREFIX = INTERNAL_PREFIX + "tmp-"
_LOCK_PREFIX = INTERNAL_PREFIX + "lock-"
_CHUNK = 1 << 20


def _copy(src: BinaryIO, dest: BinaryIO) -> None:
    # shutil only here: importing it (with its compression modules) costs every run.
    import shutil

    shutil.copyfileobj(src, dest, _CHUNK)


_Writer = Callable[[BinaryIO], object]


class FilesystemCache(Cache):
    """A :class:`Cache` over a local directory; conditional writes use per-key flock."""

    def __init__(self, root: Path, *, fsync: bool = False) -> None:
        self.root = Path(root).expanduser()
        self.fsync = fsync

    # -- key <-> path ----------------------------------------------------------------
    def _path(self, key: str) -> Path:
        check_cache_key(key)
        if key + "/" in SHARDED_PREFIXES:
            raise InvalidKeyError(f"cache key {key!r} is reserved for content-addressed objects")
        if any(part.startswith(INTERNAL_PREFIX) for part in key.split("/")):
            raise InvalidKeyError(f"cache key {key!r} uses the reserved prefix {INTERNAL_PREFIX!r}")
        for sharded in SHARDED_PREFIXES:
            if key.startswith(sharded):
                rest = key[len(sharded) :]
                return self.root / sharded / rest.split("/", 1)[0][:2] / rest
        return self.root / key

    def _key(self, rel_parts: tuple[str, ...]) -> str | None:
        """The logical key of a file at ``root/<rel_parts>``; None if no key maps there."""
        rel = "/".join(rel_parts)
        for sharded in SHARDED_PREFIXES:
            if rel.startswith(sharded):
                shard, _, rest = rel[len(sharded) :].partition("/")
                if not rest or rest.split("/", 1)[0][:2] != shard:
                    return None  # a stray file, not written by this cache
                return sharded + rest
        return rel

    # -- reads -----------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise self._error("read", key, exc) from exc

    def get_file(self, key: str, dest: Path) -> bool:
        path = self._path(key)
        dest = Path(dest)
        try:
            src = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        except OSError as exc:
            raise self._error("read", key, exc) from exc
        with src:
            # A restored file is the job's, not the cache's: the usual modes (umask applies).
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._write_tmp(dest.parent, lambda fh: _copy(src, fh), mode=0o666)
        os.replace(tmp, dest)
        return True

    def has(self, key: str) -> bool:
        return self._path(key).is_file()

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return ObjectInfo(key=key, size=st.st_size, modified=st.st_mtime)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        roots = covered_prefixes(prefix) or [self._walk_start(prefix)]
        found: list[ObjectInfo] = []
        for start in roots:
            directory = self.root / start
            parts = tuple(p for p in start.split("/") if p)
            for info in self._walk(directory, parts):
                if info.key.startswith(prefix):
                    found.append(info)
        found.sort(key=lambda info: info.key)
        return iter(found)

    def _walk_start(self, prefix: str) -> str:
        """The deepest physical folder (relative to root, with '/') holding every match."""
        for sharded in SHARDED_PREFIXES:
            if prefix.startswith(sharded):
                rest = prefix[len(sharded) :]
                first = rest.split("/", 1)[0]
                if len(first) < 2 and "/" not in rest:
                    return sharded  # a one-character start spans several shards
                directory = rest.rsplit("/", 1)[0] + "/" if "/" in rest else ""
                return f"{sharded}{first[:2]}/{directory}"
        return prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""

    def _walk(self, directory: Path, parts: tuple[str, ...]) -> Iterator[ObjectInfo]:
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.name.startswith(INTERNAL_PREFIX):
                continue
            # Symlinks are never followed, so a walk cannot leave the cache root.
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path), (*parts, entry.name))
            elif entry.is_file(follow_symlinks=False):
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted while we walked
                key = self._key((*parts, entry.name))
                if key is None:
                    continue
                yield ObjectInfo(key=key, size=st.st_size, modified=st.st_mtime)

    # -- writes ----------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> None:
        self._replace(key, lambda fh: fh.write(data))

    def put_file(self, key: str, src: Path) -> None:
        self._path(key)  # validate before touching the source
        # Opened first so a bad source is the caller's OSError, not a cache write failure.
        with Path(src).open("rb") as fsrc:
            self._replace(key, lambda fh: _copy(fsrc, fh))

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        except OSError as exc:
            raise self._error("delete", key, exc) from exc
        return True

    def adopt_file(self, key: str, src: Path) -> None:
        path = self._path(key)  # validate before touching the source
        src = Path(src)
        st = os.lstat(src)  # a missing source is the caller's OSError, as in put_file
        # Only a regular file with no other name is moved in: a symlink or a directory must
        # never become an object, and an extra hard link could change one in place later.
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            super().adopt_file(key, src)
            return
        try:
            make_private_dirs(path.parent)
            # Moved in as is, so drop the group and other bits here (the owner's stay).
            os.chmod(src, stat.S_IMODE(st.st_mode) & 0o700)
            if self.fsync:
                fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            try:
                os.replace(src, path)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                super().adopt_file(key, src)  # another filesystem: copy, still atomic
                return
            self._sync_dir(path.parent)
        except OSError as exc:
            raise self._error("write", key, exc) from exc

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def _replace(self, key: str, write: _Writer) -> None:
        path = self._path(key)
        try:
            make_private_dirs(path.parent)
            tmp = self._write_tmp(path.parent, write)
            try:
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            self._sync_dir(path.parent)
        except OSError as exc:
            raise self._error("write", key, exc) from exc

    def _sync_dir(self, directory: Path) -> None:
        if self.fsync:  # a rename itself is durable only once its folder is synced
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def _write_tmp(self, directory: Path, write: _Writer, mode: int = PRIVATE_FILE_MODE) -> Path:
        """Write a fresh temp file in ``directory``; on any failure nothing is left behind."""
        tmp = directory / f"{_TMP_PREFIX}{os.urandom(8).hex()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def _error(self, action: str, key: str, exc: OSError) -> StorageError:
        reason = exc.strerror or type(exc).__name__
        if exc.errno in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
            reason = "a key and a key prefix collide on disk"
        return StorageError(f"cache {self.root}: cannot {action} {key!r}: {reason}")

    # -- conditional writes ----------------------------------------------------------
    @property
    def conditional_writes(self) -> bool:
        return True

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        data = self.get(key)
        return None if data is None else (data, sha256_bytes(data))

    def put_if_absent(self, key: str, data: bytes) -> str:
        with self._locked(key):
            if self.has(key):
                raise PreconditionFailedError(f"cache key {key!r} already exists")
            self.put(key, data)
        return sha256_bytes(data)

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        with self._locked(key):
            current = self.get_with_etag(key)
            if current is None:
                raise PreconditionFailedError(f"cache key {key!r} does not exist")
            if current[1] != etag:
                raise PreconditionFailedError(f"cache key {key!r} changed (etag mismatch)")
            self.put(key, data)
        return sha256_bytes(data)

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        path = self._path(key)
        # Lock files are never deleted: unlinking one while a peer waits on it would let
        # two holders lock different inodes.
        import hashlib  # loads OpenSSL: only once something is hashed

        digest = hashlib.sha256(path.name.encode()).hexdigest()[:32]
        lock = path.parent / f"{_LOCK_PREFIX}{digest}"
        try:
            make_private_dirs(path.parent)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        except OSError as exc:
            raise self._error("lock", key, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def describe(self) -> str:
        return f"filesystem cache {self.root}"
