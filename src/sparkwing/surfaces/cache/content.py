"""Content-addressed blobs and output manifests over any :class:`Cache`, verified on read.

A blob whose bytes do not hash to its name is a miss plus a warning, never used.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sparkwing import _log
from sparkwing.errors import InvalidKeyError, StorageError, UsageError
from sparkwing.surfaces.cache.base import (
    BLOB_PREFIX,
    MANIFEST_PREFIX,
    Cache,
    sha256_bytes,
    sha256_file,
)

log = _log.get("sparkwing.cache")

_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ManifestEntry:
    """One output file: its path relative to the workspace (with '/'), blob digest, size, mode."""

    path: str
    digest: str
    size: int
    mode: int


def _check_digest(digest: str) -> str:
    if not _DIGEST_RE.match(digest):
        raise InvalidKeyError(f"{digest!r} is not a sha256 hex digest")
    return digest


def _warn_corrupt(what: str, digest: str) -> None:
    log.warning("cache %s %s failed verification (hash mismatch); treating as a miss", what, digest)


# -- blobs ---------------------------------------------------------------------------
def store_blob_bytes(cache: Cache, data: bytes) -> str:
    """Store ``data`` under ``artifacts/blobs/<sha256>`` unless present; returns the digest."""
    digest = sha256_bytes(data)
    key = BLOB_PREFIX + digest
    if not cache.has(key):
        cache.put(key, data)
    return digest


def store_blob_file(cache: Cache, path: Path) -> str:
    """Like :func:`store_blob_bytes` for a file, streamed; skips the upload when present."""
    digest = sha256_file(Path(path))
    key = BLOB_PREFIX + digest
    if not cache.has(key):
        cache.put_file(key, Path(path))
    return digest


def _get_verified(cache: Cache, key: str, digest: str, what: str) -> bytes | None:
    data = cache.get(key)
    if data is None:
        return None
    if sha256_bytes(data) != digest:
        _warn_corrupt(what, digest)
        return None
    return data


def fetch_blob_bytes(cache: Cache, digest: str) -> bytes | None:
    """The blob's bytes, or None when absent or when they do not hash to ``digest``."""
    return _get_verified(cache, BLOB_PREFIX + _check_digest(digest), digest, "blob")


def fetch_blob_file(cache: Cache, digest: str, dest: Path) -> bool:
    """Download the blob into ``dest`` atomically after verifying it; False on a miss.

    On a hash mismatch the download is discarded and ``dest`` is left untouched.
    """
    key = BLOB_PREFIX + _check_digest(digest)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name[:64]}.sparkwing-fetch-{secrets.token_hex(6)}"
    try:
        if not cache.get_file(key, tmp):
            return False
        if sha256_file(tmp) != digest:
            _warn_corrupt("blob", digest)
            return False
        os.replace(tmp, dest)
        return True
    finally:
        tmp.unlink(missing_ok=True)


