"""The bundle key: sha256 over Python major.minor, the platform, the sparkwing version, the
sources of ``.sparkwing/`` and the pipeline's requirements, kept part by part for explaining."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

from sparkwing.bundle.requirements import Requirements, detect
from sparkwing.bundle.sources import SourceFile, scan

KEY_FORMAT = 1


class Component(NamedTuple):
    name: str
    detail: str  # what a person reads: "3.11", "12 files", "3 from requirements.txt"
    hash: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "detail": self.detail, "hash": self.hash}


class BundleKey(NamedTuple):
    key: str
    components: tuple[Component, ...]
    sources: tuple[SourceFile, ...]  # every file the bundle holds
    requirements: Requirements
    # What the sources part covers, path -> content hash (+x): `cache explain` diffs it.
    files: dict[str, str]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _file_id(f: SourceFile) -> str:
    # The executable bit travels in the bundle, so it is part of what the key covers.
    return f.sha256 + ("+x" if f.executable else "")


def platform_tag() -> str:
    """Interpreter, OS, machine and libc: what decides which wheels a bundle may hold."""
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):
        libc = ""
    parts = [sys.implementation.name, sys.platform, os.uname().machine, libc.replace(" ", "")]
    return "-".join(p for p in parts if p)


def sources_hash(files: dict[str, str]) -> str:
    return _sha("".join(f"{rel}\0{digest}\n" for rel, digest in sorted(files.items())))


def compute_key(sparkwing_dir: Path, memo: dict[str, Any]) -> BundleKey:
    """The key of ``sparkwing_dir`` as it is now (``memo`` is read and updated)."""
    from sparkwing.__about__ import __version__

    sources = scan(sparkwing_dir, memo)
    top_level = {f.rel: f.sha256 for f in sources if "/" not in f.rel}
    requirements = detect(sparkwing_dir, top_level)
    # The file the requirements part reads is that part's business, so editing a requirement
    # shows as "requirements changed", not also as a source change (pyproject.toml may hold
    # more than dependencies, so it stays a source).
    own = requirements.source if requirements.source != "pyproject.toml" else None
    keyed = {f.rel: _file_id(f) for f in sources if f.rel != own}
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    platform = platform_tag()
    components = (
        Component("python", python, _sha(python)),
        Component("platform", platform, _sha(platform)),
        Component("sparkwing", __version__, _sha(__version__)),
        Component(
            "sources",
            f"{len(keyed)} file{'s' if len(keyed) != 1 else ''}",
            sources_hash(keyed),
        ),
        Component("requirements", requirements.describe(), requirements.digest),
    )
    doc = {"format": KEY_FORMAT, "parts": [[c.name, c.hash] for c in components]}
    key = hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()
    return BundleKey(key, components, tuple(sources), requirements, keyed)


def compare(
    current: BundleKey, last: dict[str, Any] | None
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Per component ``same`` / ``changed`` / ``new`` against the last bundle recorded for the
    project, and the source files ``added`` / ``removed`` / ``modified`` since then."""
    previous = {c.get("name"): c.get("hash") for c in (last or {}).get("components") or []}
    status = {}
    for c in current.components:
        if c.name not in previous:
            status[c.name] = "new"
        else:
            status[c.name] = "same" if previous[c.name] == c.hash else "changed"
    before: dict[str, str] = dict((last or {}).get("files") or {})
    now = current.files
    files = {
        "added": sorted(set(now) - set(before)),
        "removed": sorted(set(before) - set(now)),
        "modified": sorted(r for r in set(now) & set(before) if now[r] != before[r]),
    }
    return status, files
