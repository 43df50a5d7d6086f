"""Helpers shared by the command modules: locating the project, resolving the profile,
opening surfaces for reading, and rendering tables / JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from sparkwing.cli.app import obj

if TYPE_CHECKING:
    from sparkwing.conf.project import Project
    from sparkwing.conf.resolved import ResolvedProfile
    from sparkwing.surfaces.spec import SurfaceSpec
    from sparkwing.surfaces.state.base import RunRecord, StateStore

F = TypeVar("F", bound=Callable[..., Any])


def output_option(
    help_text: str = "Output format: a human table, or JSON (lists as NDJSON).",
) -> Callable[[F], F]:
    """``-o/--output table|json`` (default table), with this command's help text."""
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help=help_text,
    )


OUTPUT_OPTION = output_option()
PROFILE_OPTION = click.option(
    "--profile",
    "profile",
    default=None,
    metavar="NAME",
    help="Profile to use (default: $SPARKWING_PROFILE, the project's defaults.profile, "
    "else the built-in local profile).",
)


def workdir(ctx: click.Context) -> Path:
    directory = obj(ctx).get("directory")
    return Path(directory).resolve() if directory else Path.cwd()


def load_project(ctx: click.Context, required: bool = False) -> Project | None:
    from sparkwing.cli.runpath import required_project
    from sparkwing.conf.project import find_project

    start = workdir(ctx)
    return required_project(start) if required else find_project(start)


def resolve(
    ctx: click.Context,
    profile: str | None,
    pipeline: str | None = None,
    project: Project | None = None,
) -> ResolvedProfile:
    from sparkwing.cli.runpath import resolve_for

    if project is None:
        project = load_project(ctx)
    return resolve_for(project, profile, pipeline, lambda line: click.echo(line, err=True))


def emit_json(doc: Any) -> None:
    click.echo(json.dumps(doc, default=str, sort_keys=False))


def emit_ndjson(docs: Iterable[Any]) -> None:
    for doc in docs:
        click.echo(json.dumps(doc, default=str))


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    styles: dict[int, Callable[[Any], str]] | None = None,
) -> None:
    """A plain aligned table; colour only on a terminal."""
    if not rows:
        return
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    tty = sys.stdout.isatty()
    head = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    click.echo(click.style(head, bold=True) if tty else head)
    for row, raw in zip(cells, rows, strict=True):
        parts = []
        for i, (cell, w) in enumerate(zip(row, widths, strict=True)):
            text = cell.ljust(w)
            if tty and styles and i in styles:
                text = click.style(text, fg=styles[i](raw[i]))
            parts.append(text)
        click.echo("  ".join(parts).rstrip())


def status_colour(status: Any) -> str:
    return {
        "success": "green",
        "failed": "red",
        "cancelled": "yellow",
        "running": "blue",
        "cached": "cyan",
        "reused": "cyan",
        "approval_pending": "magenta",
        "paused": "magenta",
        "skipped": "white",
        "pending": "white",
        "queued": "magenta",
    }.get(str(status), "white")


def surface_spec(
    resolved: ResolvedProfile,
    surface: str,
    *,
    run_id: str = "",
    pipeline: str = "",
    profile: str | None = None,
) -> SurfaceSpec:
    """``resolved``'s spec for ``surface`` ready to open: variables substituted (one with no
    value here, such as ``${RUN_ID}`` outside a run, is a clear error) and ``~`` expanded."""
    from sparkwing.conf.interpolate import interpolate_spec

    return interpolate_spec(
        resolved.spec(surface), run_id=run_id, pipeline=pipeline, profile=profile or resolved.name
    )


@dataclass
class StateView:
    """An opened state surface, where it lives (for messages) and the profile it came from."""

    state: StateStore
    where: str
    resolved: ResolvedProfile


@contextmanager
def open_state_view(
    ctx: click.Context, profile: str | None, pipeline: str | None = None
) -> Iterator[StateView]:
    """The resolved profile's state, closed on exit."""
    from sparkwing.surfaces.session import Surfaces

    resolved = resolve(ctx, profile, pipeline)
    with Surfaces.of_profile(resolved) as surfaces:
        yield StateView(surfaces.state, surfaces.where("state"), resolved)


def job_modifiers(job: dict[str, Any]) -> str:
    """A plan snapshot job's modifiers in brief, e.g. ``  [retry 2; timeout 60s; memoize]``."""
    parts = []
    if job.get("role") == "on_failure":
        parts.append(f"on_failure of {job.get('handles')}")
    elif job.get("role"):
        parts.append(str(job["role"]))
    if job.get("retries"):
        parts.append(f"retry {job['retries']}")
    if job.get("timeout_s"):
        parts.append(f"timeout {job['timeout_s']:g}s")
    for flag in ("optional", "continue_on_error", "skip_if", "memoize"):
        if job.get(flag):
            parts.append(flag.replace("_", "-"))
    if job.get("outputs"):
        parts.append("outputs " + ", ".join(job["outputs"]))
    if job.get("consumes"):
        parts.append("consumes " + ", ".join(job["consumes"]))
    if job.get("shell"):
        parts.append(f"shell: {job['shell']}")
    return f"  [{'; '.join(parts)}]" if parts else ""


def runner_gone(run: RunRecord) -> str | None:
    """A note when a run says it is running but its runner on this host has died."""
    from sparkwing.engine.recovery import dead_runner

    if dead_runner(run) is None:
        return None
    return f"its runner process {run.pid} is gone; `sparkwing doctor` will mark the run failed"
