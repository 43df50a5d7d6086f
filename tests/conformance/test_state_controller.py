"""Runs the state conformance suite through the controller client against a real controller
(uvicorn on a free loopback port) backed by SQLite, and by Postgres."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkwing.controller.client import ControllerClient
from sparkwing.surfaces.open import open_state
from sparkwing.surfaces.state.base import StateStore
from sparkwing.surfaces.state.controller import ControllerState
from tests.controller.harness import (
    Controller,
    PgController,
    controller,
    local_profile,
    pg_controller,
)

from .state_suite import StateConformance, StoreFactory

__all__ = ["controller", "pg_controller"]
# Through a controller a gate's resolution is recorded under the token's name.
TOKEN_NAME = "conformance"
SCOPES = ("runs.read", "runs.write", "runs.approve", "runs.delete")


class TestControllerStateOnSqlite(StateConformance):
    def recorded(self, by: str) -> str:
        return TOKEN_NAME

    @pytest.fixture
    def token(self, controller: Controller, tmp_path: Path) -> str:
        controller.reset(local_profile(tmp_path))
        return controller.token(*SCOPES, name=TOKEN_NAME)

    @pytest.fixture
    def store(self, controller: Controller, token: str) -> StateStore:
        store = open_state(controller.spec(token))
        assert isinstance(store, ControllerState)
        return store

    @pytest.fixture
    def store_factory(self, controller: Controller, token: str, store: StateStore) -> StoreFactory:
        return lambda: ControllerState(ControllerClient(controller.url, token))


class TestControllerStateOnPostgres(StateConformance):
    def recorded(self, by: str) -> str:
        return TOKEN_NAME

    @pytest.fixture
    def token(self, pg_controller: PgController) -> str:
        controller, fresh = pg_controller
        controller.reset(fresh())
        return controller.token(*SCOPES, name=TOKEN_NAME)

    @pytest.fixture
    def store(self, pg_controller: PgController, token: str) -> StateStore:
        return open_state(pg_controller[0].spec(token))

    @pytest.fixture
    def store_factory(
        self, pg_controller: PgController, token: str, store: StateStore
    ) -> StoreFactory:
        return lambda: ControllerState(ControllerClient(pg_controller[0].url, token))
