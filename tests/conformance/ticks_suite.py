"""Schedule ticks (claim a tick together with the run it queues): part of the state
conformance suite. An optional part: a store without it has ``ticks`` None (callers refuse
with a NotSupportedError), and the cases below then skip."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sparkwing.errors import NotSupportedError, PreconditionFailedError, UsageError
from sparkwing.surfaces.state.base import (
    RunRecord,
    ScheduleTicks,
    StateStore,
    require_queue,
    require_ticks,
)

from .queue_suite import queued_run

KEY = "repo/app/nightly/0 3 * * *@Europe/Paris"
TICK = "2026-05-01T01:00:00Z"
SPEC: dict[str, Any] = {"version": 2, "pipeline": "build", "args": [], "profile": None}


def scheduled(offset: int) -> RunRecord:
    run = queued_run(offset)
    run.trigger = "schedule"
    run.extra = {"tick": TICK, "schedule": KEY}
    return run


class TickConformance:
    """Mixed into StateConformance; uses its ``store`` and ``store_factory`` fixtures."""

    def _ticks(self, store: StateStore) -> ScheduleTicks:
        if store.ticks is not None:
            return store.ticks
        with pytest.raises(NotSupportedError, match="schedules"):
            require_ticks(store)
        pytest.skip("this store does not coordinate schedule ticks (checked the refusal)")

    def test_firing_a_tick_queues_its_run(self, store: StateStore) -> None:
        ticks = self._ticks(store)
        assert ticks.last(KEY) is None
        run = scheduled(0)
        assert ticks.fire(KEY, TICK, run, SPEC) is True
        assert ticks.last(KEY) == TICK
        got = store.get_run(run.run_id)
        assert got is not None and got.status == "queued" and got.trigger == "schedule"
        assert got.extra == run.extra
        claim = require_queue(store).claim("w", 60)
        assert claim is not None and claim.run.run_id == run.run_id and claim.spec == SPEC

    def test_a_claimed_tick_queues_nothing_again(self, store: StateStore) -> None:
        ticks = self._ticks(store)
        first, second = scheduled(0), scheduled(1)
        assert ticks.fire(KEY, TICK, first, SPEC) is True
        assert ticks.fire(KEY, TICK, second, SPEC) is False
        assert store.get_run(second.run_id) is None
        # The holder retrying (its answer was lost) is told the tick is its own.
        assert ticks.fire(KEY, TICK, first, SPEC) is True
        assert [r.run_id for r in store.list_runs().runs] == [first.run_id]

    def test_last_is_the_latest_tick_of_that_schedule(self, store: StateStore) -> None:
        ticks = self._ticks(store)
        for i, tick in enumerate(("2026-05-01T01:00:00Z", "2026-05-03T01:00:00Z")):
            assert ticks.fire(KEY, tick, scheduled(i), SPEC)
        assert ticks.fire(KEY, "2026-05-02T01:00:00Z", scheduled(5), SPEC)
        assert ticks.last(KEY) == "2026-05-03T01:00:00Z"
        assert ticks.last(KEY + "x") is None
        assert ticks.fire(KEY + "x", "2026-05-03T01:00:00Z", scheduled(9), SPEC) is True

    def test_a_run_id_in_use_claims_nothing(self, store: StateStore) -> None:
        ticks = self._ticks(store)
        run = scheduled(0)
        store.create_run(RunRecord(run_id=run.run_id, pipeline="p", status="running"))
        with pytest.raises(PreconditionFailedError):
            ticks.fire(KEY, TICK, run, SPEC)
        assert ticks.last(KEY) is None  # the claim went with the failed submit

    def test_bad_keys_are_refused(self, store: StateStore) -> None:
        ticks = self._ticks(store)
        for schedule, tick in (("", TICK), (KEY, ""), ("a\nb", TICK), (KEY, "x" * 600)):
            with pytest.raises(UsageError):
                ticks.fire(schedule, tick, scheduled(0), SPEC)
        assert ticks.last(KEY) is None

    def test_racing_schedulers_queue_one_run(self, store: StateStore, store_factory: Any) -> None:
        self._ticks(store)
        handles = [store_factory() for _ in range(6)]
        runs = [scheduled(i) for i in range(len(handles))]
        start = threading.Barrier(len(handles))

        def fire(i: int) -> bool:
            ticks = handles[i].ticks
            assert ticks is not None
            start.wait()
            return ticks.fire(KEY, TICK, runs[i], SPEC)

        with ThreadPoolExecutor(len(handles)) as pool:
            won = list(pool.map(fire, range(len(handles))))
        assert won.count(True) == 1
        winner = runs[won.index(True)]
        assert [r.run_id for r in store.list_runs().runs] == [winner.run_id]
