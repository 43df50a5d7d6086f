"""The cache (artifact store) interface and the content-addressed helpers built on it.

Keys are slash-separated and validated segment by segment (``sparkwing.ids.check_key``).
Layout inside a cache: ``bin/<bundle-key>``, ``artifacts/blobs/<sha256>``,
``artifacts/manifests/<sha256>``, ``memo/<key>``, ``src/<sha256>`` (snapshots of submitted
trees). A cache only ever reads, lists, prunes or
deletes inside these prefixes, so a logs folder nested under its root is never touched.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sparkwing.errors import InvalidKeyError
from sparkwing.ids import check_key, check_prefix

CACHE_PREFIXES: tuple[str, ...] = ("bin/", "artifacts/", "memo/", "src/")
BLOB_PREFIX = "artifacts/blobs/"
MANIFEST_PREFIX = "artifacts/manifests/"
MEMO_PREFIX = "memo/"


def check_cache_key(key: str) -> str:
    """``key``, validated and inside one of the cache prefixes."""
    check_key(key, "cache key")
    if not key.startswith(CACHE_PREFIXES):
        raise InvalidKeyError(
            f"cache key {key!r} is outside the cache prefixes ({', '.join(CACHE_PREFIXES)})"
        )
    return key


def covered_prefixes(prefix: str) -> list[str]:
    """The cache prefixes a listing of ``prefix`` covers whole (for "" or "mem": several or
    one, never the rest of the store); empty when ``prefix`` lies inside a cache prefix."""
    check_prefix(prefix, "cache prefix")
    roots = [p for p in CACHE_PREFIXES if p.startswith(prefix)]
    if not roots and not prefix.startswith(CACHE_PREFIXES):
        raise InvalidKeyError(
            f"cache prefix {prefix!r} is outside the cache prefixes ({', '.join(CACHE_PREFIXES)})"
        )
    return roots


@dataclass(frozen=True)
class ObjectInfo:
    """A stored object's key, size, modification time and etag."""

    key: str
    size: int
    modified: float  # POSIX seconds
    etag: str | None = None


class Cache(abc.ABC):
    """A key/value object store for immutable-by-convention blobs."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when absent."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write atomically: a reader sees the old object, the new one, or nothing."""

    @abc.abstractmethod
    def get_file(self, key: str, dest: Path) -> bool:
        """Stream the object into ``dest`` (atomically); False when absent."""

    @abc.abstractmethod
    def put_file(self, key: str, src: Path) -> None:
        """Stream ``src`` into the object, atomically."""

    @abc.abstractmethod
    def has(self, key: str) -> bool: ...

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo | None: ...

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """True if something was deleted."""

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix`` (which must lie in a cache prefix)."""

    # -- optional conditional-write capability ----------------------------------------
    @property
    def conditional_writes(self) -> bool:
        """Whether put_if_absent / put_if_match are enforced by this store (stores that may
        ignore preconditions probe it on first use); the methods below refuse where not."""
        return False

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        from sparkwing.errors import NotSupportedError

        raise NotSupportedError(f"{type(self).__name__} does not support conditional writes")

    def put_if_absent(self, key: str, data: bytes) -> str:
        """Create the object only if absent; returns its etag or raises PreconditionFailed."""
        from sparkwing.errors import NotSupportedError

        raise NotSupportedError(f"{type(self).__name__} does not support conditional writes")

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        """Replace the object only if its etag is ``etag``; returns the new etag."""
        from sparkwing.errors import NotSupportedError

        raise NotSupportedError(f"{type(self).__name__} does not support conditional writes")

    # -- optional local-file capability -----------------------------------------------
    def adopt_file(self, key: str, src: Path) -> None:
        """Make ``src`` the object, atomically, consuming it: a store keeping objects as
        local files moves it in when it can (no copy); the default copies then deletes it."""
        self.put_file(key, src)
        Path(src).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        """Where the object lives as a plain local file (present or not), for reading
        without a copy; None when this store does not keep objects as local files."""
        return None

    def describe(self) -> str:
        return type(self).__name__

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


def sha256_bytes(data: bytes) -> str:
    import hashlib  # loads OpenSSL: only once something is hashed

    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    import hashlib  # loads OpenSSL: only once something is hashed

    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
