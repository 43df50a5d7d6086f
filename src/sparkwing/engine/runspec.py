"""What the CLI hands the runner process: one JSON document on its standard input."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sparkwing.conf.resolved import SURFACES, ResolvedProfile
from sparkwing.surfaces.spec import SurfaceSpec


def spec_to_dict(spec: SurfaceSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def spec_from_dict(data: dict[str, Any]) -> SurfaceSpec:
    data = dict(data)
    binaries = data.pop("binaries", None)
    return SurfaceSpec(**data, binaries=spec_from_dict(binaries) if binaries else None)


@dataclass
class RunSpec:
    run_id: str
    pipeline: str
    root: str
    sparkwing_dir: str
    entrypoint: str | None = None
    yaml_names: list[str] = field(default_factory=list)
    cli_args: list[str] = field(default_factory=list)
    yaml_args: dict[str, Any] = field(default_factory=dict)
    default_args: dict[str, Any] = field(default_factory=dict)
    profile_name: str = "local"
    profile_source: str = "built-in"
    surfaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Why each surface resolved as it did (flag, pipeline pin, built-in ...), for the record.
    surface_reasons: dict[str, str] = field(default_factory=dict)
    pause_before: list[str] = field(default_factory=list)
    pause_on_failure: bool = False
    parallel: int = 2
    trigger: str = "cli"
    output: str = "plain"
    # The pipeline bundle (sparkwing.bundle): {"key", "source", "digest"} for the run record,
    # and the folders its requirements were installed in, put on sys.path after the sources.
    bundle: dict[str, Any] | None = None
    sys_path: list[str] = field(default_factory=list)

    def surface(self, name: str) -> SurfaceSpec:
        return spec_from_dict(self.surfaces[name])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @staticmethod
    def surfaces_of(profile: ResolvedProfile) -> dict[str, dict[str, Any]]:
        return {s: spec_to_dict(profile.spec(s)) for s in SURFACES}
