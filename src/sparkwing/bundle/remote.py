"""Where bundles are shared: ``bin/<key>`` of the cache surface, or of ``cache.binaries``
when the profile sets it (its ``prefix`` already interpolated by the CLI)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sparkwing.surfaces.cache.base import Cache
from sparkwing.surfaces.spec import SurfaceSpec

PREFIX = "bin/"


def binaries_spec(cache_spec: SurfaceSpec) -> SurfaceSpec:
    """The spec bundles go to: ``cache.binaries`` when set, else the cache itself."""
    spec = cache_spec.binaries or cache_spec
    return dataclasses.replace(spec, binaries=None)


def _filesystem_root(spec: SurfaceSpec) -> Path:
    root = Path(spec.path or "").expanduser()
    # A bucket's prefix is a key prefix; on a filesystem the same prefix is a folder.
    return root / spec.prefix if spec.prefix else root


def open_remote(spec: SurfaceSpec) -> Cache:
    """Open the store ``binaries_spec`` returned (through the one surface factory)."""
    from sparkwing.surfaces.open import open_cache

    return open_cache(spec)


def location(spec: SurfaceSpec) -> str:
    """Where the bundles of ``spec`` live, for messages and for the record of uploads."""
    if spec.type == "filesystem":
        return f"filesystem:{_filesystem_root(spec)}"
    return spec.describe()


def remote_key(key: str) -> str:
    return PREFIX + key
