"""The cache on an object store (S3, GCS, Azure Blob): each cache key is one object under
the store's prefix. Only the cache prefixes are ever read, listed or deleted, so state and
logs sharing the bucket and prefix are never touched."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from sparkwing.surfaces.cache.base import Cache, ObjectInfo, check_cache_key, covered_prefixes
from sparkwing.surfaces.objectstore.base import ObjectMeta, ObjectStore


def _info(meta: ObjectMeta) -> ObjectInfo:
    return ObjectInfo(key=meta.key, size=meta.size, modified=meta.modified, etag=meta.etag)


class ObjectStoreCache(Cache):
    """A :class:`Cache` over any :class:`ObjectStore`; the adapter is ``.store``.

    Files stream through the adapter (multipart) and are never held whole in memory;
    conditional writes are the store's own preconditions.
    """

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def _key(self, key: str) -> str:
        return check_cache_key(key)

    # -- reads -----------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        got = self.store.get(self._key(key))
        return None if got is None else got[0]

    def get_file(self, key: str, dest: Path) -> bool:
        return self.store.get_file(self._key(key), Path(dest)) is not None

    def has(self, key: str) -> bool:
        return self.store.head(self._key(key)) is not None

    def stat(self, key: str) -> ObjectInfo | None:
        meta = self.store.head(self._key(key))
        return None if meta is None else _info(meta)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        # A prefix shorter than a cache prefix ("", "mem") lists the cache prefixes it
        # covers, never the rest of the bucket.
        return self._list(sorted(covered_prefixes(prefix) or [prefix]))

    def _list(self, roots: Sequence[str]) -> Iterator[ObjectInfo]:
        for root in roots:
            for meta in self.store.list(root):
                yield _info(meta)

    # -- writes ----------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> None:
        self.store.put(self._key(key), data)

    def put_file(self, key: str, src: Path) -> None:
        self.store.put_file(self._key(key), Path(src))

    def delete(self, key: str) -> bool:
        return self.store.delete(self._key(key))

    # -- conditional writes ----------------------------------------------------------
    @property
    def conditional_writes(self) -> bool:
        # Probed once per store handle: some S3-compatible endpoints ignore preconditions.
        from sparkwing.surfaces.objectstore.probe import probe_conditional_writes

        return probe_conditional_writes(self.store)

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        got = self.store.get(self._key(key))
        return None if got is None else (got[0], got[1].etag)

    def put_if_absent(self, key: str, data: bytes) -> str:
        return self.store.put_if_absent(self._key(key), data).etag

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        return self.store.put_if_match(self._key(key), data, etag).etag

    def describe(self) -> str:
        return f"cache {self.store.describe()}"

    def close(self) -> None:
        self.store.close()
