"""The object-store adapter interface every cloud implements.

Keys are relative to the store's configured prefix. Errors map onto the sparkwing
hierarchy: a missing object is ``None`` (or NotFoundError where noted), a lost
precondition is PreconditionFailedError, an unreachable endpoint is StorageError with
one line naming the endpoint.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ObjectMeta:
    key: str  # relative to the store's prefix
    size: int
    etag: str  # opaque version token used by put_if_match (S3/Azure ETag, GCS generation)
    modified: float  # POSIX seconds


class ObjectStore(abc.ABC):
    """A bucket (plus key prefix) of one cloud."""

    @abc.abstractmethod
    def get(self, key: str) -> tuple[bytes, ObjectMeta] | None:
        """The object's bytes and metadata, or None when absent."""

    @abc.abstractmethod
    def get_range(self, key: str, start: int, end: int | None = None) -> bytes | None:
        """Bytes ``[start, end)`` (to the end when ``end`` is None); None when absent."""

    @abc.abstractmethod
    def head(self, key: str) -> ObjectMeta | None: ...

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> ObjectMeta:
        """Unconditional write; readers see the old or the new object, never a mix."""

    @abc.abstractmethod
    def put_file(self, key: str, src: Path) -> ObjectMeta:
        """Stream a file (multipart for large files) without reading it whole into memory."""

    @abc.abstractmethod
    def get_file(self, key: str, dest: Path) -> ObjectMeta | None:
        """Stream the object into ``dest`` (written atomically); None when absent."""

    @abc.abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> ObjectMeta:
        """Create only if absent, else PreconditionFailedError."""

    @abc.abstractmethod
    def put_if_match(self, key: str, data: bytes, etag: str) -> ObjectMeta:
        """Replace only if the current etag is ``etag``, else PreconditionFailedError."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """True if something was deleted (stores that cannot tell return True)."""

    def delete_many(self, keys: Sequence[str]) -> None:
        """Delete every key (in bulk where the store can); keys already gone are ignored."""
        for key in keys:
            self.delete(key)

    @abc.abstractmethod
    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectMeta]:
        """Objects under ``prefix`` in lexical key order, starting after ``start_after``."""

    @abc.abstractmethod
    def describe(self) -> str:
        """``s3://bucket/prefix`` style location, without credentials."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
