"""``sparkwing run``: resolve the project and profile, then launch the pipeline through the
engine (:mod:`sparkwing.engine.launch`) and report how the run ended."""

from __future__ import annotations

import json
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
# `sparkwing runs retry` names the run it repeats (and whether only what failed there).
@click.option("--sw-retry-of", "retry_of", default=None, hidden=True)
@click.option("--sw-retry-failed", "retry_failed", is_flag=True, hidden=True)
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
    from sparkwing.cli.runpath import launch_and_report
    from sparkwing.ids import is_run_id

    rest = _take_engine_options(ctx, list(pipeline_args), options)
    project = load_project(ctx, required=True)
    assert project is not None
    inputs = rest[: rest.index("--")] if "--" in rest else rest
    if "--help" in inputs or "-h" in inputs:
        _pipeline_help(ctx, project, pipeline, options["profile"])
        return 0
    resolved = resolve(ctx, options["profile"], pipeline, project)
    run_id = options["run_id"]
    for flag, value in (("--sw-run-id", run_id), ("--sw-retry-of", options.get("retry_of"))):
        if value is not None and not is_run_id(value):
            raise click.UsageError(f"{flag}: {value!r} is not a run id")
    return launch_and_report(project, resolved, pipeline, rest, options, _echo_err)


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


def _pipeline_help(ctx: click.Context, project: Any, pipeline: str, profile: str | None) -> None:
    """``sparkwing run P --help``: P's inputs (types, choices, defaults, help), read by
    importing the project as ``pipeline describe`` does; then where the engine options are."""
    from sparkwing.cli.pipeline import inspect_project

    found: dict[str, Any] = inspect_project(project, pipeline, profile)["pipeline"]
    entry = project.pipeline(pipeline)
    description = (entry.description if entry else None) or found.get("description")
    click.echo(f"Usage: sparkwing run {pipeline} [ENGINE OPTIONS] [INPUTS]")
    if description:
        click.echo("")
        click.echo(f"  {description}")
    click.echo("")
    inputs: list[dict[str, Any]] = found.get("inputs", [])
    if not inputs:
        click.echo(f"Inputs: {pipeline} takes none.")
    else:
        click.echo("Inputs:")
        rows = [(_input_flag(i), _input_help(i)) for i in inputs]
        width = min(max(len(flag) for flag, _ in rows), 36)
        for flag, text in rows:
            pad = " " * (width - len(flag) + 2) if len(flag) <= width else "\n" + " " * (width + 4)
            click.echo(f"  {flag}{pad}{text}")
    click.echo("")
    click.echo(
        "Engine options (--sw-parallel, --sw-pause-before, -o, --profile, ...): "
        "`sparkwing run --help`."
    )


def _input_flag(field: dict[str, Any]) -> str:
    kind = str(field["type"]).removesuffix(" | None")
    if kind.startswith("Optional[") and kind.endswith("]"):
        kind = kind[len("Optional[") : -1]
    if kind == "bool":
        name = str(field["flag"])
        return f"{name} / --no-{name[2:]}"
    choices = field.get("choices")
    shown = "|".join(str(c) for c in choices) if choices else kind.upper()
    return f"{field['flag']} {shown}"


def _input_help(field: dict[str, Any]) -> str:
    parts = [str(field["help"])] if field.get("help") else []
    if field.get("secret"):
        parts.append("(secret: masked, recorded as ***; secret:NAME uses the profile's secret)")
    if field["required"]:
        parts.append("(required)")
    elif field["default"] is not None:
        parts.append(f"(default: {json.dumps(field['default'], default=str)})")
    return " ".join(parts)


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