# -- manifests -----------------------------------------------------------------------
def _manifest_bytes(entries: list[ManifestEntry]) -> bytes:
    # Canonical (sorted entries and keys, no whitespace) so equal outputs share a digest.
    doc = {
        "version": _MANIFEST_VERSION,
        "entries": [asdict(e) for e in sorted(entries, key=lambda e: e.path)],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def store_manifest(cache: Cache, entries: list[ManifestEntry]) -> str:
    """Store the manifest under ``artifacts/manifests/<sha256>``; returns the digest."""
    data = _manifest_bytes(entries)
    digest = sha256_bytes(data)
    key = MANIFEST_PREFIX + digest
    if not cache.has(key):
        cache.put(key, data)
    return digest


def _parse_entry(item: Any) -> ManifestEntry:
    if not isinstance(item, dict):
        raise ValueError("entry is not an object")
    path, digest, size, mode = (item.get(k) for k in ("path", "digest", "size", "mode"))
    if not (isinstance(path, str) and isinstance(digest, str)):
        raise ValueError("entry path/digest must be strings")
    if not (isinstance(size, int) and isinstance(mode, int)):
        raise ValueError("entry size/mode must be integers")
    return ManifestEntry(path=path, digest=digest, size=size, mode=mode)


def load_manifest(cache: Cache, digest: str) -> list[ManifestEntry] | None:
    """The manifest's entries, or None when absent, corrupt (warned) or unreadable."""
    data = _get_verified(cache, MANIFEST_PREFIX + _check_digest(digest), digest, "manifest")
    if data is None:
        return None
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("version") != _MANIFEST_VERSION:
            raise ValueError("unknown manifest version")
        items = doc.get("entries")
        if not isinstance(items, list):
            raise ValueError("entries is not a list")
        return [_parse_entry(item) for item in items]
    except ValueError as exc:
        log.warning("cache manifest %s is unreadable (%s); treating as a miss", digest, exc)
        return None


# -- workspace outputs ---------------------------------------------------------------
def _check_glob(pattern: str) -> str:
    if not pattern or pattern.startswith(("/", "\\")) or Path(pattern).is_absolute():
        raise UsageError(f"output glob {pattern!r} must be a non-empty path relative to the job")
    if ".." in pattern.replace("\\", "/").split("/"):
        raise UsageError(f"output glob {pattern!r} must not contain '..'")
    return pattern


def collect_outputs(root: Path, globs: list[str]) -> list[Path]:
    """Files under ``root`` matching any glob (``**`` recursive), as ``root / rel``, sorted.

    A pattern ending in ``**`` matches every file below it. Matches that resolve outside
    ``root`` (through symlinks) are skipped.
    """
    root = Path(root)
    real_root = root.resolve()
    found: dict[str, Path] = {}
    for pattern in globs:
        _check_glob(pattern)
        # pathlib's "x/**" matches only folders before Python 3.13; we mean their files.
        if pattern.rstrip("/").endswith("**"):
            pattern = pattern.rstrip("/") + "/*"
        for match in root.glob(pattern):
            if not match.is_file():
                continue
            if not match.resolve().is_relative_to(real_root):
                continue
            rel = match.relative_to(root).as_posix()
            found.setdefault(rel, root / rel)
    return [found[rel] for rel in sorted(found)]


def upload_outputs(cache: Cache, root: Path, globs: list[str]) -> str | None:
    """Store every matched file as a blob and their manifest; None when nothing matched."""
    root = Path(root)
    entries = []
    for path in collect_outputs(root, globs):
        st = path.stat()
        entries.append(
            ManifestEntry(
                path=path.relative_to(root).as_posix(),
                digest=store_blob_file(cache, path),
                size=st.st_size,
                mode=stat.S_IMODE(st.st_mode),
            )
        )
    if not entries:
        return None
    return store_manifest(cache, entries)


def _check_entry_path(entry: ManifestEntry, digest: str) -> str:
    parts = entry.path.split("/")
    bad = (
        not entry.path
        or entry.path.startswith("/")
        or "\\" in entry.path
        or any(p in ("", ".", "..") for p in parts)
        or any(ord(c) < 32 or ord(c) == 127 for c in entry.path)
    )
    if bad:
        raise StorageError(f"cache manifest {digest} has an unsafe path {entry.path!r}; refusing")
    _check_digest(entry.digest)
    return entry.path


def restore_manifest(cache: Cache, digest: str, root: Path) -> int:
    """Write every file of the manifest under ``root`` with its mode; returns the count.

    Every entry path is checked before anything is written, so a hostile manifest writes
    nothing. A missing or corrupt blob raises :class:`StorageError`.
    """
    entries = load_manifest(cache, digest)
    if entries is None:
        raise StorageError(f"cache manifest {digest} is missing or corrupt")
    for entry in entries:
        _check_entry_path(entry, digest)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    real_root = root.resolve()
    for entry in entries:
        dest = root / entry.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A symlinked folder already in the workspace must not redirect the write.
        if not dest.parent.resolve().is_relative_to(real_root):
            raise StorageError(f"cache output {entry.path!r} would be written outside {root}")
        if not fetch_blob_file(cache, entry.digest, dest):
            raise StorageError(
                f"cache blob {entry.digest} for {entry.path!r} is missing or corrupt"
            )
        os.chmod(dest, entry.mode & 0o777)
    return len(entries)
