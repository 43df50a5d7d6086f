"""The state conformance suite against object-store state on an in-memory store, and the
memo cases on a store that ignores preconditions (the degraded path)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sparkwing.surfaces.objectstore.probe import probe_conditional_writes
from sparkwing.surfaces.state.base import MemoClaim, StateStore
from sparkwing.surfaces.state.objectstore import ObjectStoreState
from sparkwing.surfaces.state.outbox import OutboxState
from tests.conformance.state_suite import StateConformance, StoreFactory, ev, make_run
from tests.doubles.memory import MemoryObjectStore
from tests.surfaces._memstore import CountingStore, keys


class TestMemStoreState(StateConformance):
    @pytest.fixture
    def mem(self) -> MemoryObjectStore:
        return MemoryObjectStore()

    @pytest.fixture
    def store(self, mem: MemoryObjectStore) -> StateStore:
        return ObjectStoreState(mem)

    @pytest.fixture
    def store_factory(self, mem: MemoryObjectStore) -> StoreFactory:
        return lambda: ObjectStoreState(mem)


class TestMemStoreStateThroughOutbox(StateConformance):
    """The wrapper the factory applies changes nothing while the store is reachable."""

    @pytest.fixture
    def mem(self) -> MemoryObjectStore:
        return MemoryObjectStore()

    @pytest.fixture
    def store(self, mem: MemoryObjectStore, tmp_path: Path) -> StateStore:
        return OutboxState(ObjectStoreState(mem), tmp_path / "outbox.db")

    @pytest.fixture
    def store_factory(self, mem: MemoryObjectStore, tmp_path: Path) -> StoreFactory:
        return lambda: OutboxState(ObjectStoreState(mem), tmp_path / "outbox.db")


class TestPreconditionIgnoringStore:
    """A store that accepts conditional writes and ignores them: the probe notices, memoize
    degrades to "every runner computes" with one warning, and nothing is corrupted."""

    def test_probe_tells_the_stores_apart(self) -> None:
        honest, liar = (
            CountingStore(MemoryObjectStore()),
            CountingStore(MemoryObjectStore(ignore_preconditions=True)),
        )
        assert probe_conditional_writes(honest) is True
        assert probe_conditional_writes(liar) is False
        spent = honest.total
        assert probe_conditional_writes(honest) is True
        assert honest.total == spent  # answered from memory the second time
        for store in (honest, liar):
            assert keys(store) == []  # the probe cleans up after itself

    def test_every_runner_leads_with_one_warning_and_nothing_is_corrupted(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        name = f"liar-{os.urandom(4).hex()}"  # the warning is once per location and process
        mem = MemoryObjectStore(name, ignore_preconditions=True)
        writer = ObjectStoreState(mem)
        run = make_run(0)
        writer.create_run(run)
        writer.append_events(run.run_id, [ev("run_started")])
        handles = [ObjectStoreState(mem) for _ in range(8)]
        barrier = threading.Barrier(len(handles))

        def work(w: int) -> MemoClaim:
            barrier.wait()
            return handles[w].memo.acquire("build/abc", f"runner-{w}", 60)

        with ThreadPoolExecutor(len(handles)) as pool:
            claims = list(pool.map(work, range(len(handles))))
        assert [c.state for c in claims] == ["leader"] * 8
        assert sorted(c.holder or "" for c in claims) == sorted(f"runner-{w}" for w in range(8))
        for w, handle in enumerate(handles):
            assert handle.memo.renew("build/abc", f"runner-{w}", 60) is True
            handle.memo.complete("build/abc", f"runner-{w}", "memo/build/abc")
        # Nothing was elected, so nothing claims to be done: later runners find the
        # content-addressed result in the cache (engine side) or compute it again.
        assert handles[0].memo.acquire("build/abc", "late", 60).state == "leader"
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.name == "sparkwing.surfaces.objectstore.probe" and r.levelname == "WARNING"
        ]
        assert warnings == [
            f"memory://{name}/ ignores conditional writes; memoize cannot elect a "
            "leader there, every runner computes (results are content-addressed, nothing is "
            "corrupted)"
        ]
        # The run written beside all that is intact, and no coordination document was left.
        assert writer.get_run(run.run_id) == run
        assert [e.kind for e in writer.list_events(run.run_id)] == ["run_started"]
        assert keys(mem, "coord/") == []

    def test_an_honest_store_still_elects_one_leader(self) -> None:
        mem = MemoryObjectStore("honest")
        handles = [ObjectStoreState(mem) for _ in range(8)]
        barrier = threading.Barrier(len(handles))

        def work(w: int) -> MemoClaim:
            barrier.wait()
            return handles[w].memo.acquire("build/abc", f"runner-{w}", 60)

        with ThreadPoolExecutor(len(handles)) as pool:
            claims = list(pool.map(work, range(len(handles))))
        assert sorted(c.state for c in claims) == ["held"] * 7 + ["leader"]


def test_concurrency_groups_are_refused_where_preconditions_are_ignored(tmp_path: Path) -> None:
    # Two runners could both "hold" a group on such a store: it offers none, and says so.
    from sparkwing.errors import NotSupportedError
    from sparkwing.surfaces.state.base import require_groups

    mem = MemoryObjectStore(f"liar-{os.urandom(4).hex()}", ignore_preconditions=True)
    state = OutboxState(ObjectStoreState(mem), tmp_path / "outbox.db")
    try:
        assert state.groups is None
        with pytest.raises(NotSupportedError) as info:
            require_groups(state)
        assert str(info.value) == (
            f"concurrency groups are not supported on this store ({state.describe()}): use "
            "sqlite, postgres, a controller, or an object store that enforces conditional writes"
        )
        assert ObjectStoreState(MemoryObjectStore()).groups is not None
    finally:
        state.close()
