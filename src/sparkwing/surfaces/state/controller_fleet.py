"""The fleet kept by a controller (``/v1/workers``), for the controller state backend."""

from __future__ import annotations

import builtins

from sparkwing.controller.client import ControllerClient, segment
from sparkwing.ids import check_segment
from sparkwing.surfaces.state.fleet import Fleet, WorkerInfo


class ControllerFleet(Fleet):
    def __init__(self, client: ControllerClient) -> None:
        self.client = client

    def heartbeat(self, worker: WorkerInfo) -> None:
        check_segment(worker.name, "worker name")
        self.client.call("POST", "/v1/workers", what="report a worker", body=worker.to_dict())

    def leave(self, name: str) -> bool:
        path = "/v1/workers/" + segment(check_segment(name, "worker name"))
        return bool(self.client.call("DELETE", path, what="remove a worker")["ok"])

    def list(self) -> builtins.list[WorkerInfo]:
        doc = self.client.call("GET", "/v1/workers", what="list workers")
        return [WorkerInfo.from_dict(w) for w in doc["workers"]]

    def prune(self, before: str) -> int:
        body = {"before": before}
        return int(
            self.client.call("POST", "/v1/workers/prune", what="prune workers", body=body)[
                "removed"
            ]
        )
