"""Concurrency groups through the controller: each ConcurrencyGroups call as one request to
the routes of :mod:`sparkwing.controller.routes_groups`."""

from __future__ import annotations

import builtins
from typing import Any

from sparkwing.controller.client import ControllerClient, segment
from sparkwing.ids import check_segment
from sparkwing.surfaces.state.groups import (
    ConcurrencyGroups,
    GroupTurn,
    Member,
    check_group,
    check_on_busy,
)


class ControllerGroups(ConcurrencyGroups):
    """The controller's groups (present when its store has them)."""

    def __init__(self, client: ControllerClient) -> None:
        self.client = client

    def _call(self, group: str, action: str, what: str, body: dict[str, Any]) -> Any:
        path = "/v1/groups/" + segment(check_group(group)) + "/" + action
        check_segment(str(body["run_id"]), "run id")
        return self.client.call("POST", path, what=what, body=body)

    def enter(
        self, group: str, run_id: str, on_busy: str, lease_seconds: float, submitted: str
    ) -> GroupTurn:
        check_on_busy(on_busy)
        body = {
            "run_id": run_id,
            "on_busy": on_busy,
            "lease_seconds": lease_seconds,
            "submitted": submitted,
        }
        return GroupTurn.from_dict(self._call(group, "enter", "enter a concurrency group", body))

    def poll(self, group: str, run_id: str, lease_seconds: float) -> GroupTurn:
        body = {"run_id": run_id, "lease_seconds": lease_seconds}
        return GroupTurn.from_dict(self._call(group, "poll", "poll a concurrency group", body))

    def leave(self, group: str, run_id: str) -> None:
        self._call(group, "leave", "leave a concurrency group", {"run_id": run_id})

    def members(self, group: str) -> builtins.list[Member]:
        path = "/v1/groups/" + segment(check_group(group))
        doc = self.client.call("GET", path, what="read a concurrency group")
        return [Member.from_dict(m) for m in doc["members"]]
