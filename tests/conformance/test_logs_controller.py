"""Runs the logs conformance suite through the controller client against a real controller
(uvicorn on a free loopback port) backed by filesystem logs, and by S3 (moto); ``follow``
goes over SSE."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkwing.surfaces.logs.base import LogStore
from sparkwing.surfaces.logs.controller import ControllerLogs
from sparkwing.surfaces.open import open_logs
from tests.controller.harness import Controller, PgController, controller, pg_controller

from .controller_surfaces import on_local, on_postgres
from .logs_suite import LogsConformance

__all__ = ["controller", "pg_controller"]


class TestControllerLogsOnFilesystem(LogsConformance):
    @pytest.fixture
    def logs(self, controller: Controller, tmp_path: Path) -> LogStore:
        logs = on_local(controller, tmp_path, open_logs, "logs")
        assert isinstance(logs, ControllerLogs)
        return logs


class TestControllerLogsOnS3(LogsConformance):
    @pytest.fixture
    def logs(self, pg_controller: PgController) -> LogStore:
        return on_postgres(pg_controller, open_logs, "logs")
