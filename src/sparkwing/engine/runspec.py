"""What the launcher hands the runner process (a RunSpec, one JSON document) and what the
runner hands back (a RunResult, written to the file the spec names)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sparkwing.surfaces.spec import SurfaceSpec

if TYPE_CHECKING:
    from sparkwing.conf.resolved import ResolvedProfile


def spec_to_dict(spec: SurfaceSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def spec_from_dict(data: dict[str, Any]) -> SurfaceSpec:
    data = dict(data)
    binaries = data.pop("binaries", None)
    return SurfaceSpec(**data, binaries=spec_from_dict(binaries) if binaries else None)


@dataclass
class RunSpec:
    """Everything the runner process needs to execute one run."""

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
    # This machine's labels (--sw-label) and --sw-dispatch: which jobs go to workers.
    labels: list[str] = field(default_factory=list)
    dispatch: bool = False
    # Which jobs run (sparkwing.engine.selection): --sw-only, --sw-start-at, and the run a
    # `runs retry` repeats (``retry_failed``: only what did not succeed there).
    only: list[str] = field(default_factory=list)
    start_at: str | None = None
    retry_of: str | None = None
    retry_failed: bool = False
    # --sw-dry-run: plan and preview only; the preview comes back in the RunResult.
    dry_run: bool = False
    parallel: int = 2
    trigger: str = "cli"
    output: str = "plain"
    # The pipeline bundle (sparkwing.bundle): {"key", "source", "digest"} for the run record,
    # and the folders its requirements were installed in, put on sys.path after the sources.
    bundle: dict[str, Any] | None = None
    sys_path: list[str] = field(default_factory=list)
    # Where the runner writes its RunResult (set by the launcher for each start).
    result_path: str | None = None
    # The pipeline entry's concurrency (conf.model.ConcurrencyDef as a dict), if it has one.
    concurrency: dict[str, Any] | None = None

    def surface(self, name: str) -> SurfaceSpec:
        return spec_from_dict(self.surfaces[name])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @staticmethod
    def surfaces_of(profile: ResolvedProfile) -> dict[str, dict[str, Any]]:
        from sparkwing.conf.resolved import SURFACES  # the runner never needs the profile model

        return {s: spec_to_dict(profile.spec(s)) for s in SURFACES}


# The runner's exit codes and the run status each one stands for.
STATUS_OF_CODE = {0: "success", 1: "failed", 2: "failed", 130: "cancelled"}
CODE_OF_STATUS = {"success": 0, "failed": 1, "cancelled": 130}


@dataclass(frozen=True)
class RunResult:
    """How a run (or the attempt to start one) ended: the exit code for the CLI, the run's
    status, and the one-line errors to show a person, the decisive one last."""

    code: int
    status: str
    errors: tuple[str, ...] = ()
    # A dry run's plan preview (sparkwing.engine.preview), for the CLI to show.
    preview: dict[str, Any] | None = None

    @property
    def error(self) -> str | None:
        return self.errors[-1] if self.errors else None

    @classmethod
    def of_code(cls, code: int, *errors: str) -> RunResult:
        return cls(code, STATUS_OF_CODE.get(code, "failed"), tuple(errors))

    def write(self, path: str) -> None:
        """Atomically: a reader never sees half a result."""
        doc = {
            "code": self.code,
            "status": self.status,
            "errors": list(self.errors),
            "preview": self.preview,
        }
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: str) -> RunResult | None:
        """The result at ``path``, or None when its writer died before writing one."""
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
            preview = doc.get("preview")
            return cls(
                int(doc["code"]),
                str(doc["status"]),
                tuple(map(str, doc["errors"])),
                preview if isinstance(preview, dict) else None,
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
