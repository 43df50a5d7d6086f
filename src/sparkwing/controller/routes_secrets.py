"""API operations of the secrets surface: resolve for runners, set / list / delete for the CLI.
Values leave the controller only in the answer to an authorised resolve."""

from __future__ import annotations

from typing import Any

from sparkwing.controller import schemas as s
from sparkwing.controller.endpoint import Call, Endpoint, Param, Reply, error_response
from sparkwing.surfaces.secrets.controller import check_name

READ, WRITE = "secrets.read", "secrets.write"

NAME = Param(
    "name", "path", s.STR, "Secret name (letters, digits, _).", required=True, check=check_name
)


def resolve(call: Call) -> Any:
    name = call.path["name"]
    found = call.backend.vault.resolve(name)
    if found is None:
        return error_response(404, "NotFoundError", f"secret {name} is not defined")
    return {"name": name, "value": found.value, "masked": found.masked}


def names(call: Call) -> Any:
    return {"secrets": [{"name": n, "masked": m} for n, m in call.backend.vault.names()]}


def set_secret(call: Call) -> None:
    call.backend.vault.set(
        call.path["name"], call.body["value"], bool(call.body.get("masked", True))
    )


def delete(call: Call) -> Any:
    return {"deleted": call.backend.vault.delete(call.path["name"])}


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/v1/secrets",
        "secrets_list",
        "Secret names and whether each is masked (never values).",
        READ,
        names,
        Reply(200, "The names.", s.SECRET_NAMES),
    ),
    Endpoint(
        "GET",
        "/v1/secrets/{name}",
        "secrets_resolve",
        "A secret's value and masked flag.",
        READ,
        resolve,
        Reply(200, "The secret.", s.SECRET),
        params=(NAME,),
        errors=(404,),
    ),
    Endpoint(
        "PUT",
        "/v1/secrets/{name}",
        "secrets_set",
        "Store a secret (encrypted at rest); masked defaults to true.",
        WRITE,
        set_secret,
        Reply(204, "Stored."),
        params=(NAME,),
        body=s.SECRET_SET,
    ),
    Endpoint(
        "DELETE",
        "/v1/secrets/{name}",
        "secrets_delete",
        "Remove a secret.",
        WRITE,
        delete,
        Reply(200, "Whether it existed.", s.DELETED),
        params=(NAME,),
    ),
)
