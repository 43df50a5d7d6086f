"""``sparkwing runs wait``: block until a run ends and exit with its code (0 success,
1 failed, 130 cancelled; 124 when --timeout passes first), so CI glue can wait on a run
started elsewhere (a trigger, ``runs submit``)."""

from __future__ import annotations

import click

from sparkwing.cli.common import OUTPUT_OPTION, PROFILE_OPTION, emit_json, open_state_view
from sparkwing.cli.runref import explicit_run_options, find_run, run_arg
from sparkwing.cli.worker import _duration
from sparkwing.surfaces.state.base import StateStore


def timeout_option(value: str | None, ctx: click.Context, param: click.Parameter) -> float | None:
    return None if value is None else _duration(ctx, param, value)


TIMEOUT_OPTION = click.option(
    "--timeout",
    default=None,
    metavar="T",
    callback=lambda ctx, param, value: timeout_option(value, ctx, param),
    help="Give up waiting after T (30s, 30m, 2h): exit 124, the run goes on. Default: no limit.",
)


@click.command("wait", context_settings={"help_option_names": ["-h", "--help"]})
@explicit_run_options
@TIMEOUT_OPTION
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def wait_cmd(
    ctx: click.Context,
    run_pos: str | None,
    run_opt: str | None,
    timeout: float | None,
    output: str,
    profile: str | None,
) -> int:
    """Wait until a run ends and exit with its code: 0 success, 1 failed, 130 cancelled;
    124 when --timeout passes first (the run goes on); 1 when its runner died. Prints the
    final status (-o json: the final run record). Works on every state backend."""
    ref = run_arg(run_pos, run_opt)
    if ref is None:
        raise click.UsageError("name the run to wait for: RUN, --run ID or --run latest")
    with open_state_view(ctx, profile) as view:
        run = find_run(view, ref)
        return wait_and_show(view.state, run.run_id, timeout, output, view.where)


def wait_and_show(
    state: StateStore, run_id: str, timeout: float | None, output: str, where: str
) -> int:
    """Wait for ``run_id`` in ``state``, print how it ended, and return its exit code."""
    from sparkwing.engine.runspec import CODE_OF_STATUS
    from sparkwing.engine.runwait import wait_for_run

    final = wait_for_run(state, run_id, timeout=timeout, where=where)
    if output == "json":
        emit_json(final.to_dict())
    else:
        reason = f": {final.reason}" if final.reason else ""
        click.echo(f"run {final.run_id} {final.status}{reason}")
    return CODE_OF_STATUS.get(final.status, 1)
