"""``sparkwing runs submit``: put a run of a pipeline in the profile's run queue, for any
``sparkwing worker`` of that profile to start, and print its id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from sparkwing.cli.common import PROFILE_OPTION, emit_json, load_project, output_option, resolve
from sparkwing.surfaces.state.base import require_queue

if TYPE_CHECKING:
    from sparkwing.conf.resolved import ResolvedProfile
    from sparkwing.surfaces.spec import SurfaceSpec
    from sparkwing.surfaces.state.base import StateStore

# What a queued run's spec holds; a worker refuses a version it does not know.
SPEC_VERSION = 1


def state_spec(resolved: ResolvedProfile, pipeline: str = "") -> SurfaceSpec:
    from sparkwing.cli.common import surface_spec

    return surface_spec(resolved, "state", pipeline=pipeline)


def open_resolved_state(resolved: ResolvedProfile, spec: SurfaceSpec) -> StateStore:
    """The state of ``resolved`` (a postgres ``url_source`` may name one of its secrets)."""
    from sparkwing.cli.common import surface_spec
    from sparkwing.surfaces.open import open_profile_state

    return open_profile_state(spec, surface_spec(resolved, "secrets"))


def _take_profile(args: list[str], profile: str | None) -> tuple[list[str], str | None]:
    """``--profile`` may also follow the pipeline name, as with ``sparkwing run``; every
    other argument is left for the run (its inputs and engine flags)."""
    rest: list[str] = []
    i = 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        if name != "--profile":
            rest.append(args[i])
        elif eq:
            profile = value
        elif i + 1 < len(args):
            i += 1
            profile = args[i]
        else:
            raise click.UsageError("option --profile requires a value")
        i += 1
    return rest, profile


@click.command(
    "submit",
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "allow_interspersed_args": False,
    },
)
@click.argument("pipeline")
@PROFILE_OPTION
@output_option(
    "Print the run id (table), or the queued run record as JSON. Give it before PIPELINE."
)
@click.argument("pipeline_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def submit_cmd(
    ctx: click.Context,
    pipeline: str,
    profile: str | None,
    output: str,
    pipeline_args: tuple[str, ...],
) -> None:
    """Queue a run of PIPELINE for `sparkwing worker` and print its id. Arguments after the
    name are passed to the run as with `sparkwing run` (inputs, --sw-parallel ...); they are
    checked when a worker starts it. The queue lives in the profile's state (postgres for
    workers on many machines, sqlite for workers on this one)."""
    import os
    import socket

    from sparkwing.engine.clock import now_iso
    from sparkwing.ids import check_segment, new_run_id
    from sparkwing.surfaces.state.base import RunRecord

    check_segment(pipeline, "pipeline name")
    args, profile = _take_profile(list(pipeline_args), profile)
    project = load_project(ctx, required=True)
    assert project is not None
    resolved = resolve(ctx, profile, pipeline, project)
    spec = state_spec(resolved, pipeline)
    here = socket.gethostname()
    run = RunRecord(
        run_id=new_run_id(),
        pipeline=pipeline,
        status="queued",
        created_at=now_iso(),
        trigger="queue",
        profile=resolved.name,
        profile_source=resolved.source,
        surfaces={"state": spec.to_record()},
        host=here,
        extra={"submitted_by": f"{_user()}@{here}"},
    )
    job: dict[str, Any] = {
        "version": SPEC_VERSION,
        "root": str(project.root),
        "pipeline": pipeline,
        "args": args,
        "profile": resolved.name,
        "cwd": os.getcwd(),
    }
    state = open_resolved_state(resolved, spec)
    try:
        require_queue(state).submit(run, job)
    finally:
        state.close()
    if output == "json":
        emit_json({**run.to_dict(), "spec": job})
    else:
        click.echo(run.run_id)


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "?"
