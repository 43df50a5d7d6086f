"""Schedule ticks through a controller: each call one request to its ``/v1/ticks`` API."""

from __future__ import annotations

from typing import Any

from sparkwing.controller.client import ControllerClient
from sparkwing.ids import check_segment
from sparkwing.surfaces.state.base import RunRecord, ScheduleTicks, check_schedule_key


class ControllerTicks(ScheduleTicks):
    def __init__(self, client: ControllerClient) -> None:
        self.client = client

    def fire(self, schedule: str, tick: str, run: RunRecord, spec: dict[str, Any]) -> bool:
        check_schedule_key(schedule, tick)
        check_segment(run.run_id, "run id")
        run.status = "queued"
        body = {"schedule": schedule, "tick": tick, "run": run.to_dict(), "spec": spec}
        doc = self.client.call("POST", "/v1/ticks/fire", what="claim a schedule tick", body=body)
        return bool(doc["ok"])

    def last(self, schedule: str) -> str | None:
        check_schedule_key(schedule, "-")
        params = {"schedule": schedule}
        doc = self.client.call("GET", "/v1/ticks/last", what="read a schedule", params=params)
        tick = doc.get("tick")
        return None if tick is None else str(tick)
