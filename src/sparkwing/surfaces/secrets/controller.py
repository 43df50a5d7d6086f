"""The controller secrets backend (mode 4): values stored encrypted by the controller,
resolved over HTTP; ``names`` never carries values."""

from __future__ import annotations

from sparkwing.controller.client import ControllerClient, segment
from sparkwing.errors import UsageError
from sparkwing.surfaces.secrets.base import SecretStore, SecretValue
from sparkwing.surfaces.secrets.dotenv import NAME_RE


def check_name(name: str) -> str:
    """Secret names everywhere: letters, digits and '_', not starting with a digit."""
    if len(name) > 255 or not NAME_RE.match(name):
        raise UsageError(f"secret name {name!r} must be letters, digits and '_' (not first digit)")
    return name


def _path(name: str) -> str:
    return "/v1/secrets/" + segment(check_name(name))


class ControllerSecrets(SecretStore):
    def __init__(self, client: ControllerClient) -> None:
        self.client = client

    def resolve(self, name: str) -> SecretValue | None:
        doc = self.client.call("GET", _path(name), what="read a secret", missing=True)
        if doc is None:
            return None
        return SecretValue(str(doc["value"]), masked=bool(doc["masked"]))

    def names(self) -> list[tuple[str, bool]]:
        doc = self.client.call("GET", "/v1/secrets", what="list secrets")
        return [(str(d["name"]), bool(d["masked"])) for d in doc["secrets"]]

    def set(self, name: str, value: str, masked: bool = True) -> None:
        body = {"value": value, "masked": masked}
        self.client.call("PUT", _path(name), what="store a secret", body=body)

    def delete(self, name: str) -> bool:
        doc = self.client.call("DELETE", _path(name), what="delete a secret")
        return bool(doc["deleted"])

    def describe(self) -> str:
        return f"{self.client.describe()} (secrets)"
