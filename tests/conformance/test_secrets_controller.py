"""Runs the secrets conformance suite through the controller client against a real
controller (uvicorn on a free loopback port) keeping secrets encrypted in SQLite, and in
Postgres."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkwing.surfaces.open import open_secrets
from sparkwing.surfaces.secrets.base import SecretStore
from sparkwing.surfaces.secrets.controller import ControllerSecrets
from tests.controller.harness import (
    Controller,
    PgController,
    controller,
    local_profile,
    pg_controller,
)

from .secrets_suite import SecretsConformance

__all__ = ["controller", "pg_controller"]


class TestControllerSecretsOnSqlite(SecretsConformance):
    @pytest.fixture
    def secrets(self, controller: Controller, tmp_path: Path) -> SecretStore:
        controller.reset(local_profile(tmp_path / "controller"))
        store = open_secrets(controller.spec(controller.token("secrets.read", "secrets.write")))
        assert isinstance(store, ControllerSecrets)
        return store


class TestControllerSecretsOnPostgres(SecretsConformance):
    @pytest.fixture
    def secrets(self, pg_controller: PgController) -> SecretStore:
        controller, fresh = pg_controller
        controller.reset(fresh())
        return open_secrets(controller.spec(controller.token("secrets.read", "secrets.write")))
