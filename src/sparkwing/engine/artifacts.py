"""Artifact hooks for a job attempt: restore the manifests of the jobs it consumes before
it runs, upload the files its ``outputs()`` globs match after it succeeds."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sparkwing.sdk.context import Context
from sparkwing.surfaces.cache.base import Cache


def restore(cache: Cache, digest: str, workdir: Path) -> int:
    """Put a manifest's files back under ``workdir``; returns how many."""
    from sparkwing.surfaces.cache.content import restore_manifest

    return restore_manifest(cache, digest, workdir)


def restorer(
    open_cache: Callable[[], Cache], consumed: Mapping[str, str | None], workdir: Path
) -> Callable[[Context], None]:
    """Runs in the job process, which opens its own cache rather than share the engine's
    connections across a fork."""

    def run(ctx: Context) -> None:
        cache = open_cache()
        for dep, digest in consumed.items():
            if digest:
                count = restore(cache, digest, workdir)
                ctx.log.info(f"restored {count} artifact file(s) from {dep}")

    return run


def uploader(
    open_cache: Callable[[], Cache], globs: Sequence[str], workdir: Path
) -> Callable[[Context], str | None]:
    def run(ctx: Context) -> str | None:
        from sparkwing.surfaces.cache.content import upload_outputs

        digest = upload_outputs(open_cache(), workdir, list(globs))
        if digest is None:
            ctx.log.warn(f"outputs({', '.join(map(json.dumps, globs))}) matched no files")
        return digest

    return run
