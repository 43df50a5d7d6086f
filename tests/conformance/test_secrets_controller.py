"""Runs the secrets conformance suite through the controller client against a real
controller (uvicorn on a free loopback port) keeping secrets encrypted in SQLite, and in
Postgres."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkwing.surfaces.open import open_secrets
from sparkwing.surfaces.secrets.base import SecretStore
from sparkwing.surfaces.secrets.controller import ControllerSecrets
from tests.controller.harness import Controller, PgController, controller, pg_controller

from .controller_surfaces import on_local, on_postgres
from .secrets_suite import SecretsConformance

__all__ = ["controller", "pg_controller"]


class TestControllerSecretsOnSqlite(SecretsConformance):
    @pytest.fixture
    def secrets(self, controller: Controller, tmp_path: Path) -> SecretStore:
        store = on_local(controller, tmp_path, open_secrets, "secrets")
        assert isinstance(store, ControllerSecrets)
        return store


class TestControllerSecretsOnPostgres(SecretsConformance):
    @pytest.fixture
    def secrets(self, pg_controller: PgController) -> SecretStore:
        return on_postgres(pg_controller, open_secrets, "secrets")
