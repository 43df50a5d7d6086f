"""Runs the logs conformance suite against ObjectStoreLogs on s3 (moto server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sparkwing.surfaces.logs.base import LogStore
from sparkwing.surfaces.logs.objectstore import ObjectStoreLogs

from ..objectstores import bucket_store
from .logs_suite import LogsConformance


class TestS3Logs(LogsConformance):
    @pytest.fixture
    def logs(self) -> Iterator[LogStore]:
        with bucket_store("s3", "team/logs") as store:
            logs = ObjectStoreLogs(store)
            yield logs
            logs.close()
