"""``sparkwing cache``: explain the pipeline bundle key of the project, list the local bundle
cache and prune it (least recently used first, with a size cap)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import click

from sparkwing.cli.common import (
    OUTPUT_OPTION,
    PROFILE_OPTION,
    emit_json,
    load_project,
    resolve,
    surface_spec,
    table,
)

if TYPE_CHECKING:
    from sparkwing.conf.project import Project

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``1048576``, ``500K``, ``200MB``, ``1.5G`` (powers of 1024) as bytes."""
    from sparkwing.errors import UsageError

    match = _SIZE_RE.match(text)
    if not match:
        raise UsageError(f"--max-bytes {text!r}: expected a size like 500000000, 500M or 2G")
    unit = (match.group(2) or "").lower()[:1]
    return int(float(match.group(1)) * _UNITS[unit])


@click.group("cache", context_settings={"help_option_names": ["-h", "--help"]})
def cache_group() -> None:
    """Pipeline bundles: what their key is made of (explain), what the local bundle cache
    holds (info) and how to shrink it (prune)."""


def _remote_doc(
    ctx: click.Context, project: Project, profile: str | None, pipeline: str | None, key: str
) -> dict[str, Any]:
    """Where the shared store of bundles is for this profile and whether it holds ``key``."""
    from sparkwing.bundle import remote
    from sparkwing.errors import SparkwingError

    try:
        resolved = resolve(ctx, profile, pipeline, project)
        spec = remote.binaries_spec(surface_spec(resolved, "cache", pipeline=pipeline or ""))
    except SparkwingError as exc:
        return {"location": None, "present": None, "error": str(exc)}
    where = remote.location(spec)
    try:
        store = remote.open_remote(spec)
        try:
            present = store.has(remote.remote_key(key))
        finally:
            store.close()
    except SparkwingError as exc:
        return {"location": where, "present": None, "error": str(exc)}
    return {"location": where, "present": present}


@cache_group.command("explain")
@click.argument("pipeline", required=False)
@PROFILE_OPTION
@OUTPUT_OPTION
@click.pass_context
def explain_cmd(ctx: click.Context, pipeline: str | None, profile: str | None, output: str) -> None:
    """Each part of the project's bundle key and its hash, and which parts changed since the
    last bundle this machine used for the project. PIPELINE selects the profile (and the
    cache.binaries prefix) the shared store is looked up with."""
    from sparkwing.bundle.key import compare
    from sparkwing.bundle.resolve import current_key
    from sparkwing.bundle.store import LocalStore, iso
    from sparkwing.cli.timefmt import ago

    project = load_project(ctx, required=True)
    assert project is not None
    store = LocalStore()
    bkey, memo = current_key(project.dir, store)
    status, files = compare(bkey, memo.last)
    last = memo.last
    doc: dict[str, Any] = {
        "project": str(project.dir),
        "key": bkey.key,
        "components": [{**c.to_dict(), "since_last": status[c.name]} for c in bkey.components],
        "files": files,
        "last": (
            {"key": last.get("key"), "source": last.get("source"), "at": iso(last.get("at"))}
            if last
            else None
        ),
        "local": store.object_path(bkey.key).is_file(),
        "remote": _remote_doc(ctx, project, profile, pipeline, bkey.key),
    }
    if output == "json":
        emit_json(doc)
        return
    remote_doc = doc["remote"]
    if remote_doc["present"] is None:
        shared = f"unknown ({remote_doc['error']})"
    else:
        state = "present" if remote_doc["present"] else "absent"
        shared = f"{state} at {remote_doc['location']}"
    click.echo(f"bundle key   {bkey.key}")
    click.echo(f"local cache  {'present' if doc['local'] else 'absent'} ({store.root})")
    click.echo(f"shared store {shared}")
    if last:
        when = ago(iso(last.get("at")))
        click.echo(f"last bundle  {str(last.get('key'))[:12]} ({last.get('source')}, {when})")
    else:
        click.echo("last bundle  none yet for this project")
    click.echo("")
    table(
        ["part", "value", "hash", "since last"],
        [(c.name, c.detail, c.hash[:12], status[c.name]) for c in bkey.components],
        styles={3: lambda s: {"changed": "yellow", "same": "green"}.get(str(s), "white")},
    )
    for kind in ("added", "removed", "modified"):
        for rel in files[kind]:
            click.echo(f"  {kind}: {rel}")


@cache_group.command("info")
@OUTPUT_OPTION
def info_cmd(output: str) -> None:
    """The local bundle cache: each bundle, its size, hits and when it was last used."""
    from sparkwing.bundle.store import LocalStore, human_size
    from sparkwing.cli.timefmt import ago

    store = LocalStore()
    entries = sorted(store.entries(), key=lambda e: -(e.last_used or 0.0))
    total = sum(e.size for e in entries)
    if output == "json":
        emit_json(
            {
                "path": str(store.root),
                "count": len(entries),
                "total_bytes": total,
                "entries": [e.to_dict() for e in entries],
            }
        )
        return
    click.echo(f"local bundle cache {store.root}: {len(entries)} bundles, {human_size(total)}")
    if not entries:
        return
    click.echo("")
    table(
        ["key", "size", "hits", "last used", "from", "requirements", "project"],
        [
            (
                e.key[:12],
                human_size(e.size),
                e.hits,
                ago(e.to_dict()["last_used_at"]),
                e.source or "-",
                e.requirements or "-",
                e.project or "-",
            )
            for e in entries
        ],
    )


@cache_group.command("prune")
@click.option(
    "--max-bytes",
    "max_bytes",
    default=None,
    metavar="SIZE",
    help="Remove least recently used bundles until the cache holds at most SIZE "
    "(bytes, or 500M, 2G).",
)
@click.option(
    "--older-than",
    "older_than",
    default=None,
    metavar="AGE",
    help="Remove bundles not used for AGE (for example 7d, 12h).",
)
@OUTPUT_OPTION
def prune_cmd(max_bytes: str | None, older_than: str | None, output: str) -> None:
    """Shrink the local bundle cache. Bundles in use by a running pipeline are kept. Bundles
    in the shared store are never touched."""
    from sparkwing.bundle.store import LocalStore, human_size
    from sparkwing.errors import UsageError
    from sparkwing.sdk.durations import parse_duration

    if max_bytes is None and older_than is None:
        raise UsageError("cache prune: give --max-bytes SIZE and/or --older-than AGE")
    cap = parse_size(max_bytes) if max_bytes is not None else None
    age = parse_duration(older_than, "--older-than") if older_than is not None else None
    store = LocalStore()
    removed, busy = store.prune(max_bytes=cap, older_than=age)
    left = store.entries()
    freed, kept_bytes = sum(e.size for e in removed), sum(e.size for e in left)
    doc = {
        "removed": [e.to_dict() for e in removed],
        "freed_bytes": freed,
        "in_use": [e.key for e in busy],
        "kept": len(left),
        "kept_bytes": kept_bytes,
    }
    if output == "json":
        emit_json(doc)
        return
    for e in removed:
        click.echo(f"removed {e.key[:12]} ({human_size(e.size)})")
    for e in busy:
        click.echo(f"kept {e.key[:12]}: in use")
    click.echo(f"freed {human_size(freed)}; {len(left)} bundles ({human_size(kept_bytes)}) left")
