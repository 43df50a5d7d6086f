"""The controller's own storage: the surfaces of its profile, opened through
:mod:`sparkwing.surfaces.open`, plus its tokens, encrypted secrets and run owners."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sparkwing.controller.metadb import MetaDB, open_metadb
from sparkwing.controller.owners import RunOwners
from sparkwing.controller.replay import ReplayCache
from sparkwing.controller.spool import Spool, open_spool
from sparkwing.controller.tokens import TokenStore
from sparkwing.errors import ConfigError

if TYPE_CHECKING:
    from sparkwing.conf.resolved import ResolvedProfile
    from sparkwing.surfaces.cache.base import Cache
    from sparkwing.surfaces.logs.base import LogStore
    from sparkwing.surfaces.secrets.base import SecretStore
    from sparkwing.surfaces.spec import SurfaceSpec
    from sparkwing.surfaces.state.base import StateStore


@dataclass
class Backend:
    """Everything the routes read and write. ``spool`` holds streamed uploads and downloads
    on their way between a socket and the cache."""

    state: StateStore
    cache: Cache
    logs: LogStore
    vault: SecretStore
    tokens: TokenStore
    owners: RunOwners
    spool: Spool
    where: dict[str, str] = field(default_factory=dict)
    replays: ReplayCache = field(default_factory=ReplayCache)

    def close(self) -> None:
        for close in (self.logs.close, self.cache.close, self.state.close, self.tokens.db.close):
            try:
                close()
            except Exception:  # closing is best effort; every store gets its turn
                pass
        self.spool.close()


def _spec(resolved: ResolvedProfile, surface: str) -> SurfaceSpec:
    from sparkwing.conf.interpolate import interpolate_spec

    spec = interpolate_spec(resolved.spec(surface), run_id="", pipeline="", profile=resolved.name)
    if spec.type == "controller":
        raise ConfigError(
            f'profile "{resolved.name}" sends {surface} to a controller; the profile a '
            "controller serves from must name its own stores (sqlite or postgres state, "
            "filesystem or object-store cache and logs)"
        )
    return spec


def _url_secrets(resolved: ResolvedProfile, state: SurfaceSpec) -> SecretStore | None:
    """The profile's secrets store, only when the state DSN is a secret name to look up."""
    from sparkwing.surfaces.open import open_secrets

    source = state.url_source or ""
    if state.url or not source or source.startswith("env:"):
        return None
    return open_secrets(_spec(resolved, "secrets"))


def open_metadb_for(resolved: ResolvedProfile, env: Mapping[str, str]) -> MetaDB:
    """The controller tables of the profile's state database (what `token` commands use)."""
    state = _spec(resolved, "state")
    return open_metadb(state, _url_secrets(resolved, state), env)


def open_backend(resolved: ResolvedProfile, key: bytes, env: Mapping[str, str]) -> Backend:
    """Open every store of ``resolved``; on a failure, close what was already opened."""
    from sparkwing.controller.vault import Vault
    from sparkwing.surfaces.open import open_cache, open_logs, open_state

    specs = {s: _spec(resolved, s) for s in ("state", "cache", "logs")}
    if specs["logs"].type == "stdout":
        raise ConfigError("the controller cannot serve logs of type stdout (they are unreadable)")
    opened: list[object] = []
    url_secrets = _url_secrets(resolved, specs["state"])
    try:
        state = open_state(specs["state"], secrets=url_secrets)
        opened.append(state)
        db = open_metadb(specs["state"], url_secrets, env)
        opened.append(db)
        vault = Vault(db, key)
        cache = open_cache(specs["cache"])
        opened.append(cache)
        logs = open_logs(specs["logs"])
        opened.append(logs)
    except BaseException:
        for store in reversed(opened):
            close = getattr(store, "close", None)
            if callable(close):
                close()
        raise
    return Backend(
        state=state,
        cache=cache,
        logs=logs,
        vault=vault,
        tokens=TokenStore(db),
        owners=RunOwners(db),
        spool=open_spool(cache),
        where={
            "state": specs["state"].describe(),
            "cache": cache.describe(),
            "logs": _describe(logs, specs["logs"]),
            "secrets": vault.describe(),
        },
    )


def _describe(store: object, spec: SurfaceSpec) -> str:
    describe = getattr(store, "describe", None)
    return str(describe()) if callable(describe) else spec.describe()
