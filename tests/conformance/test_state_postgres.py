"""Runs the state conformance suite against PostgresState on the test server: one fresh
database per module, emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sparkwing.surfaces.state.base import StateStore
from sparkwing.surfaces.state.postgres import PostgresState
from tests.pgutil import empty_tables, fresh_database

from .state_suite import StateConformance, StoreFactory


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_database("conformance") as url:
        PostgresState(url).close()  # migrate once; each test then only empties the tables
        yield url


class TestPostgresState(StateConformance):
    @pytest.fixture
    def store(self, pg_url: str) -> Iterator[StateStore]:
        empty_tables(pg_url)
        store = PostgresState(pg_url)
        yield store
        store.close()

    @pytest.fixture
    def store_factory(self, store: StateStore, pg_url: str) -> Iterator[StoreFactory]:
        opened: list[PostgresState] = []

        def factory() -> StateStore:
            opened.append(PostgresState(pg_url))
            return opened[-1]

        yield factory
        for handle in opened:
            handle.close()
