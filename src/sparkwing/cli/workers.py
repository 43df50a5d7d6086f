"""``sparkwing workers``: the workers registered in the profile's state (its fleet): their
labels, the runs they hold and when they were last seen."""

from __future__ import annotations

import click

from sparkwing.cli.common import (
    OUTPUT_OPTION,
    PROFILE_OPTION,
    emit_ndjson,
    open_state_view,
    table,
)


@click.group("workers", context_settings={"help_option_names": ["-h", "--help"]})
def workers_group() -> None:
    """The workers sharing the profile's queue (`sparkwing worker` registers each one)."""


@workers_group.command("list")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def list_cmd(ctx: click.Context, output: str, profile: str | None) -> None:
    """Each registered worker: host, labels, the runs it holds, when it was last seen. One
    that missed its last heartbeats is marked stale (it died, or cannot reach the state);
    a worker that stops cleanly leaves the list. -o json: one worker per line, with a
    `stale` field."""
    from datetime import UTC, datetime

    from sparkwing.cli.timefmt import ago
    from sparkwing.surfaces.state.fleet import require_fleet

    with open_state_view(ctx, profile) as view:
        workers = require_fleet(view.state).list()
    now = datetime.now(UTC)
    if output == "json":
        emit_ndjson({**w.to_dict(), "stale": w.stale(now)} for w in workers)
        return
    if not workers:
        click.echo(f"no workers registered in {view.where}; start one with `sparkwing worker`")
        return
    rows = [
        (
            w.name,
            w.host,
            ", ".join(w.labels) or "-",
            ", ".join(w.running) or "idle",
            ago(w.last_seen) + (" (stale)" if w.stale(now) else ""),
            w.version,
        )
        for w in workers
    ]
    table(["worker", "host", "labels", "running", "last seen", "version"], rows)
