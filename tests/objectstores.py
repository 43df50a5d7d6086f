"""Fresh buckets on the object-store test servers (moto, fake-gcs-server, Azurite) and
adapters pointed at them, always with explicit emulator credentials so that no request
ever leaves 127.0.0.1.

``bucket_store(kind)`` is the usual entry point: a new bucket and an adapter on it.
``emulator_env(kind)`` is the environment a ``sparkwing`` subprocess needs to reach the
same server through ``open_object_store``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate

from sparkwing.surfaces.objectstore.base import ObjectStore
from sparkwing.surfaces.objectstore.common import DEFAULT_RETRY, RetryPolicy

from .servers import server

KINDS = ("s3", "gcs", "azure")
SPEC_TYPES = {"s3": "s3", "gcs": "gcs", "azure": "azure-blob"}

# Credentials the emulators accept; moto takes any key pair.
S3_KEY_ID = "testing"
S3_SECRET = "testing-secret"
S3_REGION = "us-east-1"


def new_bucket_name() -> str:
    """Valid as an S3 bucket, a GCS bucket and an Azure container name."""
    return f"sw-test-{uuid.uuid4().hex[:20]}"


def create_bucket(kind: str, name: str) -> None:
    endpoint = server(kind)
    if kind == "s3":
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=S3_KEY_ID,
            aws_secret_access_key=S3_SECRET,
            region_name=S3_REGION,
        ).create_bucket(Bucket=name)
    elif kind == "gcs":
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(
            project="test",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint},
        )
        client.create_bucket(name)
        client.close()
    else:
        _azure_create_container(endpoint, name)


def _azure_create_container(endpoint: str, name: str) -> None:
    """Create Container with a SharedKey-signed request (no Azure SDK needed)."""
    from sparkwing.surfaces.objectstore.azure import EMULATOR_ACCOUNT, EMULATOR_KEY

    account = EMULATOR_ACCOUNT
    headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
    # Path-style emulator URLs put the account in the path as well as in the resource.
    resource = f"/{account}/{account}/{name}\nrestype:container"
    to_sign = "PUT\n" + "\n" * 11 + canonical_headers + resource
    digest = hmac.new(base64.b64decode(EMULATOR_KEY), to_sign.encode(), hashlib.sha256).digest()
    request = urllib.request.Request(
        f"{endpoint}/{account}/{name}?restype=container",
        method="PUT",
        headers={
            **headers,
            "Content-Length": "0",
            "Authorization": f"SharedKey {account}:{base64.b64encode(digest).decode()}",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201, response.status


def make_store(
    kind: str,
    bucket: str,
    prefix: str = "",
    *,
    role: str = "test",
    retry: RetryPolicy = DEFAULT_RETRY,
    endpoint: str | None = None,
) -> ObjectStore:
    """An adapter on ``bucket`` of the test server ``kind`` (or of ``endpoint``)."""
    endpoint = endpoint or server(kind)
    if kind == "s3":
        from sparkwing.surfaces.objectstore.s3 import S3ObjectStore

        return S3ObjectStore(
            bucket,
            prefix,
            endpoint=endpoint,
            region=S3_REGION,
            access_key_id=S3_KEY_ID,
            secret_access_key=S3_SECRET,
            role=role,
            retry=retry,
        )
    if kind == "gcs":
        from sparkwing.surfaces.objectstore.gcs import GcsObjectStore

        return GcsObjectStore(bucket, prefix, endpoint=endpoint, role=role, retry=retry)
    from sparkwing.surfaces.objectstore.azure import AzureObjectStore

    return AzureObjectStore.emulator(bucket, prefix, url=endpoint, role=role, retry=retry)


def emulator_env(kind: str) -> dict[str, str]:
    """Variables that make ``open_object_store`` reach test server ``kind``."""
    endpoint = server(kind)
    if kind == "s3":
        return {
            "SPARKWING_S3_ENDPOINT": endpoint,
            "AWS_ACCESS_KEY_ID": S3_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_REGION": S3_REGION,
            # Never fall back to a metadata endpoint for credentials.
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    if kind == "gcs":
        return {"STORAGE_EMULATOR_HOST": endpoint}
    return {"SPARKWING_AZURE_ENDPOINT": endpoint}


def empty(store: ObjectStore) -> None:
    """Delete everything under the store's prefix (keeps the servers' memory small)."""
    store.delete_many([meta.key for meta in store.list()])


@contextmanager
def bucket_store(kind: str, prefix: str = "", *, role: str = "test") -> Iterator[ObjectStore]:
    """A fresh bucket and an adapter on it; emptied and closed afterwards."""
    name = new_bucket_name()
    create_bucket(kind, name)
    store = make_store(kind, name, prefix, role=role)
    try:
        yield store
    finally:
        try:
            empty(store)
        finally:
            store.close()
