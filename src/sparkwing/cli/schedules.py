"""``sparkwing schedules list``: each ``on.schedule`` of this project, when it fires next
and the last tick fired in the profile's state."""

from __future__ import annotations

import click

from sparkwing.cli.common import OUTPUT_OPTION, PROFILE_OPTION, emit_ndjson, table

CONTEXT = {"help_option_names": ["-h", "--help"]}


@click.group("schedules", context_settings=CONTEXT)
def schedules_group() -> None:
    """Show the project's schedules (on.schedule in sparkwing.yaml)."""


@schedules_group.command("list")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def list_cmd(ctx: click.Context, output: str, profile: str | None) -> None:
    """List each schedule: pipeline, cron, time zone, next tick (UTC) and the last tick
    fired in PROFILE's state ("-" when never, or when the state cannot tell)."""
    import os

    from sparkwing.cli.common import resolve
    from sparkwing.cli.scheduler import local_schedules
    from sparkwing.surfaces.session import Surfaces
    from sparkwing.triggers.clock import clock_from_env
    from sparkwing.triggers.ticks import tick_key

    items = local_schedules(ctx)
    now = clock_from_env(os.environ)()
    resolved = resolve(ctx, profile)
    with Surfaces.of_profile(resolved) as surfaces:
        ticks = surfaces.state.ticks
        docs = [
            {
                "pipeline": item.pipeline,
                "cron": item.schedule.cron,
                "timezone": item.schedule.timezone,
                "next": tick_key(item.next_after(now)),
                "last": ticks.last(item.key) if ticks is not None else None,
                "schedule": item.key,
            }
            for item in items
        ]
    if output == "json":
        emit_ndjson(docs)
        return
    if not docs:
        click.echo("no schedules (add on.schedule to a pipeline in .sparkwing/sparkwing.yaml)")
        return
    table(
        ["pipeline", "cron", "timezone", "next", "last fired"],
        [(d["pipeline"], d["cron"], d["timezone"], d["next"], d["last"] or "-") for d in docs],
    )
