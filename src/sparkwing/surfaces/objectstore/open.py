"""Opens the object store a surface spec names (s3, gcs, azure-blob), configured by the
spec's bucket and prefix plus the standard environment of its cloud."""

from __future__ import annotations

from sparkwing.errors import ConfigError
from sparkwing.surfaces.objectstore.base import ObjectStore
from sparkwing.surfaces.objectstore.common import DEFAULT_RETRY, RetryPolicy
from sparkwing.surfaces.spec import SurfaceSpec

OBJECT_STORE_TYPES = ("s3", "gcs", "azure-blob")


def open_object_store(
    spec: SurfaceSpec, *, role: str, retry: RetryPolicy = DEFAULT_RETRY
) -> ObjectStore:
    """The adapter for ``spec``; ``role`` (state, cache, logs) only names it in errors.
    ``retry`` bounds how long a transient failure is retried before StorageError.

    Opening makes no request: a missing bucket or bad credentials surface on first use as
    a one-line StorageError naming the store.
    """
    if spec.type not in OBJECT_STORE_TYPES:
        raise ConfigError(f"{role} backend type={spec.type} is not an object store")
    if not spec.bucket:
        raise ConfigError(f"{role} backend type={spec.type} requires bucket")
    if spec.type == "s3":
        from sparkwing.surfaces.objectstore.s3 import S3ObjectStore

        return S3ObjectStore.from_env(spec.bucket, spec.prefix, role=role, retry=retry)
    if spec.type == "gcs":
        from sparkwing.surfaces.objectstore.gcs import GcsObjectStore

        return GcsObjectStore.from_env(spec.bucket, spec.prefix, role=role, retry=retry)
    from sparkwing.surfaces.objectstore.azure import AzureObjectStore

    return AzureObjectStore.from_env(spec.bucket, spec.prefix, role=role, retry=retry)
