"""One resolved profile's four surfaces (state, cache, logs, secrets), each opened on first use
through the factory in :mod:`sparkwing.surfaces.open` and all closed together, on every path."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sparkwing import _log
from sparkwing.errors import ConfigError
from sparkwing.surfaces.spec import SurfaceSpec

if TYPE_CHECKING:
    from sparkwing.conf.resolved import ResolvedProfile
    from sparkwing.surfaces.cache.base import Cache
    from sparkwing.surfaces.logs.base import LogStore
    from sparkwing.surfaces.secrets.base import SecretStore
    from sparkwing.surfaces.state.base import StateStore

log = _log.get("sparkwing.surfaces")


class Surfaces:
    """``with Surfaces(specs) as s: s.state.get_run(...)``: a surface is opened the first time
    it is asked for; leaving the block closes the opened ones, newest first."""

    def __init__(
        self, specs: Mapping[str, SurfaceSpec], *, values: Mapping[str, str] | None = None
    ) -> None:
        """``values``: ``run_id``, ``pipeline`` and ``profile`` to substitute in the specs
        (each surface's when it is opened); None: the specs are final already."""
        self._specs = dict(specs)
        self._values = dict(values) if values is not None else None
        self._opened: dict[str, Any] = {}

    @classmethod
    def of_profile(
        cls, resolved: ResolvedProfile, *, run_id: str = "", pipeline: str = ""
    ) -> Surfaces:
        """``resolved``'s surfaces with their variables substituted (one with no value here,
        such as ``${RUN_ID}`` outside a run, is a clear error when that surface is used)."""
        from sparkwing.conf.resolved import SURFACES

        values = {"run_id": run_id, "pipeline": pipeline, "profile": resolved.name}
        return cls({name: resolved.spec(name) for name in SURFACES}, values=values)

    def spec(self, name: str) -> SurfaceSpec:
        """The spec ``name`` opens with: variables substituted and ``~`` expanded."""
        try:
            spec = self._specs[name]
        except KeyError:
            raise ConfigError(f"no {name} surface in this profile") from None
        if self._values is None:
            return spec
        from sparkwing.conf.interpolate import interpolate_spec

        return interpolate_spec(spec, **self._values)

    def where(self, name: str) -> str:
        """Where surface ``name`` lives, for messages; never a token or DSN."""
        describe = getattr(self._open(name), "describe", None)
        return str(describe()) if callable(describe) else self.spec(name).describe()

    @property
    def state(self) -> StateStore:
        store: StateStore = self._open("state")
        return store

    @property
    def cache(self) -> Cache:
        store: Cache = self._open("cache")
        return store

    @property
    def logs(self) -> LogStore:
        store: LogStore = self._open("logs")
        return store

    @property
    def secrets(self) -> SecretStore:
        store: SecretStore = self._open("secrets")
        return store

    def _open(self, name: str) -> Any:
        if name not in self._opened:
            from sparkwing.surfaces import open as factory

            spec = self.spec(name)
            if name == "state":
                # A postgres url_source may name one of the profile's secrets.
                secrets = self.spec("secrets") if "secrets" in self._specs else None
                self._opened[name] = factory.open_profile_state(spec, secrets)
            else:
                opener = {
                    "cache": factory.open_cache,
                    "logs": factory.open_logs,
                    "secrets": factory.open_secrets,
                }[name]
                self._opened[name] = opener(spec)
        return self._opened[name]

    def close_one(self, name: str) -> None:
        """Close surface ``name`` now if it was opened (for an order that matters, such as
        logs written out before the run they belong to is marked final)."""
        store = self._opened.pop(name, None)
        closer = getattr(store, "close", None)
        if callable(closer):
            closer()

    def close(self) -> None:
        """Close every opened surface, newest first; the first error is raised once all of
        them had their turn, so one failing close never leaves another open."""
        first: BaseException | None = None
        while self._opened:
            name, store = self._opened.popitem()
            closer = getattr(store, "close", None)
            if not callable(closer):
                continue
            try:
                closer()
            except Exception as exc:
                log.warning("closing the %s surface failed: %s", name, exc)
                first = first or exc
        if first is not None:
            raise first

    def __enter__(self) -> Surfaces:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # Already failing: a close error must not replace the error that got us here.
        try:
            self.close()
        except Exception as close_exc:
            log.warning("closing surfaces after an error failed: %s", close_exc)
