"""``sparkwing profile check``: open every surface of a profile, time one small round trip
on each and probe whether the cache enforces conditional writes. Exit 1 if one is down."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import click

from sparkwing.cli.common import emit_ndjson, table
from sparkwing.cli.profileinfo import (
    group_option,
    load_config,
    location,
    output_option,
    pipeline_option,
    profile_option,
    resolve_loaded,
)
from sparkwing.surfaces import registry

if TYPE_CHECKING:
    from sparkwing.surfaces.cache.base import Cache
    from sparkwing.surfaces.spec import SurfaceSpec

PROBE_PIPELINE = "sparkwing-probe"


@dataclass
class Probe:
    """One surface's check. ``conditional_writes`` (cache, and state on a store that must be
    probed): enforced, not enforced (a probe's losing write got through), or not supported."""

    surface: str
    type: str
    location: str
    reachable: bool = False
    latency_ms: float | None = None
    conditional_writes: str | None = None
    detail: str | None = None


def _token() -> str:
    import secrets

    return secrets.token_hex(6)


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return round((time.perf_counter() - start) * 1000, 2)


def _probe_state(spec: SurfaceSpec, probe: Probe, secrets: SurfaceSpec | None) -> None:
    from sparkwing.surfaces.open import open_profile_state

    state = open_profile_state(spec, secrets)
    try:
        probe.latency_ms = _timed(lambda: state.list_runs(limit=1))
    finally:
        state.close()
    probe.reachable = True
    if registry.supports("state", spec.type, "probed"):
        # Object-store state coordinates memoize and gates by compare-and-swap.
        from sparkwing.surfaces.objectstore.open import open_object_store
        from sparkwing.surfaces.objectstore.probe import probe_conditional_writes

        store = open_object_store(spec, role="state")
        try:
            enforced = probe_conditional_writes(store)
        finally:
            store.close()
        probe.conditional_writes = "enforced" if enforced else "not enforced"


def _probe_cache(spec: SurfaceSpec, probe: Probe) -> None:
    from sparkwing.surfaces.cache.base import MEMO_PREFIX
    from sparkwing.surfaces.open import open_cache

    cache = open_cache(spec)
    key = f"{MEMO_PREFIX}sparkwing-probe-{_token()}"
    payload = f"probe {_token()}".encode()

    def round_trip() -> None:
        cache.put(key, payload)
        try:
            if cache.get(key) != payload:
                raise RuntimeError("a probe object read back different bytes")
        finally:
            cache.delete(key)

    try:
        probe.latency_ms = _timed(round_trip)
        probe.reachable = True
        probe.conditional_writes = _conditional_writes(cache, key)
    finally:
        cache.close()


def _conditional_writes(cache: Cache, spare_key: str) -> str:
    """Whether put_if_absent / put_if_match really refuse a losing writer on this store:
    "not supported" when the cache has no such writes, "not enforced" when it takes them
    but lets a losing writer through (a store that ignores preconditions)."""
    from sparkwing.errors import NotSupportedError, PreconditionFailedError
    from sparkwing.surfaces.cache.base import MEMO_PREFIX

    # Asked first, and probed either way: a store that ignores preconditions says no here
    # yet takes the writes, and that is what the report must show.
    claimed = cache.conditional_writes

    def refused(write: Callable[[], object]) -> bool:
        try:
            write()
        except PreconditionFailedError:
            return True
        return False

    # A fixed key: a filesystem cache keeps one lock file per key it ever locked.
    key = f"{MEMO_PREFIX}sparkwing-probe-cas"
    try:
        try:
            first = cache.put_if_absent(key, b"first")
        except PreconditionFailedError:
            key = spare_key  # another check is probing right now (or one died mid-probe)
            first = cache.put_if_absent(key, b"first")
        try:
            enforced = refused(lambda: cache.put_if_absent(key, b"second"))
            cache.put_if_match(key, b"third", first)
            enforced = refused(lambda: cache.put_if_match(key, b"fourth", first)) and enforced
        finally:
            cache.delete(key)
    except NotSupportedError:
        return "not supported"
    except PreconditionFailedError:
        # A write that should have won was refused: the store cannot be relied on either way.
        return "not enforced"
    return "enforced" if enforced and claimed else "not enforced"


def _probe_logs(spec: SurfaceSpec, probe: Probe, run_id: str) -> None:
    from sparkwing.errors import NotSupportedError
    from sparkwing.surfaces.open import open_logs

    logs = open_logs(spec)
    try:
        probe.latency_ms = _timed(lambda: logs.nodes(run_id))
    except NotSupportedError as exc:
        probe.detail = f"writes only; {exc}"
    finally:
        logs.close()
    probe.reachable = True


def _probe_secrets(spec: SurfaceSpec, probe: Probe) -> None:
    from sparkwing.surfaces.open import open_secrets

    store = open_secrets(spec)
    name = f"SPARKWING_PROBE_{_token().upper()}"
    probe.latency_ms = _timed(lambda: store.resolve(name))
    probe.reachable = True


def _scrub(message: str, spec: SurfaceSpec) -> str:
    """``message`` without the spec's url or token (nor the token its ``token_env`` names):
    a driver error may quote them."""
    import os

    from_env = os.environ.get(spec.token_env) if spec.token_env else None
    for secret in (spec.url, spec.token, from_env):
        if secret:
            message = message.replace(secret, "<redacted>")
    return " ".join(message.split())


def check_surface(
    surface: str,
    spec: SurfaceSpec,
    shown: SurfaceSpec,
    run_id: str,
    secrets: SurfaceSpec | None = None,
) -> Probe:
    """Probe the opened ``spec``; ``shown`` is the uninterpolated spec the report names."""
    from sparkwing.errors import SparkwingError

    probe = Probe(surface=surface, type=shown.type, location=location(shown))
    probes: dict[str, Callable[[], None]] = {
        "state": lambda: _probe_state(spec, probe, secrets),
        "cache": lambda: _probe_cache(spec, probe),
        "logs": lambda: _probe_logs(spec, probe, run_id),
        "secrets": lambda: _probe_secrets(spec, probe),
    }
    try:
        probes[surface]()
    except SparkwingError as exc:
        probe.reachable, probe.detail = False, _scrub(str(exc), spec)
    except Exception as exc:  # a diagnostic reports any failure; it never crashes on one
        probe.reachable = False
        probe.detail = _scrub(f"{type(exc).__name__}: {exc}", spec)
    return probe


@click.command("check")
@profile_option
@pipeline_option
@output_option
@click.pass_context
def check_cmd(
    ctx: click.Context, profile: str | None, pipeline: str | None, output: str | None
) -> int:
    """Open every surface of the profile and report whether it is reachable, the latency of
    one small round trip, and whether the cache enforces conditional writes (what memoize
    coordination relies on). Exit 1 if any surface is unreachable."""
    from sparkwing.conf.interpolate import interpolate_spec
    from sparkwing.errors import SparkwingError
    from sparkwing.ids import new_run_id

    profile = group_option(ctx, "profile", profile)
    pipeline = group_option(ctx, "pipeline", pipeline)
    output = group_option(ctx, "output", output)
    loaded = load_config(ctx)
    resolved = resolve_loaded(loaded, profile, pipeline)
    # A stand-in run id: a per-run logs path is checked where a new run would write.
    run_id = new_run_id()
    probes = []
    for surface in ("state", "cache", "logs", "secrets"):
        shown = resolved.spec(surface)
        try:
            spec = interpolate_spec(
                shown, run_id=run_id, pipeline=pipeline or PROBE_PIPELINE, profile=resolved.name
            )
        except SparkwingError as exc:
            probe = Probe(surface, shown.type, location(shown), detail=_scrub(str(exc), shown))
        else:
            probe = check_surface(surface, spec, shown, run_id, resolved.secrets)
        probes.append(probe)
    if output == "json":
        emit_ndjson({"profile": resolved.name, **asdict(p)} for p in probes)
    else:
        _print(resolved.name, probes)
    return 0 if all(p.reachable for p in probes) else 1


def _print(name: str, probes: list[Probe]) -> None:
    click.echo(f"profile {name}")
    rows: list[tuple[Any, ...]] = []
    for p in probes:
        latency = f"{p.latency_ms:.1f} ms" if p.latency_ms is not None else "-"
        rows.append(
            (
                p.surface,
                p.type,
                p.location,
                "yes" if p.reachable else "no",
                latency,
                p.conditional_writes or "-",
                p.detail or "",
            )
        )
    table(
        ["surface", "type", "location", "reachable", "latency", "conditional writes", "detail"],
        rows,
        styles={3: lambda v: "green" if v == "yes" else "red"},
    )
