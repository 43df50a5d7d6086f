"""What the ``sparkwing profile`` commands share: options that may also be given to the
group, loading both config files (printing user-file warnings) and safe surface locations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from sparkwing.conf.profiles import UserProfiles
    from sparkwing.conf.project import Project
    from sparkwing.conf.resolved import ResolvedProfile
    from sparkwing.surfaces.spec import SurfaceSpec

F = TypeVar("F", bound=Callable[..., Any])

_GROUP_KEY = "sparkwing.profile.group"


def output_option(fn: F) -> F:
    """``-o table|json`` without a default, so a value given to the group can apply."""
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice(["table", "json"]),
        default=None,
        help="Output format: a human table (default), or JSON (lists as NDJSON).",
    )(fn)


def profile_option(fn: F) -> F:
    return click.option(
        "--profile",
        "profile",
        default=None,
        metavar="NAME",
        help="Profile to show (default: $SPARKWING_PROFILE, the project's defaults.profile, "
        "else the built-in local profile).",
    )(fn)


def pipeline_option(fn: F) -> F:
    return click.option(
        "--pipeline",
        "pipeline",
        default=None,
        metavar="NAME",
        help="Apply this pipeline's `profile:` pin, surface by surface.",
    )(fn)


def remember_group_options(ctx: click.Context, **options: Any) -> None:
    ctx.meta[_GROUP_KEY] = options


def group_option(ctx: click.Context, name: str, value: Any) -> Any:
    """``value`` if the subcommand got it, else what ``sparkwing profile`` itself got."""
    if value is not None:
        return value
    return ctx.meta.get(_GROUP_KEY, {}).get(name)


@dataclass
class Loaded:
    project: Project | None
    user: UserProfiles


def load_config(ctx: click.Context) -> Loaded:
    """The project (None outside one) and the user profiles file; the user file's warnings
    go to stderr as ``warning: <file>:<line>: ...``."""
    from sparkwing.cli.common import load_project
    from sparkwing.conf.profiles import load_user_profiles

    user = load_user_profiles()
    for warning in user.warnings:
        click.echo(f"warning: {warning}", err=True)
    return Loaded(load_project(ctx), user)


def resolve_loaded(loaded: Loaded, profile: str | None, pipeline: str | None) -> ResolvedProfile:
    import os

    from sparkwing.conf.resolve import resolve_profile

    return resolve_profile(
        loaded.project, flag=profile, env=os.environ, pipeline=pipeline, user=loaded.user
    )


def host_of(url: str | None) -> str:
    """The host (and port) of ``url``: never a user, password, path or query."""
    from urllib.parse import urlsplit

    if not url:
        return "<no url>"
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "<redacted>"
    if not host:
        return "<redacted>"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def location(spec: SurfaceSpec) -> str:
    """Where a surface lives, safe to print: never a token or DSN; a controller by host."""
    if spec.type == "controller":
        return f"controller:{host_of(spec.url)}"
    if spec.type == "sqlite" and not spec.path:
        from sparkwing.paths import default_state_path

        return f"sqlite:{default_state_path()}"
    return spec.describe()


def surface_source(resolved: ResolvedProfile, surface: str) -> str:
    """Where ``surface``'s spec came from: pipeline pin, built-in, or how the profile was
    chosen (flag, env, project default)."""
    reason = resolved.reasons.get(surface, "")
    if reason.startswith("pipeline pin"):
        return "pipeline pin"
    if reason.startswith("built-in"):
        return "built-in"
    return resolved.source
