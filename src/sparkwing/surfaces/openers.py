"""How each built-in backend is built from its resolved spec: the callables the registry
names (``surfaces.registry``), imported only when a profile uses them.

Every opener imports its backend inside the function, so loading this module loads no
database driver or cloud client.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sparkwing.errors import ConfigError
from sparkwing.surfaces.spec import SurfaceSpec

if TYPE_CHECKING:
    from sparkwing.surfaces.cache.base import Cache
    from sparkwing.surfaces.logs.base import LogStore
    from sparkwing.surfaces.secrets.base import SecretStore
    from sparkwing.surfaces.state.base import StateStore


def require_path(surface: str, spec: SurfaceSpec) -> Path:
    if not spec.path:
        raise ConfigError(f"{surface} backend type={spec.type} requires path")
    return Path(spec.path).expanduser()


# -- state: openers take the spec and the profile's secret store (or None)
def sqlite_state(spec: SurfaceSpec, secrets: SecretStore | None) -> StateStore:
    from sparkwing.paths import default_state_path
    from sparkwing.surfaces.state.sqlite import SqliteState

    return SqliteState(Path(spec.path).expanduser() if spec.path else default_state_path())


def postgres_state(spec: SurfaceSpec, secrets: SecretStore | None) -> StateStore:
    import os

    from sparkwing.conf.resolve import resolve_url_source
    from sparkwing.surfaces.state.postgres import PostgresState

    return PostgresState(resolve_url_source(spec, secrets, os.environ))


def objectstore_state(spec: SurfaceSpec, secrets: SecretStore | None) -> StateStore:
    from sparkwing.paths import local_dir
    from sparkwing.surfaces.objectstore.open import open_object_store
    from sparkwing.surfaces.state.objectstore import ObjectStoreState
    from sparkwing.surfaces.state.outbox import OutboxState

    # Writes the store cannot take during a brief outage wait in the machine's outbox.
    inner = ObjectStoreState(open_object_store(spec, role="state"))
    return OutboxState(inner, local_dir() / "outbox.db")


def controller_state(spec: SurfaceSpec, secrets: SecretStore | None) -> StateStore:
    from sparkwing.controller.client import client_for
    from sparkwing.surfaces.state.controller import ControllerState

    return ControllerState(client_for(spec))


# -- cache
def filesystem_cache(spec: SurfaceSpec) -> Cache:
    from sparkwing.surfaces.cache.filesystem import FilesystemCache

    root = require_path("cache", spec)
    # A bucket's prefix is a key prefix; on a filesystem the same prefix is a folder.
    return FilesystemCache(root / spec.prefix if spec.prefix else root)


def objectstore_cache(spec: SurfaceSpec) -> Cache:
    from sparkwing.surfaces.cache.objectstore import ObjectStoreCache
    from sparkwing.surfaces.objectstore.open import open_object_store

    return ObjectStoreCache(open_object_store(spec, role="cache"))


def controller_cache(spec: SurfaceSpec) -> Cache:
    from sparkwing.controller.client import client_for
    from sparkwing.surfaces.cache.controller import ControllerCache

    return ControllerCache(client_for(spec))


# -- logs
def filesystem_logs(spec: SurfaceSpec) -> LogStore:
    from sparkwing.surfaces.logs.filesystem import FilesystemLogs

    return FilesystemLogs(require_path("logs", spec))


def stdout_logs(spec: SurfaceSpec) -> LogStore:
    from sparkwing.surfaces.logs.stdout import StdoutLogs

    return StdoutLogs()


def objectstore_logs(spec: SurfaceSpec) -> LogStore:
    from sparkwing.surfaces.logs.objectstore import ObjectStoreLogs
    from sparkwing.surfaces.objectstore.open import open_object_store

    return ObjectStoreLogs(open_object_store(spec, role="logs"))


def controller_logs(spec: SurfaceSpec) -> LogStore:
    from sparkwing.controller.client import client_for
    from sparkwing.surfaces.logs.controller import ControllerLogs

    return ControllerLogs(client_for(spec))


# -- secrets
def dotenv_secrets(spec: SurfaceSpec) -> SecretStore:
    from sparkwing.surfaces.secrets.dotenv import DotenvSecrets

    plain = spec.options.get("plain_path")
    return DotenvSecrets(
        require_path("secrets", spec), plain_path=Path(plain).expanduser() if plain else None
    )


def env_secrets(spec: SurfaceSpec) -> SecretStore:
    from sparkwing.surfaces.secrets.env import EnvSecrets

    return EnvSecrets(prefix=spec.prefix or "")


def no_secrets(spec: SurfaceSpec) -> SecretStore:
    from sparkwing.surfaces.secrets.env import NoSecrets

    return NoSecrets()


def controller_secrets(spec: SurfaceSpec) -> SecretStore:
    from sparkwing.controller.client import client_for
    from sparkwing.surfaces.secrets.controller import ControllerSecrets

    return ControllerSecrets(client_for(spec))
