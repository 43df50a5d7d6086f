"""Human gates (approvals, debug pauses): part of the state conformance suite.

A store that cannot coordinate gates must say so clearly (``gates`` None and a
NotSupportedError naming postgres or a controller); one that can must resolve each gate
exactly once, also when two resolvers race.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from sparkwing.errors import GateResolvedError, InvalidKeyError, NotFoundError, NotSupportedError
from sparkwing.surfaces.state.base import Gate, StateStore, require_gates


def _gate(run_id: str, node: str = "approve", kind: str = "approval", **fields: Any) -> Gate:
    fields.setdefault("message", "ship it?")
    return Gate(
        run_id=run_id,
        node_id=node,
        kind=kind,
        created_at="2026-11-27T03:00:00.000000Z",
        **fields,
    )


class GateConformance:
    """Mixed into StateConformance; uses its ``store`` and ``store_factory`` fixtures."""

    def recorded(self, by: str) -> str:
        """Who a resolution passing ``by`` is recorded under (a controller records its
        token's name instead)."""
        return by

    def _require_gates(self, store: StateStore) -> None:
        if store.gates is not None:
            return
        with pytest.raises(NotSupportedError, match="use postgres or a controller"):
            require_gates(store)
        pytest.skip("this store reports gates as not supported (checked the refusal)")

    def test_gate_open_get_and_list(self, store: StateStore) -> None:
        self._require_gates(store)
        run = "run-20261127-030000-aaaa"
        opened = store.gates.open(_gate(run, expires_at="2026-11-27T04:00:00.000000Z"))
        assert opened.status == "pending" and opened.message == "ship it?"
        got = store.gates.get(run, "approve", "approval")
        assert got is not None and got.expires_at == "2026-11-27T04:00:00.000000Z"
        assert store.gates.get(run, "approve", "pause") is None
        assert store.gates.get(run, "other", "approval") is None
        store.gates.open(_gate(run, "debug", "pause", extra={"when": "before"}))
        pending = store.gates.list(run_id=run)
        assert [(g.node_id, g.kind) for g in pending] == [
            ("approve", "approval"),
            ("debug", "pause"),
        ]
        assert [g.node_id for g in store.gates.list(kind="pause")] == ["debug"]
        assert store.gates.list(run_id="run-20261127-030000-bbbb") == []

    def test_reopening_a_pending_gate_keeps_it(self, store: StateStore) -> None:
        self._require_gates(store)
        run = "run-20261127-030000-aaaa"
        store.gates.open(_gate(run))
        again = store.gates.open(_gate(run, message="changed"))
        assert again.message == "ship it?"
        assert len(store.gates.list(run_id=run)) == 1

    def test_resolve_once_and_refuse_the_second(self, store: StateStore) -> None:
        self._require_gates(store)
        run = "run-20261127-030000-aaaa"
        store.gates.open(_gate(run))
        done = store.gates.resolve(run, "approve", "approval", "approved", "alice", "lgtm")
        alice = self.recorded("alice")
        assert (done.status, done.resolved_by, done.comment) == ("approved", alice, "lgtm")
        assert done.resolved_at
        with pytest.raises(GateResolvedError, match=f"already resolved by {alice}"):
            store.gates.resolve(run, "approve", "approval", "denied", "bob", None)
        got = store.gates.get(run, "approve", "approval")
        assert got is not None and got.status == "approved" and got.resolved_by == alice
        assert store.gates.list(run_id=run) == []
        assert [g.status for g in store.gates.list(run_id=run, pending_only=False)] == ["approved"]

    def test_a_resolved_pause_can_open_again(self, store: StateStore) -> None:
        self._require_gates(store)
        run = "run-20261127-030000-aaaa"
        store.gates.open(_gate(run, "job", "pause"))
        store.gates.resolve(run, "job", "pause", "resumed", "carol", None)
        reopened = store.gates.open(_gate(run, "job", "pause", message="failed again"))
        assert reopened.status == "pending" and reopened.message == "failed again"
        store.gates.resolve(run, "job", "pause", "aborted", "carol", "enough")
        got = store.gates.get(run, "job", "pause")
        assert got is not None and got.status == "aborted"

    def test_resolve_unknown_gate_and_bad_resolution(self, store: StateStore) -> None:
        self._require_gates(store)
        run = "run-20261127-030000-aaaa"
        with pytest.raises(NotFoundError):
            store.gates.resolve(run, "nope", "approval", "approved", "alice", None)
        store.gates.open(_gate(run))
        with pytest.raises(Exception, match="resolves to one of"):
            store.gates.resolve(run, "approve", "approval", "resumed", "alice", None)
        with pytest.raises(InvalidKeyError):
            store.gates.get("../x", "approve", "approval")
        with pytest.raises(InvalidKeyError):
            store.gates.open(_gate(run, node="a/b"))

    def test_racing_resolvers_exactly_one_wins(
        self, store: StateStore, store_factory: Callable[[], StateStore]
    ) -> None:
        self._require_gates(store)
        run = "run-20261127-030000-aaaa"
        store.gates.open(_gate(run))
        handles = [store_factory() for _ in range(8)]
        barrier = threading.Barrier(len(handles))
        wins: list[str] = []
        losses: list[str] = []

        def resolve(i: int, handle: StateStore) -> None:
            barrier.wait()
            decision = "approved" if i % 2 else "denied"
            try:
                handle.gates.resolve(run, "approve", "approval", decision, f"user{i}", None)
                wins.append(f"user{i}")
            except GateResolvedError as exc:
                losses.append(str(exc))

        threads = [threading.Thread(target=resolve, args=(i, h)) for i, h in enumerate(handles)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1 and len(losses) == 7
        winner = self.recorded(wins[0])
        assert all(f"already resolved by {winner}" in msg for msg in losses)
        final = store.gates.get(run, "approve", "approval")
        assert final is not None and final.resolved_by == winner
