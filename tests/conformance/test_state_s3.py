"""The state conformance suite on s3 object storage, against its real test server."""

from __future__ import annotations

from tests.conformance.state_objectstore import ObjectStoreStateConformance


class TestStateS3(ObjectStoreStateConformance):
    kind = "s3"
