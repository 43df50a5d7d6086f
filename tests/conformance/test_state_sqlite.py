"""Runs the state conformance suite against SqliteState on a temporary file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkwing.surfaces.state.base import StateStore
from sparkwing.surfaces.state.sqlite import SqliteState

from .state_suite import StateConformance, StoreFactory


class TestSqliteState(StateConformance):
    @pytest.fixture
    def db_path(self, tmp_path: Path) -> Path:
        return tmp_path / "nested" / "state.db"

    @pytest.fixture
    def store(self, db_path: Path) -> Iterator[StateStore]:
        store = SqliteState(db_path)
        yield store
        store.close()

    @pytest.fixture
    def store_factory(self, store: StateStore, db_path: Path) -> Iterator[StoreFactory]:
        opened: list[SqliteState] = []

        def factory() -> StateStore:
            opened.append(SqliteState(db_path))
            return opened[-1]

        yield factory
        for handle in opened:
            handle.close()
