"""Test helpers for object-store backed surfaces: request counting that also totals the
bytes uploaded, and a key listing helper."""

from __future__ import annotations

import threading
from pathlib import Path

from sparkwing.surfaces.objectstore.base import ObjectMeta, ObjectStore
from tests.doubles.counting import CountingObjectStore


def keys(store: ObjectStore, prefix: str = "") -> list[str]:
    """Every key under ``prefix``, sorted."""
    return [meta.key for meta in store.list(prefix)]


class CountingStore(CountingObjectStore):
    """Counts requests by kind (``counts``) and the bytes uploaded (``bytes_up``)."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.bytes_up = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bytes, ObjectMeta] | None:
        with self._lock:  # reads run in parallel threads: keep the count exact
            self.counts["get"] += 1
        return self.inner.get(key)

    def reset(self) -> None:
        super().reset()
        self.bytes_up = 0

    def put(self, key: str, data: bytes) -> ObjectMeta:
        self.bytes_up += len(data)
        return super().put(key, data)

    def put_file(self, key: str, src: Path) -> ObjectMeta:
        self.bytes_up += Path(src).stat().st_size
        return super().put_file(key, src)

    def put_if_absent(self, key: str, data: bytes) -> ObjectMeta:
        self.bytes_up += len(data)
        return super().put_if_absent(key, data)

    def put_if_match(self, key: str, data: bytes, etag: str) -> ObjectMeta:
        self.bytes_up += len(data)
        return super().put_if_match(key, data, etag)
