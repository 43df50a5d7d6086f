"""A controller started with ``defaults.retention`` prunes its own stores on that schedule:
the round at start-up already removes what the policy names (with the runs' logs), keeps
the newest per pipeline and every run in progress, and logs what it did."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from sparkwing.conf.retention import Retention
from sparkwing.controller.app import build_app
from sparkwing.controller.backend import open_backend
from sparkwing.controller.server import serve_in_thread
from sparkwing.ids import new_run_id
from sparkwing.surfaces.logs.base import LogRecord
from sparkwing.surfaces.state.base import RunRecord
from tests.controller.harness import KEY, local_profile


def test_the_schedule_prunes_at_start_and_keeps_the_newest_and_live_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPARKWING_HOME", str(tmp_path / "home"))  # where journals go
    backend = open_backend(local_profile(tmp_path / "stores"), KEY, os.environ)
    ids = []
    for i, status in enumerate(["success", "failed", "running", "success"]):
        run_id = new_run_id()
        while ids and run_id <= ids[-1]:
            time.sleep(0.01)
            run_id = new_run_id()
        backend.state.create_run(
            RunRecord(run_id=run_id, pipeline="p", status=status, created_at=f"2026-01-0{i + 1}")
        )
        backend.logs.append(run_id, "job", [LogRecord(ts="2026-01-01T00:00:00Z", msg="hi")])
        backend.logs.flush()
        ids.append(run_id)
    oldest, old_failed, live, newest = ids
    app = build_app(backend, retention=Retention(keep_last=1, interval=3600))
    caplog.set_level(logging.INFO, logger="sparkwing.controller.retention")
    with serve_in_thread(app, access_log=False):
        deadline = time.monotonic() + 60
        while backend.state.get_run(oldest) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        remaining = [r.run_id for r in backend.state.list_runs().runs]
        assert remaining == [newest, live]
        assert backend.logs.nodes(oldest) == [] and backend.logs.nodes(old_failed) == []
        assert backend.logs.nodes(newest) == ["job"] and backend.logs.nodes(live) == ["job"]
        while "retention round" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "keeping the last 1 per pipeline every 3600s" in caplog.text
    assert "retention round: pruned 2 run(s), kept 2" in caplog.text
