"""Opens the object store a surface spec names (the registry's object stores), configured
by the spec's bucket and prefix plus the standard environment of its cloud."""

from __future__ import annotations

from typing import cast

from sparkwing.errors import ConfigError
from sparkwing.surfaces import registry
from sparkwing.surfaces.objectstore.base import ObjectStore
from sparkwing.surfaces.objectstore.common import DEFAULT_RETRY, RetryPolicy
from sparkwing.surfaces.spec import SurfaceSpec


def open_object_store(
    spec: SurfaceSpec, *, role: str, retry: RetryPolicy = DEFAULT_RETRY
) -> ObjectStore:
    """The adapter for ``spec``; ``role`` (state, cache, logs) only names it in errors.
    ``retry`` bounds how long a transient failure is retried before StorageError.

    Opening makes no request: a missing bucket or bad credentials surface on first use as
    a one-line StorageError naming the store.
    """
    adapter = registry.OBJECT_STORES.get(spec.type)
    if adapter is None:
        raise ConfigError(f"{role} backend type={spec.type} is not an object store")
    if not spec.bucket:
        raise ConfigError(f"{role} backend type={spec.type} requires bucket")
    store = registry.load(adapter + ".from_env")
    return cast(ObjectStore, store(spec.bucket, spec.prefix, role=role, retry=retry))
