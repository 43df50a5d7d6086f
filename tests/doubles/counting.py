"""A pass-through ObjectStore that counts the requests made through it (benchmarks, tests
that bound how many requests an operation costs)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from sparkwing.surfaces.objectstore.base import ObjectMeta, ObjectStore

LIST_PAGE = 1000  # objects per list response on S3, GCS and Azure


class CountingObjectStore(ObjectStore):
    """Wraps ``inner``; ``counts[op]`` is how many requests of that kind went through.

    A listing counts one request per started page of :data:`LIST_PAGE` objects.
    """

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    def _count(self, op: str, n: int = 1) -> None:
        with self._count_lock:  # callers may share one store across threads
            self.counts[op] += n

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def reset(self) -> None:
        self.counts.clear()

    def get(self, key: str) -> tuple[bytes, ObjectMeta] | None:
        self._count("get")
        return self.inner.get(key)

    def get_range(self, key: str, start: int, end: int | None = None) -> bytes | None:
        self._count("get")
        return self.inner.get_range(key, start, end)

    def head(self, key: str) -> ObjectMeta | None:
        self._count("head")
        return self.inner.head(key)

    def put(self, key: str, data: bytes) -> ObjectMeta:
        self._count("put")
        return self.inner.put(key, data)

    def put_file(self, key: str, src: Path) -> ObjectMeta:
        self._count("put")
        return self.inner.put_file(key, src)

    def get_file(self, key: str, dest: Path) -> ObjectMeta | None:
        self._count("get")
        return self.inner.get_file(key, dest)

    def put_if_absent(self, key: str, data: bytes) -> ObjectMeta:
        self._count("put")
        return self.inner.put_if_absent(key, data)

    def put_if_match(self, key: str, data: bytes, etag: str) -> ObjectMeta:
        self._count("put")
        return self.inner.put_if_match(key, data, etag)

    def delete(self, key: str) -> bool:
        self._count("delete")
        return self.inner.delete(key)

    def delete_many(self, keys: Sequence[str]) -> None:
        self._count("delete", max(1, -(-len(keys) // LIST_PAGE)))
        self.inner.delete_many(keys)

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectMeta]:
        self._count("list")
        return self._pages(self.inner.list(prefix, start_after=start_after))

    def _pages(self, listing: Iterator[ObjectMeta]) -> Iterator[ObjectMeta]:
        for seen, meta in enumerate(listing, 1):
            if seen > 1 and (seen - 1) % LIST_PAGE == 0:
                self._count("list")
            yield meta

    def describe(self) -> str:
        return self.inner.describe()

    def close(self) -> None:
        self.inner.close()
