"""The parsed configuration: profiles, pipeline entries and project defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkwing.conf.notifydef import NotifyDef
from sparkwing.conf.resolved import SURFACES
from sparkwing.conf.retention import Retention
from sparkwing.surfaces.spec import SurfaceSpec

if TYPE_CHECKING:
    from sparkwing.conf.triggers import Triggers


@dataclass(frozen=True)
class ControllerDef:
    """How to reach a controller; ``token_env`` names an environment variable holding it."""

    url: str
    token: str | None = None
    token_env: str | None = None

    def spec(self) -> SurfaceSpec:
        """The spec every surface gets when routed through this controller."""
        return SurfaceSpec(
            type="controller", url=self.url, token=self.token, token_env=self.token_env
        )


# What a run arriving while its concurrency group is busy does.
ON_BUSY: tuple[str, ...] = ("queue", "cancel-running", "skip")


@dataclass(frozen=True)
class ConcurrencyDef:
    """A pipeline entry's ``concurrency:``: the group (``${PIPELINE_NAME}`` and input
    values substituted when a run starts) and what a run arriving while it is busy does."""

    group: str
    on_busy: str = "queue"
    where: str = ""  # file:line, for messages at run time


@dataclass(frozen=True)
class ProfileDef:
    """One ``profiles:`` entry as written (uninterpolated), with where it was declared."""

    name: str
    file: Path
    line: int
    controller: ControllerDef | None = None
    state: SurfaceSpec | None = None
    cache: SurfaceSpec | None = None
    logs: SurfaceSpec | None = None
    secrets: SurfaceSpec | None = None
    notify: tuple[NotifyDef, ...] = ()

    def declared(self, surface: str) -> SurfaceSpec | None:
        """The spec this profile gives ``surface``: its own, else its controller's, else None.

        A profile with a controller routes every surface it does not spell out through it.
        """
        spec: SurfaceSpec | None = getattr(self, surface)
        if spec is None and self.controller is not None:
            return self.controller.spec()
        return spec

    def declared_surfaces(self) -> list[str]:
        return [s for s in SURFACES if self.declared(s) is not None]


@dataclass(frozen=True)
class PipelineEntry:
    """One ``pipelines:`` entry; ``line`` is where it starts in the project file."""

    name: str
    entrypoint: str
    profile: str | None = None
    description: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    # Runner labels a queued run of this pipeline needs of the worker that takes it.
    requires: tuple[str, ...] = ()
    line: int = 0
    on: Triggers | None = None  # what starts it without a person: push, pull_request, schedule
    concurrency: ConcurrencyDef | None = None


@dataclass(frozen=True)
class Defaults:
    """The project file's ``defaults:``: the profile and pipeline inputs every run starts from."""

    profile: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    profile_line: int = 0
    retention: Retention | None = None
