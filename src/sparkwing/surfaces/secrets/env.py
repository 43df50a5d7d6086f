"""Read-only secrets from environment variables (``type: env``) and the empty store (``none``)."""

from __future__ import annotations

import os

from sparkwing.errors import NotSupportedError
from sparkwing.surfaces.secrets.base import SecretStore, SecretValue


class EnvSecrets(SecretStore):
    """``resolve(NAME)`` reads ``$<prefix>NAME``; every value is masked."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def resolve(self, name: str) -> SecretValue | None:
        if not name:
            return None
        value = os.environ.get(self.prefix + name)
        return None if value is None else SecretValue(value, masked=True)

    def names(self) -> list[tuple[str, bool]]:
        if not self.prefix:
            # Without a prefix every variable (PATH, HOME...) would be listed as a secret.
            raise NotSupportedError(
                "env secrets without a prefix cannot list names; set prefix to list them"
            )
        return sorted(
            (var[len(self.prefix) :], True)
            for var in os.environ
            if var.startswith(self.prefix) and len(var) > len(self.prefix)
        )

    def describe(self) -> str:
        return f"env secrets (prefix {self.prefix!r})" if self.prefix else "env secrets"


class NoSecrets(SecretStore):
    """Resolves nothing: for profiles whose pipelines use no secrets."""

    def resolve(self, name: str) -> SecretValue | None:
        return None

    def names(self) -> list[tuple[str, bool]]:
        return []

    def describe(self) -> str:
        return "no secrets (type=none)"
