"""``sparkwing runs prune``: remove old finished runs with their logs, memo entries and the
artifacts no kept run uses (the work is :mod:`sparkwing.engine.retention`'s)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from sparkwing.cli.common import OUTPUT_OPTION, PROFILE_OPTION, emit_json, table

if TYPE_CHECKING:
    from sparkwing.conf.project import Project
    from sparkwing.conf.resolved import ResolvedProfile
    from sparkwing.engine.pruner import Pruner
    from sparkwing.engine.retention import Policy, Result
    from sparkwing.surfaces.session import Surfaces


def _progress(what: str, done: int, total: int) -> None:
    click.echo(f"prune: {what}: {done}/{total}", err=True)


@contextmanager
def open_pruner(
    surfaces: Surfaces, resolved: ResolvedProfile, *, quiet: bool = False
) -> Iterator[Pruner]:
    """A pruner over the profile's state and cache that finds each run's logs where the
    run recorded them; the logs stores it opened are closed on exit."""
    from sparkwing.cli.common import surface_spec
    from sparkwing.engine.pruner import Pruner, RecordedLogs

    logs = RecordedLogs(
        lambda run: surface_spec(
            resolved, "logs", run_id=run.run_id, pipeline=run.pipeline, profile=run.profile
        )
    )
    try:
        yield Pruner(surfaces.state, surfaces.cache, logs, None if quiet else _progress)
    finally:
        logs.close()


def policy_of(
    project: Project | None,
    older_than: str | None,
    keep_last: int | None,
    pipeline: str | None,
) -> Policy:
    """The flags' policy, else the project's ``defaults.retention``; neither is a usage error."""
    from sparkwing.engine.retention import Policy
    from sparkwing.errors import PlanError, UsageError
    from sparkwing.sdk.durations import parse_duration

    if older_than is None and keep_last is None:
        retention = project.defaults.retention if project is not None else None
        if retention is None:
            raise UsageError(
                "runs prune: give --older-than AGE and/or --keep-last N "
                "(or set defaults.retention in .sparkwing/sparkwing.yaml)"
            )
        return Policy(retention.max_age, retention.keep_last, pipeline)
    max_age = None
    if older_than is not None:
        try:
            max_age = parse_duration(older_than, "--older-than")
        except PlanError as exc:
            raise UsageError(str(exc)) from None
    return Policy(max_age, keep_last, pipeline)


def _size(count: int) -> str:
    from sparkwing.bundle.store import human_size

    return human_size(count)


def _render(result: Result, where: str) -> None:
    verb = "would prune" if result.dry_run else "pruned"
    if result.runs:
        table(
            ["run", "pipeline", "status", "created"],
            [(r.run_id, r.pipeline, r.status, r.created_at) for r in result.runs],
        )
    for run_id in result.skipped:
        click.echo(f"kept {run_id}: it is no longer finished")
    click.echo(
        f"{verb} {len(result.runs)} run(s) in {where}, kept {result.kept}; "
        f"{result.memo} memo entr{'y' if result.memo == 1 else 'ies'}, "
        f"{result.manifests} artifact manifest(s) and {result.blobs} blob(s) "
        f"({_size(result.artifact_bytes)})"
    )


@click.command("prune")
@click.option(
    "--older-than",
    "older_than",
    default=None,
    metavar="AGE",
    help="Prune finished runs created more than AGE ago (30d, 12h, 90m, seconds).",
)
@click.option(
    "--keep-last",
    "keep_last",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Always keep the N newest finished runs of each pipeline, whatever their age.",
)
@click.option("--pipeline", default=None, metavar="NAME", help="Only prune runs of this pipeline.")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def prune_cmd(
    ctx: click.Context,
    older_than: str | None,
    keep_last: int | None,
    pipeline: str | None,
    dry_run: bool,
    output: str,
    profile: str | None,
) -> None:
    """Remove finished runs from the profile's state with their logs, their memo entries and
    the artifacts no kept run (nor memo entry) still uses. A run that is queued or still
    running is never pruned. Without --older-than and --keep-last the project's
    defaults.retention applies. With --older-than and --keep-last both, a run goes when it
    is old enough and not among the N newest of its pipeline.

    Through a controller the token needs runs.delete besides a runner's scopes (runs.read,
    runs.write, logs.write, cache.read, cache.write), or admin: a runner's own token cannot
    erase history. A prune stopped halfway is finished by the next prune or by
    `sparkwing doctor --fix`."""
    from sparkwing.cli.common import load_project, resolve
    from sparkwing.surfaces.session import Surfaces

    project = load_project(ctx)
    policy = policy_of(project, older_than, keep_last, pipeline)
    resolved = resolve(ctx, profile, pipeline, project)
    with Surfaces.of_profile(resolved) as surfaces:
        where = surfaces.where("state")
        with open_pruner(surfaces, resolved) as pruner:
            result = pruner.prune(policy, dry_run=dry_run)
    if output == "json":
        emit_json({**result.to_dict(), "policy": policy.describe(), "state": where})
        return
    _render(result, where)
