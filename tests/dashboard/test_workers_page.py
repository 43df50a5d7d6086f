"""The workers page on a real controller: registered workers with their labels and last
heartbeat (stale ones marked), beside the runs the queue's claims say each holds."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from sparkwing.surfaces.state.fleet import WorkerInfo
from tests.dashboard.conftest import Site


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_registered_workers_show_labels_and_staleness(site: Site) -> None:
    fleet = site.ctl.backend.state.fleet
    assert fleet is not None
    now = datetime.now(UTC)
    fleet.heartbeat(
        WorkerInfo("gpu-box", host="box-1", labels=["gpu", "linux"], last_seen=_iso(now))
    )
    fleet.heartbeat(
        WorkerInfo(
            "old-box", host="box-2", labels=["arm64"], last_seen=_iso(now - timedelta(hours=1))
        )
    )
    client, _ = site.session(site.tokens["viewer"])
    with contextlib.closing(client):
        page = client.get("/workers")
    assert page.status_code == 200
    rows = {
        name: page.text.split(f'<th scope="row">{name}</th>', 1)[1].split("</tr>", 1)[0]
        for name in ("gpu-box", "old-box")
    }
    assert "box-1" in rows["gpu-box"] and "gpu, linux" in rows["gpu-box"]
    assert "(stale)" not in rows["gpu-box"]
    assert "arm64" in rows["old-box"] and "(stale)" in rows["old-box"]
