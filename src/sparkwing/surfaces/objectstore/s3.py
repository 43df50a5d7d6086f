"""Amazon S3 and S3-compatible stores (MinIO, R2, moto) through obstore.

Credentials follow the standard AWS chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``
/ ``AWS_SESSION_TOKEN``, web identity, container and instance credentials) unless passed
explicitly. ``SPARKWING_S3_ENDPOINT`` points at an S3-compatible endpoint, addressed
path-style; an ``http://`` endpoint is allowed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar

from sparkwing.surfaces.objectstore._obstore import ObstoreObjectStore
from sparkwing.surfaces.objectstore.common import DEFAULT_RETRY, RetryPolicy

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

ENDPOINT_ENV = "SPARKWING_S3_ENDPOINT"
DEFAULT_REGION = "us-east-1"


class S3ObjectStore(ObstoreObjectStore):
    scheme: ClassVar[str] = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str | None = None,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        role: str = "",
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        super().__init__(bucket, prefix, role=role, retry=retry)
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.region = region
        self._credentials = (access_key_id, secret_access_key, session_token)

    @classmethod
    def from_env(
        cls,
        bucket: str,
        prefix: str | None = None,
        *,
        role: str = "",
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> S3ObjectStore:
        """Endpoint and region from the environment; credentials from the AWS chain."""
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        return cls(
            bucket,
            prefix,
            endpoint=os.environ.get(ENDPOINT_ENV) or None,
            region=region or DEFAULT_REGION,
            role=role,
            retry=retry,
        )

    def init_kwargs(self) -> dict[str, Any]:
        key_id, secret, token = self._credentials
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "endpoint": self.endpoint,
            "region": self.region,
            "access_key_id": key_id,
            "secret_access_key": secret,
            "session_token": token,
            "role": self.role,
            "retry": self.retry,
        }

    def _allow_http(self) -> bool:
        return bool(self.endpoint and self.endpoint.startswith("http://"))

    def _build(self, client_options: ClientConfig, retry_config: RetryConfig) -> Any:
        from obstore.store import S3Store

        config: dict[str, Any] = {"region": self.region or DEFAULT_REGION}
        if self.endpoint:
            config["endpoint"] = self.endpoint
            config["virtual_hosted_style_request"] = False
        key_id, secret, token = self._credentials
        if key_id and secret:
            config["access_key_id"] = key_id
            config["secret_access_key"] = secret
            if token:
                config["session_token"] = token
        return S3Store(
            self.bucket,
            prefix=self.prefix.rstrip("/") or None,
            config=config,  # type: ignore[arg-type]
            client_options=client_options,
            retry_config=retry_config,
        )
