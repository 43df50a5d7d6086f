"""The result of profile resolution: one spec per surface plus why each was chosen."""

from __future__ import annotations

from dataclasses import dataclass, field

from sparkwing.conf.notifydef import NotifyDef
from sparkwing.surfaces.spec import SurfaceSpec

SURFACES: tuple[str, ...] = ("state", "cache", "logs", "secrets")


@dataclass(frozen=True)
class ResolvedProfile:
    """What a run uses. ``source`` says how the profile was chosen (flag, env, project
    default, built-in); ``reasons`` says, per surface, where its spec came from."""

    name: str
    source: str
    state: SurfaceSpec
    cache: SurfaceSpec
    logs: SurfaceSpec
    secrets: SurfaceSpec
    reasons: dict[str, str] = field(default_factory=dict)
    chain: list[str] = field(default_factory=list)
    # Where finished runs are announced (the pinned profile's list, else the selected one's).
    notify: tuple[NotifyDef, ...] = ()

    def spec(self, surface: str) -> SurfaceSpec:
        return {
            "state": self.state,
            "cache": self.cache,
            "logs": self.logs,
            "secrets": self.secrets,
        }[surface]
