"""Helpers shared by the command modules: locating the project, resolving the profile,
opening surfaces for reading, and rendering tables / JSON."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sparkwing.cli.app import obj

if TYPE_CHECKING:
    from sparkwing.config.project import Project
    from sparkwing.config.resolved import ResolvedProfile

OUTPUT_OPTION = click.option(
    "-o", "--output", "output", type=click.Choice(["table", "json"]), default="table",
    show_default=True, help="Output format: a human table, or JSON (lists as NDJSON).",
)
PROFILE_OPTION = click.option(
    "--profile", "profile", default=None, metavar="NAME",
    help="Profile to use (default: $SPARKWING_PROFILE, the project's defaults.profile, "
         "else the built-in local profile).",
)


def workdir(ctx: click.Context) -> Path:
    directory = obj(ctx).get("directory")
    return Path(directory).resolve() if directory else Path.cwd()


def load_project(ctx: click.Context, required: bool = False) -> Project | None:
    from sparkwing.config.project import find_project
    from sparkwing.errors import UsageError

    start = workdir(ctx)
    project = find_project(start, Path(obj(ctx)["directory"]) if obj(ctx).get("directory")
                           else None)
    if project is None and required:
        raise UsageError(
            f"no .sparkwing/ folder found in {start} or any parent "
            "(create a pipeline with `sparkwing pipeline new NAME`)"
        )
    return project


def resolve(ctx: click.Context, profile: str | None, pipeline: str | None = None,
            project: Project | None = None) -> ResolvedProfile:
    from sparkwing.config.resolve import resolve_profile

    if project is None:
        project = load_project(ctx)
    return resolve_profile(project, flag=profile, env=os.environ, pipeline=pipeline)


def emit_json(doc: Any) -> None:
    click.echo(json.dumps(doc, default=str, sort_keys=False))


def emit_ndjson(docs: Iterable[Any]) -> None:
    for doc in docs:
        click.echo(json.dumps(doc, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
          styles: dict[int, Callable[[Any], str]] | None = None) -> None:
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
    return {"success": "green", "failed": "red", "cancelled": "yellow", "running": "blue",
            "cached": "cyan", "skipped": "white", "pending": "white"}.get(str(status), "white")
