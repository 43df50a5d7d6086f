"""Runs the cache conformance suite against ObjectStoreCache on gcs (fake-gcs-server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sparkwing.surfaces.cache.base import Cache
from sparkwing.surfaces.cache.objectstore import ObjectStoreCache

from ..objectstores import bucket_store
from .cache_suite import CacheConformance


class TestGcsCache(CacheConformance):
    @pytest.fixture
    def cache(self) -> Iterator[Cache]:
        with bucket_store("gcs", "team/cache") as store:
            yield ObjectStoreCache(store)
