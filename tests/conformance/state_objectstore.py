"""The state conformance suite on object storage: each cloud's test module subclasses
:class:`ObjectStoreStateConformance` naming its test server. Every test gets a fresh
bucket; each handle is opened as the factory opens it (object-store state behind the
outbox), and the extra handles of the concurrency cases get their own adapter, as
separate processes would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sparkwing.surfaces.objectstore.base import ObjectStore
from sparkwing.surfaces.state.base import StateStore
from sparkwing.surfaces.state.objectstore import ObjectStoreState
from sparkwing.surfaces.state.outbox import OutboxState
from tests.conformance.state_suite import StateConformance, StoreFactory
from tests.objectstores import bucket_store, make_store


class ObjectStoreStateConformance(StateConformance):
    kind: ClassVar[str]

    @pytest.fixture
    def bucket(self) -> Iterator[ObjectStore]:
        with bucket_store(self.kind, role="state") as store:
            yield store

    @pytest.fixture
    def handles(self) -> Iterator[list[StateStore]]:
        opened: list[StateStore] = []
        yield opened
        for handle in opened:
            handle.close()

    def _open(self, store: ObjectStore, tmp_path: Path, handles: list[StateStore]) -> StateStore:
        state = OutboxState(ObjectStoreState(store), tmp_path / "outbox.db")
        handles.append(state)
        return state

    @pytest.fixture
    def store(self, bucket: ObjectStore, tmp_path: Path, handles: list[StateStore]) -> StateStore:
        # The bucket fixture closes this adapter itself; the outbox file is per test.
        return OutboxState(ObjectStoreState(bucket), tmp_path / "outbox.db")

    @pytest.fixture
    def store_factory(
        self, bucket: ObjectStore, tmp_path: Path, handles: list[StateStore]
    ) -> StoreFactory:
        name: Any = getattr(bucket, "bucket")  # noqa: B009 - every adapter names its bucket
        return lambda: self._open(make_store(self.kind, str(name), role="state"), tmp_path, handles)
