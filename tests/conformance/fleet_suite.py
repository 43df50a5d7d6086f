"""The fleet (workers registering and heartbeating): part of the state conformance suite.

An optional part: a store without it has ``fleet`` None (callers refuse with a
NotSupportedError naming the registry), and the cases below then skip.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sparkwing.errors import InvalidKeyError, NotSupportedError
from sparkwing.surfaces.state.base import StateStore
from sparkwing.surfaces.state.fleet import Fleet, WorkerInfo, require_fleet

_NOW = datetime(2026, 5, 1, 9, 0, 0, tzinfo=UTC)


def _at(seconds: float) -> str:
    return (_NOW + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def worker(name: str, seen: float = 0, **fields: object) -> WorkerInfo:
    info = WorkerInfo(
        name=name,
        host="build-1",
        labels=["gpu", "linux"],
        version="0.1.0",
        started_at=_at(-60),
        last_seen=_at(seen),
        heartbeat=10.0,
    )
    for key, value in fields.items():
        setattr(info, key, value)
    return info


class FleetConformance:
    """Mixed into StateConformance; uses its ``store`` fixture."""

    def _fleet(self, store: StateStore) -> Fleet:
        if store.fleet is not None:
            return store.fleet
        with pytest.raises(NotSupportedError, match="workers registry"):
            require_fleet(store)
        pytest.skip("this store keeps no workers registry (checked the refusal)")

    def test_heartbeats_register_and_replace_a_worker(self, store: StateStore) -> None:
        fleet = self._fleet(store)
        assert fleet.list() == []
        fleet.heartbeat(worker("w-b"))
        fleet.heartbeat(worker("w-a", running=[]))
        busy = worker("w-a", seen=5, running=["run-20260501-090000-aaaa"], extra={"ß": "✓"})
        fleet.heartbeat(busy)
        assert [w.name for w in fleet.list()] == ["w-a", "w-b"]
        assert fleet.list()[0] == busy

    def test_leave_and_prune(self, store: StateStore) -> None:
        fleet = self._fleet(store)
        fleet.heartbeat(worker("old", seen=-7200))
        fleet.heartbeat(worker("new", seen=0))
        fleet.heartbeat(worker("gone", seen=0))
        assert fleet.leave("gone") is True
        assert fleet.leave("gone") is False
        assert fleet.prune(_at(-3600)) == 1
        assert [w.name for w in fleet.list()] == ["new"]

    def test_a_worker_that_missed_its_heartbeats_is_stale(self, store: StateStore) -> None:
        fleet = self._fleet(store)
        fleet.heartbeat(worker("w", seen=0))
        (got,) = fleet.list()
        assert got.stale(_NOW + timedelta(seconds=29)) is False
        assert got.stale(_NOW + timedelta(seconds=31)) is True

    @pytest.mark.parametrize("bad", ["a/b", "..", "", "a\x00b"])
    def test_worker_names_are_checked(self, store: StateStore, bad: str) -> None:
        fleet = self._fleet(store)
        with pytest.raises(InvalidKeyError):
            fleet.heartbeat(worker(bad))
        with pytest.raises(InvalidKeyError):
            fleet.leave(bad)
        assert fleet.list() == []
