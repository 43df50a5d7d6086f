"""The single factory from a resolved spec to an opened surface.

Which callable opens a type is looked up in :mod:`sparkwing.surfaces.registry` and imported
only then, so importing sparkwing never loads a database driver or cloud client that the
chosen profile does not use.
"""

from __future__ import annotations

from typing import Any, cast

from sparkwing.errors import ConfigError
from sparkwing.surfaces import registry
from sparkwing.surfaces.cache.base import Cache
from sparkwing.surfaces.logs.base import LogStore
from sparkwing.surfaces.secrets.base import SecretStore
from sparkwing.surfaces.spec import SurfaceSpec
from sparkwing.surfaces.state.base import StateStore


def _open(surface: str, spec: SurfaceSpec, *args: Any) -> Any:
    entry = registry.backend(surface, spec.type)
    if entry is None or not entry.implemented:
        raise ConfigError(
            f'{surface} backend type "{spec.type}" is recognized but not implemented in this build'
        )
    return entry.load()(spec, *args)


def open_profile_state(spec: SurfaceSpec, secrets_spec: SurfaceSpec | None) -> StateStore:
    """A profile's state: a postgres ``url_source`` naming a secret is looked up in the
    profile's own secrets surface (opened only then)."""
    named_secret = spec.url_source and not spec.url_source.startswith("env:")
    secrets = open_secrets(secrets_spec) if named_secret and secrets_spec else None
    return open_state(spec, secrets=secrets)


def open_state(spec: SurfaceSpec, *, secrets: SecretStore | None = None) -> StateStore:
    """``secrets`` resolves a postgres ``url_source`` that names a secret (``env:VAR`` and
    ``url`` need none)."""
    return cast(StateStore, _open("state", spec, secrets))


def open_cache(spec: SurfaceSpec) -> Cache:
    return cast(Cache, _open("cache", spec))


def open_logs(spec: SurfaceSpec) -> LogStore:
    return cast(LogStore, _open("logs", spec))


def open_secrets(spec: SurfaceSpec) -> SecretStore:
    return cast(SecretStore, _open("secrets", spec))
