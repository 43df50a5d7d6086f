"""Opening one surface through a real controller for the controller conformance tests: on the
local profile (filesystem/SQLite), or on Postgres with S3 (moto)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sparkwing.surfaces.spec import SurfaceSpec
from tests.controller.harness import Controller, PgController, local_profile

S = TypeVar("S")


def _open(controller: Controller, opener: Callable[[SurfaceSpec], S], area: str) -> S:
    return opener(controller.spec(controller.token(f"{area}.read", f"{area}.write")))


def on_local(
    controller: Controller, tmp_path: Path, opener: Callable[[SurfaceSpec], S], area: str
) -> S:
    """The ``area`` surface of a controller reset to a fresh local profile under tmp_path."""
    controller.reset(local_profile(tmp_path / "controller"))
    return _open(controller, opener, area)


def on_postgres(pg_controller: PgController, opener: Callable[[SurfaceSpec], S], area: str) -> S:
    """The ``area`` surface of the Postgres-backed controller, reset to fresh stores."""
    controller, fresh = pg_controller
    controller.reset(fresh())
    return _open(controller, opener, area)
