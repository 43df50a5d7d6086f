"""``sparkwing run``: resolve the project and profile, then launch the pipeline through the
engine (:mod:`sparkwing.engine.launch`) and report how the run ended."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from sparkwing.cli.common import PROFILE_OPTION, load_project, resolve
from sparkwing.engine.flags import RUN_FLAGS

F = TypeVar("F", bound=Callable[..., Any])


def engine_options(fn: F) -> F:
    """The engine flags (:data:`sparkwing.engine.flags.RUN_FLAGS`) as click options."""
    for flag in reversed(RUN_FLAGS):
        kind: Any = None
        if flag.choices is not None:
            kind = click.Choice(flag.choices)
        elif flag.minimum is not None:
            kind = click.IntRange(min=flag.minimum)
        fn = click.option(
            *flag.opts,
            flag.dest,
            type=kind,
            is_flag=flag.is_flag,
            multiple=flag.multiple,
            default=flag.default,
            show_default=flag.default is not None,
            metavar=flag.metavar,
            help=flag.help,
        )(fn)
    return fn


@click.command(
    "run",
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "allow_interspersed_args": False,
    },
)
@click.argument("pipeline")
@PROFILE_OPTION
@engine_options
@click.option("--sw-trigger", "trigger", default="cli", hidden=True)
# `sparkwing worker` starts a queued run under the id `runs submit` gave it.
@click.option("--sw-run-id", "run_id", default=None, hidden=True)
@click.argument("pipeline_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run_cmd(
    ctx: click.Context,
    /,
    pipeline: str,
    pipeline_args: tuple[str, ...],
    **options: Any,
) -> int:
    """Run PIPELINE. Flags after the name that sparkwing does not own are the pipeline's
    inputs (for example `sparkwing run deploy --env prod`); sparkwing's own options may
    come before or after the name.

    Exit codes: 0 success, 1 the run failed, 2 usage or configuration error, 130 interrupted.
    """
    from sparkwing.engine.launch import LaunchOptions, launch
    from sparkwing.ids import is_run_id

    rest = _take_engine_options(ctx, list(pipeline_args), options)
    output: str = options["output"]
    project = load_project(ctx, required=True)
    assert project is not None
    resolved = resolve(ctx, options["profile"], pipeline, project)
    run_id = options["run_id"]
    if run_id is not None and not is_run_id(run_id):
        raise click.UsageError(f"--sw-run-id: {run_id!r} is not a run id")
    if output == "auto":
        output = "tty" if sys.stdout.isatty() and os.environ.get("TERM") != "dumb" else "plain"

    def say(message: str) -> None:
        if output != "quiet":
            click.echo(message, err=True)

    how = LaunchOptions(
        output=output,
        parallel=options["parallel"],
        pause_before=tuple(options["pause_before"]),
        pause_on_failure=bool(options["pause_on_failure"]),
        no_bundle_cache=bool(options["no_bundle_cache"]),
        trigger=options["trigger"],
        run_id=run_id,
    )

    def warn(message: str) -> None:
        click.echo(message, err=True)

    result = launch(project, resolved, pipeline, rest, how, say=say, warn=warn)
    sys.stdout.flush()
    for error in result.errors:
        click.echo(f"error: {error}", err=True)
    return result.code


def _take_engine_options(ctx: click.Context, args: list[str], options: dict[str, Any]) -> list[str]:
    """Pull sparkwing's own options out of the arguments after the pipeline name (they win
    over the same options given before it); the rest are the pipeline's inputs."""
    from sparkwing.engine.flags import PROFILE_FLAG, Flag, by_spelling, take_flags
    from sparkwing.errors import UsageError

    params = {p.name: p for p in ctx.command.params}

    def convert(flag: Flag, value: str) -> Any:
        # click's own check, so a value is judged the same before and after the name.
        param = params[flag.dest]
        return param.type.convert(value, param, ctx)

    try:
        return take_flags(args, by_spelling([PROFILE_FLAG, *RUN_FLAGS]), options, convert=convert)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
