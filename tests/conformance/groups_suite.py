"""Concurrency groups (enter, poll, leave, members): part of the state conformance suite.

A store that cannot coordinate groups has ``groups`` None and callers refuse with one clear
NotSupportedError; one that can must keep at most one holder per group, also when many
handles enter at once, and hand the group on in submission order.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from sparkwing.errors import InvalidKeyError, NotSupportedError, UsageError
from sparkwing.ids import new_run_id
from sparkwing.surfaces.state.base import StateStore, require_groups
from sparkwing.surfaces.state.groups import ConcurrencyGroups

_BASE = datetime(2026, 6, 1, 9, 0, 0, tzinfo=UTC)
LEASE = 60.0
# Waiters are served by submission time, then run id: the same time for every run here
# leaves the order to the ids (see the test of the time order).
SUBMITTED = "2026-06-01T09:00:00.000000Z"


def rid(offset: int) -> str:
    """A run id submitted ``offset`` seconds after a fixed time (ids sort by submission)."""
    return new_run_id(_BASE + timedelta(seconds=offset))


class GroupsConformance:
    """Mixed into StateConformance; uses its ``store`` and ``store_factory`` fixtures."""

    def _groups(self, store: StateStore) -> ConcurrencyGroups:
        if store.groups is None:
            with pytest.raises(NotSupportedError, match="concurrency groups are not supported"):
                require_groups(store)
            pytest.skip("this store reports concurrency groups as not supported (refusal checked)")
        return store.groups

    def test_group_queue_hands_on_in_submission_order(self, store: StateStore) -> None:
        groups = self._groups(store)
        first, second, third = rid(1), rid(2), rid(3)
        assert groups.enter("deploy-prod", first, "queue", LEASE, SUBMITTED).state == "holding"
        # The later submission enters first: it still waits behind the earlier one.
        late = groups.enter("deploy-prod", third, "queue", LEASE, SUBMITTED)
        early = groups.enter("deploy-prod", second, "queue", LEASE, SUBMITTED)
        assert (late.state, late.holder) == ("waiting", first)
        assert (early.state, early.holder, early.position) == ("waiting", first, 1)
        assert groups.poll("deploy-prod", third, LEASE).position == 2
        assert [m.run_id for m in groups.members("deploy-prod")] == [first, second, third]
        assert groups.members("other") == []
        groups.leave("deploy-prod", first)
        assert groups.poll("deploy-prod", second, LEASE).state == "holding"
        turn = groups.poll("deploy-prod", third, LEASE)
        assert (turn.state, turn.holder, turn.position) == ("waiting", second, 1)
        assert groups.poll("deploy-prod", first, LEASE).state == "lost"
        groups.leave("deploy-prod", second)
        groups.leave("deploy-prod", second)  # twice is harmless
        assert groups.poll("deploy-prod", third, LEASE).state == "holding"

    def test_group_entering_again_is_a_poll(self, store: StateStore) -> None:
        groups = self._groups(store)
        one, two = rid(1), rid(2)
        groups.enter("g", one, "queue", LEASE, SUBMITTED)
        groups.enter("g", two, "queue", LEASE, SUBMITTED)
        # A retried enter (the reply was lost) keeps the place it had, whatever on_busy says.
        assert groups.enter("g", two, "skip", LEASE, SUBMITTED).state == "waiting"
        assert groups.enter("g", one, "cancel-running", LEASE, SUBMITTED).state == "holding"
        assert len(groups.members("g")) == 2

    def test_group_waiters_are_served_by_submission_time(self, store: StateStore) -> None:
        groups = self._groups(store)
        holder = rid(0)
        groups.enter("g", holder, "queue", LEASE, SUBMITTED)
        # Ids of one second sort randomly: the submission time decides, not the id.
        groups.enter("g", "run-a", "queue", LEASE, "2026-06-01T09:00:01.000002Z")
        groups.enter("g", "run-b", "queue", LEASE, "2026-06-01T09:00:01.000001Z")
        assert [m.run_id for m in groups.members("g")] == [holder, "run-b", "run-a"]
        assert groups.members("g")[1].submitted == "2026-06-01T09:00:01.000001Z"
        groups.leave("g", holder)
        assert groups.poll("g", "run-b", LEASE).state == "holding"

    def test_group_skip_while_busy(self, store: StateStore) -> None:
        groups = self._groups(store)
        one, two = rid(1), rid(2)
        assert groups.enter("nightly", one, "skip", LEASE, SUBMITTED).state == "holding"
        turn = groups.enter("nightly", two, "skip", LEASE, SUBMITTED)
        assert (turn.state, turn.holder) == ("skipped", one)
        assert [m.run_id for m in groups.members("nightly")] == [one]
        groups.leave("nightly", one)
        assert groups.enter("nightly", two, "skip", LEASE, SUBMITTED).state == "holding"

    def test_group_cancel_running_preempts_holder_and_waiters(self, store: StateStore) -> None:
        groups = self._groups(store)
        one, two, three = rid(1), rid(2), rid(3)
        groups.enter("deploy", one, "queue", LEASE, SUBMITTED)
        groups.enter("deploy", two, "queue", LEASE, SUBMITTED)
        turn = groups.enter("deploy", three, "cancel-running", LEASE, SUBMITTED)
        # It takes over once the cancelled holder has let go: never two at once.
        assert (turn.state, turn.holder) == ("waiting", one)
        for loser in (one, two):
            told = groups.poll("deploy", loser, LEASE)
            assert (told.state, told.by) == ("cancelled", three)
        groups.leave("deploy", two)
        assert groups.poll("deploy", three, LEASE).state == "waiting"
        groups.leave("deploy", one)
        assert groups.poll("deploy", three, LEASE).state == "holding"
        assert [m.run_id for m in groups.members("deploy")] == [three]

    def test_group_a_holder_whose_lease_lapsed_loses_it(self, store: StateStore) -> None:
        groups = self._groups(store)
        dead, alive = rid(1), rid(2)
        groups.enter("g", dead, "queue", 0.2, SUBMITTED)
        groups.enter("g", alive, "queue", LEASE, SUBMITTED)
        deadline = time.monotonic() + 30
        while groups.poll("g", alive, LEASE).state != "holding":
            assert time.monotonic() < deadline, "the dead holder's lease never lapsed"
            time.sleep(0.1)
        assert groups.poll("g", dead, LEASE).state == "lost"

    def test_group_many_handles_entering_at_once_elect_one(
        self, store: StateStore, store_factory: object
    ) -> None:
        self._groups(store)
        factory = store_factory
        assert callable(factory)
        handles = [factory() for _ in range(6)]
        ids = [rid(i) for i in range(6)]
        barrier = threading.Barrier(len(handles))
        states: dict[str, str] = {}

        def enter(i: int) -> None:
            barrier.wait()
            groups = handles[i].groups
            assert groups is not None
            states[ids[i]] = groups.enter("race", ids[i], "queue", LEASE, SUBMITTED).state

        threads = [threading.Thread(target=enter, args=(i,)) for i in range(len(handles))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(states.values()) == ["holding"] + ["waiting"] * 5
        members = require_groups(store).members("race")
        assert sorted(m.run_id for m in members) == sorted(ids)
        assert [m.state for m in members].count("holding") == 1

    def test_group_names_and_policies_are_checked(self, store: StateStore) -> None:
        groups = self._groups(store)
        for bad in ("a/b", "..", "a\nb", ""):
            with pytest.raises(InvalidKeyError):
                groups.enter(bad, rid(1), "queue", LEASE, SUBMITTED)
        with pytest.raises(InvalidKeyError):
            groups.enter("g", "a/b", "queue", LEASE, SUBMITTED)
        with pytest.raises(UsageError, match="on_busy must be one of queue, cancel-running, skip"):
            groups.enter("g", rid(1), "later", LEASE, SUBMITTED)
