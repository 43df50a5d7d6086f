"""Azure Blob Storage (and the Azurite emulator) through obstore.

Configuration from the environment: ``AZURE_STORAGE_CONNECTION_STRING``, or
``AZURE_STORAGE_ACCOUNT_NAME`` with ``AZURE_STORAGE_ACCOUNT_KEY`` (without a key obstore
falls back to Azure's other credential sources). ``SPARKWING_AZURE_ENDPOINT`` or
``AZURITE_BLOB_STORAGE_URL`` selects the emulator at that address.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar

from sparkwing.errors import ConfigError
from sparkwing.surfaces.objectstore._obstore import ObstoreObjectStore
from sparkwing.surfaces.objectstore.common import DEFAULT_RETRY, RetryPolicy

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

ENDPOINT_ENV = "SPARKWING_AZURE_ENDPOINT"
AZURITE_ENV = "AZURITE_BLOB_STORAGE_URL"
# Azurite's documented development account: public by design, not a secret.
EMULATOR_ACCOUNT = "devstoreaccount1"
EMULATOR_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def parse_connection_string(text: str) -> dict[str, str]:
    """``Key=Value;...`` pairs of an Azure storage connection string (values may hold '=')."""
    pairs: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            pairs[name.strip()] = value.strip()
    return pairs


class AzureObjectStore(ObstoreObjectStore):
    scheme: ClassVar[str] = "azure-blob"

    def __init__(
        self,
        container: str,
        prefix: str | None = None,
        *,
        account_name: str | None = None,
        account_key: str | None = None,
        endpoint: str | None = None,
        role: str = "",
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        super().__init__(container, prefix, role=role, retry=retry)
        self.account_name = account_name
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self._account_key = account_key

    @classmethod
    def emulator(
        cls,
        container: str,
        prefix: str | None = None,
        *,
        url: str,
        role: str = "",
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> AzureObjectStore:
        """An Azurite container at ``url`` (``http://127.0.0.1:PORT``), path-style."""
        account = os.environ.get("AZURE_STORAGE_ACCOUNT_NAME") or EMULATOR_ACCOUNT
        key = os.environ.get("AZURE_STORAGE_ACCOUNT_KEY") or EMULATOR_KEY
        return cls(
            container,
            prefix,
            account_name=account,
            account_key=key,
            endpoint=f"{url.rstrip('/')}/{account}",
            role=role,
            retry=retry,
        )

    @classmethod
    def from_env(
        cls,
        container: str,
        prefix: str | None = None,
        *,
        role: str = "",
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> AzureObjectStore:
        emulator_url = os.environ.get(ENDPOINT_ENV) or os.environ.get(AZURITE_ENV)
        if emulator_url:
            return cls.emulator(container, prefix, url=emulator_url, role=role, retry=retry)
        connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if connection:
            pairs = parse_connection_string(connection)
            name, key = pairs.get("AccountName"), pairs.get("AccountKey")
            if not name:
                raise ConfigError(
                    "AZURE_STORAGE_CONNECTION_STRING has no AccountName; "
                    "set it or AZURE_STORAGE_ACCOUNT_NAME"
                )
            return cls(
                container,
                prefix,
                account_name=name,
                account_key=key,
                endpoint=pairs.get("BlobEndpoint"),
                role=role,
                retry=retry,
            )
        account = os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
        if not account:
            raise ConfigError(
                f"{role or 'azure-blob'} backend needs AZURE_STORAGE_ACCOUNT_NAME "
                "(or AZURE_STORAGE_CONNECTION_STRING)"
            )
        return cls(
            container,
            prefix,
            account_name=account,
            account_key=os.environ.get("AZURE_STORAGE_ACCOUNT_KEY") or None,
            role=role,
            retry=retry,
        )

    def init_kwargs(self) -> dict[str, Any]:
        return {
            "container": self.bucket,
            "prefix": self.prefix,
            "account_name": self.account_name,
            "account_key": self._account_key,
            "endpoint": self.endpoint,
            "role": self.role,
            "retry": self.retry,
        }

    def _allow_http(self) -> bool:
        return bool(self.endpoint and self.endpoint.startswith("http://"))

    def _build(self, client_options: ClientConfig, retry_config: RetryConfig) -> Any:
        from obstore.store import AzureStore

        config: dict[str, Any] = {}
        if self.account_name:
            config["account_name"] = self.account_name
        if self._account_key:
            config["account_key"] = self._account_key
        if self.endpoint:
            config["endpoint"] = self.endpoint
        return AzureStore(
            self.bucket,
            prefix=self.prefix.rstrip("/") or None,
            config=config,  # type: ignore[arg-type]
            client_options=client_options,
            retry_config=retry_config,
        )
