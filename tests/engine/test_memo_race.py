"""The memo race of issue 13: a waiter that looked for the result just before the leader
stored it must use that result, never become a second leader (real sqlite state and
filesystem cache; the interleaving of the three jobs is played out in one thread)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sparkwing.engine.memocoord import MemoCoordinator
from sparkwing.surfaces.cache.filesystem import FilesystemCache
from sparkwing.surfaces.state.sqlite import SqliteState


class LookedEarly(FilesystemCache):
    """A cache whose first memo lookup answers "absent", as it did for a job that looked
    just before the leader stored its result; ``then`` runs what the other jobs did
    between that look and this job's next step."""

    def __init__(self, root: Path, then: Callable[[], None] | None = None) -> None:
        super().__init__(root)
        self._looked = False
        self._then = then

    def get(self, key: str) -> bytes | None:
        if key.startswith("memo/") and not self._looked:
            self._looked = True
            if self._then is not None:
                self._then()
            return None
        return super().get(key)


@pytest.fixture
def led(tmp_path: Path) -> Iterator[tuple[SqliteState, Path, MemoCoordinator, str]]:
    """A state, a cache folder, and a leader computing key ``k`` of job ``build``."""
    state = SqliteState(tmp_path / "state.db")
    root = tmp_path / "cache"
    try:
        leader = MemoCoordinator(state, FilesystemCache(root), "run-l", "p", lease=60)
        key = leader.key("build", "k")
        assert leader.settle("build", key).state == "leader"
        yield state, root, leader, key
    finally:
        state.close()


def test_waiters_that_looked_before_the_result_was_stored_use_it(
    led: tuple[SqliteState, Path, MemoCoordinator, str],
) -> None:
    state, root, leader, key = led
    first = MemoCoordinator(state, LookedEarly(root), "run-1", "p", lease=60)
    settled: dict[str, str] = {}

    def meanwhile() -> None:
        # The leader stores its result, then the first waiter (which also looked
        # before that) carries on: neither may clear the way for a second leader.
        leader.complete("build", {"built_by": "run-l"}, None, None)
        settled["first"] = first.settle("build", key).state

    second = MemoCoordinator(state, LookedEarly(root, then=meanwhile), "run-2", "p", 60)
    outcome = second.settle("build", key)
    assert settled["first"] == "cached"
    assert outcome.state == "cached", outcome
    assert outcome.doc is not None and outcome.doc["output"] == {"built_by": "run-l"}
    assert not second.is_leader("build") and not first.is_leader("build")


def test_a_claim_won_after_the_result_was_stored_uses_it(
    led: tuple[SqliteState, Path, MemoCoordinator, str],
) -> None:
    state, root, leader, key = led

    def meanwhile() -> None:
        # Stored, and the key's row gone (an expired or cleared reservation): the
        # claim that follows is won, yet the result exists.
        leader.complete("build", {"built_by": "run-l"}, None, None)
        state.memo.forget(key)

    late = MemoCoordinator(state, LookedEarly(root, then=meanwhile), "run-2", "p", 60)
    outcome = late.settle("build", key)
    assert outcome.state == "cached", outcome
    assert not late.is_leader("build")
