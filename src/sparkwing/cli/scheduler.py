"""``sparkwing scheduler``: fire the project's ``on.schedule`` ticks into the profile's run
queue where no controller does it (a postgres or sqlite profile); any number of schedulers
may run, each tick queues one run."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from sparkwing.cli.common import PROFILE_OPTION, load_project, output_option

if TYPE_CHECKING:
    from sparkwing.triggers.firing import Fired, Scheduled


def describe_fired(one: Fired) -> dict[str, Any]:
    return {
        "schedule": one.scheduled.key,
        "pipeline": one.scheduled.pipeline,
        "tick": one.due.key,
        "queued": one.run is not None,
        "run_id": one.run.run_id if one.run else None,
        "catch_up": one.due.catch_up,
        "skipped_ticks": one.due.skipped,
    }


def _render(json_lines: bool) -> Callable[[Fired], None]:
    def render(one: Fired) -> None:
        doc = describe_fired(one)
        if json_lines:
            click.echo(json.dumps(doc))
            return
        if doc["queued"]:
            late = f" (catch-up, {doc['skipped_ticks']} tick(s) skipped)" if doc["catch_up"] else ""
            click.echo(f"{doc['tick']} {doc['pipeline']}: queued {doc['run_id']}{late}")
        else:
            click.echo(f"{doc['tick']} {doc['pipeline']}: already queued by another scheduler")

    return render


def local_schedules(ctx: click.Context) -> list[Scheduled]:
    """The schedules of the project around the working directory; its runs are started
    from this checkout (a local source) by a worker on this machine."""
    from sparkwing.triggers.firing import schedules_of

    project = load_project(ctx, required=True)
    assert project is not None
    source = {"kind": "local", "root": str(project.root), "cwd": str(project.root)}
    return schedules_of(project.pipelines, "project", source)


@click.command("scheduler")
@PROFILE_OPTION
@click.option(
    "--poll",
    type=click.FloatRange(min=0.05),
    default=15.0,
    show_default=True,
    metavar="SECONDS",
    help="How often to check for due ticks.",
)
@click.option("--once", is_flag=True, help="Check once, fire what is due, and exit.")
@output_option("One line per due tick; json: one JSON object per line.")
@click.pass_context
def scheduler_cmd(
    ctx: click.Context, profile: str | None, poll: float, once: bool, output: str
) -> int:
    """Fire the on.schedule ticks of this project's pipelines into PROFILE's run queue (for
    `sparkwing worker` to run), until Ctrl-C or SIGTERM. Several schedulers may share one
    state: each tick is queued once. Ticks missed while every scheduler was down are made
    up by one catch-up run, not one per tick. A controller fires the schedules of its
    repositories itself."""
    import os

    from sparkwing.cli.common import resolve
    from sparkwing.surfaces.session import Surfaces
    from sparkwing.surfaces.state.base import require_ticks
    from sparkwing.triggers.clock import clock_from_env
    from sparkwing.triggers.service import ScheduleService

    local_schedules(ctx)  # a missing or invalid project fails now, not on the first turn
    resolved = resolve(ctx, profile)
    with Surfaces.of_profile(resolved) as surfaces:
        service = ScheduleService(
            ticks=require_ticks(surfaces.state),
            load=lambda: local_schedules(ctx),
            clock=clock_from_env(os.environ),
            poll=poll,
            report=_render(output == "json"),
            warn=lambda message: click.echo(f"warning: {message}", err=True),
        )
        if not once:
            click.echo(
                f"scheduler: queue in {surfaces.where('state')} (profile {resolved.name}), "
                f"checking every {poll:g}s",
                err=True,
            )
        stopped_by: list[int] = []

        def on_signal(signum: int, _frame: Any) -> None:
            stopped_by.append(signum)
            service.stop()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            service.serve(once=once)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    return 130 if stopped_by else 0
