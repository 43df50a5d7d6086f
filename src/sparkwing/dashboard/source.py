"""Where the dashboard reads from and writes to: a controller's own stores, or the surfaces of
a profile opened directly (``sparkwing dashboard``). Pages only ever see a :class:`Source`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sparkwing.controller.scopes import ADMIN

if TYPE_CHECKING:
    from sparkwing.conf.project import Project
    from sparkwing.conf.resolved import ResolvedProfile
    from sparkwing.controller.backend import Backend
    from sparkwing.surfaces.cache.base import Cache
    from sparkwing.surfaces.logs.base import LogStore
    from sparkwing.surfaces.session import Surfaces
    from sparkwing.surfaces.state.base import RunRecord, StateStore


@dataclass
class Source:
    """The opened stores behind the pages. ``logs_of`` and ``cache_of`` give the logs and
    cache a run wrote to; ``owners_of`` (controller only) the tokens that created or claimed
    a run, which the API's write checks read too, and ``record_created`` notes a run a token
    submitted, as the API does."""

    state: StateStore
    logs_of: Callable[[RunRecord], LogStore]
    cache_of: Callable[[RunRecord], Cache] | None
    where: dict[str, str]
    project: Project | None = None
    owners_of: Callable[[str], dict[str, set[str]]] | None = None
    record_created: Callable[[str, str], None] | None = None

    def may_write(self, name: str, scopes: tuple[str, ...], run_id: str) -> bool:
        """The API's rule for writing a run (authority.check_writer): its own token, an
        admin, or a run no token has on record."""
        if self.owners_of is None or ADMIN in scopes:
            return True
        owners = self.owners_of(run_id)
        return name in owners or not owners


def of_backend(backend: Backend) -> Source:
    """The controller's stores (the routes' own ``app.state.backend``)."""
    return Source(
        state=backend.state,
        logs_of=lambda run: backend.logs,
        cache_of=lambda run: backend.cache,
        where=dict(backend.where),
        owners_of=backend.owners.of,
        record_created=lambda run_id, name: backend.owners.add(run_id, name, "created"),
    )


@dataclass
class ProfileSource:
    """A profile's surfaces for ``sparkwing dashboard``; each run's logs and cache are read
    where the run recorded them, every store opened once and closed by :meth:`close`."""

    resolved: ResolvedProfile
    project: Project | None
    _surfaces: Surfaces | None = None
    _opened: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self) -> Source:
        from sparkwing.surfaces.session import Surfaces

        self._surfaces = Surfaces.of_profile(self.resolved)
        return Source(
            state=self._surfaces.state,
            logs_of=lambda run: self._surface_of(run, "logs"),
            cache_of=lambda run: self._surface_of(run, "cache"),
            where={"state": self._surfaces.where("state")},
            project=self.project,
        )

    def where(self, name: str) -> str:
        assert self._surfaces is not None, "open() first"
        return self._surfaces.where(name)

    def _surface_of(self, run: RunRecord, name: str) -> Any:
        from sparkwing.conf.interpolate import interpolate_spec
        from sparkwing.surfaces.open import open_cache, open_logs
        from sparkwing.surfaces.spec import SurfaceSpec

        recorded = run.surfaces.get(name) if isinstance(run.surfaces, dict) else None
        # A controller location needs this profile's url and token, which records omit.
        if isinstance(recorded, dict) and recorded.get("type") not in (None, "controller"):
            spec = SurfaceSpec.from_record(recorded)
        else:
            spec = interpolate_spec(
                self.resolved.spec(name),
                run_id=run.run_id,
                pipeline=run.pipeline,
                profile=run.profile,
            )
        key = name + json.dumps(spec.to_record(), sort_keys=True)
        with self._lock:
            if key not in self._opened:
                self._opened[key] = (open_logs if name == "logs" else open_cache)(spec)
            return self._opened[key]

    def close(self) -> None:
        with self._lock:
            stores, self._opened = list(self._opened.values()), {}
        for store in stores:
            store.close()
        if self._surfaces is not None:
            self._surfaces.close()
