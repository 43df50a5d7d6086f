"""The secrets interface: resolve a name to a value and whether it must be masked."""

from __future__ import annotations

import abc
from dataclasses import dataclass


@dataclass(frozen=True)
class SecretValue:
    """A resolved value and whether it is masked in output."""

    value: str
    masked: bool = True


class SecretStore(abc.ABC):
    @abc.abstractmethod
    def resolve(self, name: str) -> SecretValue | None:
        """The value, or None when the name is not defined."""

    def names(self) -> list[tuple[str, bool]]:
        """(name, masked) pairs, sorted; never values."""
        from sparkwing.errors import NotSupportedError

        raise NotSupportedError(f"{self.describe()} cannot list secrets")

    def set(self, name: str, value: str, masked: bool = True) -> None:
        from sparkwing.errors import NotSupportedError

        raise NotSupportedError(f"{self.describe()} is read-only")

    def delete(self, name: str) -> bool:
        from sparkwing.errors import NotSupportedError

        raise NotSupportedError(f"{self.describe()} is read-only")

    def describe(self) -> str:
        return type(self).__name__
