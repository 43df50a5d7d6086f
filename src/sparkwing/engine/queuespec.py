"""What a queued run's spec holds, read the same way whichever version queued it.

Version 2: ``{"version": 2, "pipeline", "args", "labels", "profile", "source"}``, where the
source is ``{"kind": "git", "url", "ref", "sha"}``, ``{"kind": "snapshot", "key", "sha256"}``
(either may add ``subdir``, the project's folder inside the tree) or ``{"kind": "local",
"root", "cwd"}``. Version 1 (``root``, ``cwd`` at the top) is a local source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SPEC_VERSION = 2
KNOWN_VERSIONS = (1, 2)


@dataclass(frozen=True)
class QueuedSpec:
    """A queued run's spec, whatever its version."""

    pipeline: str
    source: dict[str, Any]
    args: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    profile: str | None = None

    @property
    def remote(self) -> bool:
        """Whether the code comes from elsewhere (a git commit or a snapshot)."""
        return self.source.get("kind") != "local"

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": SPEC_VERSION,
            "pipeline": self.pipeline,
            "args": list(self.args),
            "labels": list(self.labels),
            "profile": self.profile,
            "source": dict(self.source),
        }


def read_spec(spec: dict[str, Any], pipeline: str) -> QueuedSpec | str:
    """The spec, or why this sparkwing cannot start it."""
    version = spec.get("version")
    if version not in KNOWN_VERSIONS:
        return f"queued by another sparkwing version (spec version {version!r})"
    source: Any = spec.get("source")
    if version == 1:
        source = {"kind": "local", "root": str(spec.get("root", "")), "cwd": spec.get("cwd")}
    else:
        if not isinstance(source, dict) or not source.get("kind"):
            return "the queued run names no source for its code"
    profile = spec.get("profile")
    return QueuedSpec(
        pipeline=str(spec.get("pipeline") or pipeline),
        source=dict(source),
        args=[str(a) for a in spec.get("args") or []],
        labels=[str(label) for label in spec.get("labels") or []],
        profile=str(profile) if profile else None,
    )
