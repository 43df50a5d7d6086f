"""``sparkwing runs submit``: put a run of a pipeline in the profile's run queue, for any
``sparkwing worker`` of that profile to start, and print its id."""

from __future__ import annotations

from typing import Any

import click

from sparkwing.cli.common import PROFILE_OPTION, emit_json, load_project, output_option, resolve


def _take_profile(args: list[str], profile: str | None) -> tuple[list[str], str | None]:
    """``--profile`` may also follow the pipeline name, as with ``sparkwing run``; every
    other argument is left for the run (its inputs and engine flags)."""
    from sparkwing.engine.flags import PROFILE_FLAG, by_spelling, take_flags
    from sparkwing.errors import UsageError

    options: dict[str, Any] = {"profile": profile}
    try:
        rest = take_flags(args, by_spelling([PROFILE_FLAG]), options, reserved=None)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    return rest, options["profile"]


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
    workers on many machines, sqlite for workers on this one). A secret input (SecretStr)
    cannot be given a value here, since the queued arguments are stored in the state: give
    it as --NAME secret:SECRET, a secret of the profile the worker looks up."""
    import socket

    from sparkwing.cli.secret_inputs import refuse_secret_values
    from sparkwing.engine.worker import submit
    from sparkwing.ids import check_segment
    from sparkwing.surfaces.session import Surfaces

    check_segment(pipeline, "pipeline name")
    args, profile = _take_profile(list(pipeline_args), profile)
    project = load_project(ctx, required=True)
    assert project is not None
    refuse_secret_values(project, pipeline, profile, args)
    resolved = resolve(ctx, profile, pipeline, project)
    with Surfaces.of_profile(resolved, pipeline=pipeline) as surfaces:
        run, job = submit(
            surfaces.state,
            pipeline=pipeline,
            root=str(project.root),
            args=args,
            profile=resolved.name,
            profile_source=resolved.source,
            queue=surfaces.spec("state"),
            submitted_by=f"{_user()}@{socket.gethostname()}",
        )
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
