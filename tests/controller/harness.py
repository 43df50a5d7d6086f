"""A real controller for tests: uvicorn serving the app from a thread of the test process on
a free 127.0.0.1 port, backed by sqlite + filesystem or by Postgres + S3 (moto). One server
per module; ``reset`` swaps in fresh, empty stores so every test starts from nothing
without paying for a new server."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sparkwing.conf.resolved import ResolvedProfile
from sparkwing.controller.app import build_app
from sparkwing.controller.backend import Backend, open_backend
from sparkwing.controller.scopes import SCOPES
from sparkwing.controller.server import BackgroundServer, serve_in_thread
from sparkwing.surfaces.spec import SurfaceSpec

KEY = os.urandom(32)
ALL_SCOPES = tuple(s for s in SCOPES if s != "admin")


def local_profile(root: Path) -> ResolvedProfile:
    """A controller profile on sqlite state and filesystem cache and logs under ``root``."""
    return ResolvedProfile(
        name="controller",
        source="flag",
        state=SurfaceSpec(type="sqlite", path=str(root / "state.db")),
        cache=SurfaceSpec(type="filesystem", path=str(root / "cache")),
        logs=SurfaceSpec(type="filesystem", path=str(root / "logs")),
        secrets=SurfaceSpec(type="none"),
    )


class Controller:
    def __init__(self, profile: ResolvedProfile) -> None:
        self.app = build_app(open_backend(profile, KEY, os.environ))
        self.server: BackgroundServer = serve_in_thread(self.app, access_log=False)
        self.url = self.server.url

    @property
    def backend(self) -> Backend:
        backend: Backend = self.app.state.backend
        return backend

    def reset(self, profile: ResolvedProfile) -> None:
        """Serve fresh stores from now on (the previous ones are closed)."""
        old = self.backend
        self.app.state.backend = open_backend(profile, KEY, os.environ)
        old.close()

    def token(self, *scopes: str, name: str | None = None) -> str:
        """A new token with these scopes (default: every scope but admin)."""
        _, value = self.backend.tokens.create(
            name or "t-" + secrets.token_hex(4), scopes or ALL_SCOPES
        )
        return value

    def spec(self, token: str) -> SurfaceSpec:
        return SurfaceSpec(type="controller", url=self.url, token=token)

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    """A controller on sqlite + filesystem stores; tests call ``reset`` for empty ones."""
    running = Controller(local_profile(tmp_path_factory.mktemp("controller")))
    yield running
    running.stop()


@pytest.fixture(name="ctl")
def empty_controller(controller: Controller, tmp_path: Path) -> Controller:
    """``ctl``: the module's controller serving fresh, empty sqlite + filesystem stores."""
    controller.reset(local_profile(tmp_path / "controller"))
    return controller


@contextmanager
def postgres_and_s3() -> Iterator[Callable[[], ResolvedProfile]]:
    """For a controller on Postgres state and S3 (moto) cache and logs, a function giving
    fresh profiles: the database's tables emptied, a new prefix in the bucket."""
    from sparkwing.surfaces.state.postgres import PostgresState
    from tests.objectstores import create_bucket, empty, emulator_env, make_store, new_bucket_name
    from tests.pgutil import empty_tables, fresh_database

    with fresh_database("controller") as url, pytest.MonkeyPatch.context() as env:
        for name, value in emulator_env("s3").items():
            env.setenv(name, value)
        bucket = new_bucket_name()
        create_bucket("s3", bucket)
        PostgresState(url).close()  # migrate once; each profile then only empties the tables

        def fresh() -> ResolvedProfile:
            empty_tables(url)
            prefix = secrets.token_hex(6)
            return ResolvedProfile(
                name="controller",
                source="flag",
                state=SurfaceSpec(type="postgres", url=url),
                cache=SurfaceSpec(type="s3", bucket=bucket, prefix=f"{prefix}/cache"),
                logs=SurfaceSpec(type="s3", bucket=bucket, prefix=f"{prefix}/logs"),
                secrets=SurfaceSpec(type="none"),
            )

        try:
            yield fresh
        finally:
            store = make_store("s3", bucket)
            empty(store)
            store.close()


@pytest.fixture(scope="module")
def pg_controller() -> Iterator[tuple[Controller, Callable[[], ResolvedProfile]]]:
    """A controller on Postgres + S3 (skipped, or failed under CI, without those servers)."""
    with postgres_and_s3() as fresh:
        running = Controller(fresh())
        yield running, fresh
        running.stop()


PgController = tuple[Controller, Callable[[], ResolvedProfile]]
