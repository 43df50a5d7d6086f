"""The state conformance suite on azure object storage, against its real test server."""

from __future__ import annotations

from tests.conformance.state_objectstore import ObjectStoreStateConformance


class TestStateAzure(ObjectStoreStateConformance):
    kind = "azure"
