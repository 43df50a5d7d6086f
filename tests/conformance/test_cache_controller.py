"""Runs the cache conformance suite through the controller client against a real controller
(uvicorn on a free loopback port) backed by a filesystem cache, and by S3 (moto)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkwing.surfaces.cache.base import Cache
from sparkwing.surfaces.cache.controller import ControllerCache
from sparkwing.surfaces.open import open_cache
from tests.controller.harness import Controller, PgController, controller, pg_controller

from .cache_suite import CacheConformance
from .controller_surfaces import on_local, on_postgres

__all__ = ["controller", "pg_controller"]


class TestControllerCacheOnFilesystem(CacheConformance):
    @pytest.fixture
    def cache(self, controller: Controller, tmp_path: Path) -> Cache:
        cache = on_local(controller, tmp_path, open_cache, "cache")
        assert isinstance(cache, ControllerCache)
        return cache


class TestControllerCacheOnS3(CacheConformance):
    @pytest.fixture
    def cache(self, pg_controller: PgController) -> Cache:
        return on_postgres(pg_controller, open_cache, "cache")
