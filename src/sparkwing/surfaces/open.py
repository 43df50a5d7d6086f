"""The single factory from a resolved spec to an opened surface.

Backends are imported lazily here, so importing sparkwing never loads a database driver
or cloud client that the chosen profile does not use.
"""

from __future__ import annotations

from pathlib import Path

from sparkwing.errors import ConfigError
from sparkwing.surfaces.cache.base import Cache
from sparkwing.surfaces.logs.base import LogStore
from sparkwing.surfaces.secrets.base import SecretStore
from sparkwing.surfaces.spec import SurfaceSpec
from sparkwing.surfaces.state.base import StateStore

STATE_TYPES = ("sqlite", "postgres", "s3", "gcs", "azure-blob", "controller", "mysql")
CACHE_TYPES = ("filesystem", "s3", "gcs", "azure-blob", "controller")
LOGS_TYPES = ("filesystem", "s3", "gcs", "azure-blob", "controller", "stdout")
SECRETS_TYPES = ("filesystem", "dotenv", "env", "controller", "none")


def _not_implemented(surface: str, spec: SurfaceSpec) -> ConfigError:
    return ConfigError(
        f'{surface} backend type "{spec.type}" is recognized but not implemented in this build'
    )


def _require_path(surface: str, spec: SurfaceSpec) -> Path:
    if not spec.path:
        raise ConfigError(f"{surface} backend type={spec.type} requires path")
    return Path(spec.path).expanduser()


def open_profile_state(spec: SurfaceSpec, secrets_spec: SurfaceSpec | None) -> StateStore:
    """A profile's state: a postgres ``url_source`` naming a secret is looked up in the
    profile's own secrets surface (opened only then)."""
    named_secret = spec.url_source and not spec.url_source.startswith("env:")
    secrets = open_secrets(secrets_spec) if named_secret and secrets_spec else None
    return open_state(spec, secrets=secrets)


def open_state(spec: SurfaceSpec, *, secrets: SecretStore | None = None) -> StateStore:
    """``secrets`` resolves a postgres ``url_source`` that names a secret (``env:VAR`` and
    ``url`` need none)."""
    if spec.type == "sqlite":
        from sparkwing.paths import default_state_path
        from sparkwing.surfaces.state.sqlite import SqliteState

        path = Path(spec.path).expanduser() if spec.path else default_state_path()
        return SqliteState(path)
    if spec.type == "postgres":
        import os

        from sparkwing.conf.resolve import resolve_url_source
        from sparkwing.surfaces.state.postgres import PostgresState

        return PostgresState(resolve_url_source(spec, secrets, os.environ))
    if spec.type in ("s3", "gcs", "azure-blob"):
        from sparkwing.paths import local_dir
        from sparkwing.surfaces.objectstore.open import open_object_store
        from sparkwing.surfaces.state.objectstore import ObjectStoreState
        from sparkwing.surfaces.state.outbox import OutboxState

        # Writes the store cannot take during a brief outage wait in the machine's outbox.
        inner = ObjectStoreState(open_object_store(spec, role="state"))
        return OutboxState(inner, local_dir() / "outbox.db")
    if spec.type == "controller":
        from sparkwing.controller.client import client_for
        from sparkwing.surfaces.state.controller import ControllerState

        return ControllerState(client_for(spec))
    raise _not_implemented("state", spec)


def open_cache(spec: SurfaceSpec) -> Cache:
    if spec.type == "filesystem":
        from sparkwing.surfaces.cache.filesystem import FilesystemCache

        root = _require_path("cache", spec)
        # A bucket's prefix is a key prefix; on a filesystem the same prefix is a folder.
        return FilesystemCache(root / spec.prefix if spec.prefix else root)
    if spec.type in ("s3", "gcs", "azure-blob"):
        from sparkwing.surfaces.cache.objectstore import ObjectStoreCache
        from sparkwing.surfaces.objectstore.open import open_object_store

        return ObjectStoreCache(open_object_store(spec, role="cache"))
    if spec.type == "controller":
        from sparkwing.controller.client import client_for
        from sparkwing.surfaces.cache.controller import ControllerCache

        return ControllerCache(client_for(spec))
    raise _not_implemented("cache", spec)


def open_logs(spec: SurfaceSpec) -> LogStore:
    if spec.type == "filesystem":
        from sparkwing.surfaces.logs.filesystem import FilesystemLogs

        return FilesystemLogs(_require_path("logs", spec))
    if spec.type == "stdout":
        from sparkwing.surfaces.logs.stdout import StdoutLogs

        return StdoutLogs()
    if spec.type in ("s3", "gcs", "azure-blob"):
        from sparkwing.surfaces.logs.objectstore import ObjectStoreLogs
        from sparkwing.surfaces.objectstore.open import open_object_store

        return ObjectStoreLogs(open_object_store(spec, role="logs"))
    if spec.type == "controller":
        from sparkwing.controller.client import client_for
        from sparkwing.surfaces.logs.controller import ControllerLogs

        return ControllerLogs(client_for(spec))
    raise _not_implemented("logs", spec)


def open_secrets(spec: SurfaceSpec) -> SecretStore:
    if spec.type in ("filesystem", "dotenv"):
        from sparkwing.surfaces.secrets.dotenv import DotenvSecrets

        plain = spec.options.get("plain_path")
        return DotenvSecrets(
            _require_path("secrets", spec), plain_path=Path(plain).expanduser() if plain else None
        )
    if spec.type == "env":
        from sparkwing.surfaces.secrets.env import EnvSecrets

        return EnvSecrets(prefix=spec.prefix or "")
    if spec.type == "none":
        from sparkwing.surfaces.secrets.env import NoSecrets

        return NoSecrets()
    if spec.type == "controller":
        from sparkwing.controller.client import client_for
        from sparkwing.surfaces.secrets.controller import ControllerSecrets

        return ControllerSecrets(client_for(spec))
    raise _not_implemented("secrets", spec)
