"""``sparkwing runs approvals ...``, ``runs pauses list`` and ``runs resume``: resolving the
human gates of a run from any machine that shares its state surface."""

from __future__ import annotations

import os
from typing import Any

import click

from sparkwing.cli.common import OUTPUT_OPTION, PROFILE_OPTION, emit_json, emit_ndjson, table
from sparkwing.cli.timefmt import ago

NODE_OPTION = click.option(
    "--node", "--job", "node", required=True, metavar="ID", help="The gate's job id."
)
RUN_OPTION = click.option("--run", "run_id", required=True, metavar="ID", help="The run.")
COMMENT_OPTION = click.option("--comment", "-m", default=None, help="Recorded with the decision.")


def who() -> str:
    """The name a decision is recorded under: $SPARKWING_USER, else user@host."""
    explicit = os.environ.get("SPARKWING_USER")
    if explicit:
        return explicit
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{os.uname().nodename}"


def _rows(gates: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (
            g.run_id,
            g.node_id,
            g.status,
            ago(g.created_at) if g.created_at else "",
            g.resolved_by or "",
            g.message or "",
        )
        for g in gates
    ]


def _list(
    ctx: click.Context, kind: str, run_id: str | None, all_: bool, output: str, profile: str | None
) -> None:
    from sparkwing.cli.common import open_state_view

    with open_state_view(ctx, profile) as view:
        gates = view.state.gate_list(run_id=run_id, kind=kind, pending_only=not all_)
    if output == "json":
        emit_ndjson(g.to_dict() for g in gates)
        return
    if not gates:
        click.echo(f"no {'pending ' if not all_ else ''}{kind}s")
        return
    table(["run", "job", "status", "opened", "by", "message"], _rows(gates))


def _resolve(
    ctx: click.Context,
    kind: str,
    run_id: str,
    node: str,
    status: str,
    comment: str | None,
    output: str,
    profile: str | None,
) -> None:
    from sparkwing.cli.common import open_state_view

    with open_state_view(ctx, profile) as view:
        gate = view.state.gate_resolve(run_id, node, kind, status, who(), comment)
    if output == "json":
        emit_json(gate.to_dict())
        return
    click.echo(f"{kind} {node} of {run_id}: {status} by {gate.resolved_by}")


@click.group("approvals")
def approvals_group() -> None:
    """List and resolve approval gates (`plan.approval(...)`)."""


@approvals_group.command("list")
@click.option("--run", "run_id", default=None, metavar="ID", help="Only this run's approvals.")
@click.option("--all", "all_", is_flag=True, help="Include resolved approvals.")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def approvals_list(
    ctx: click.Context, run_id: str | None, all_: bool, output: str, profile: str | None
) -> None:
    """Approvals waiting for a decision (with --all: also the decided ones)."""
    _list(ctx, "approval", run_id, all_, output, profile)


@approvals_group.command("approve")
@RUN_OPTION
@NODE_OPTION
@COMMENT_OPTION
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def approve_cmd(
    ctx: click.Context,
    run_id: str,
    node: str,
    comment: str | None,
    output: str,
    profile: str | None,
) -> None:
    """Approve a waiting gate: the run continues with the jobs that need it."""
    _resolve(ctx, "approval", run_id, node, "approved", comment, output, profile)


@approvals_group.command("deny")
@RUN_OPTION
@NODE_OPTION
@COMMENT_OPTION
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def deny_cmd(
    ctx: click.Context,
    run_id: str,
    node: str,
    comment: str | None,
    output: str,
    profile: str | None,
) -> None:
    """Deny a waiting gate: the gate fails with reason `denied` and so does the run."""
    _resolve(ctx, "approval", run_id, node, "denied", comment, output, profile)


@click.group("pauses")
def pauses_group() -> None:
    """Debug pauses (`sparkwing run --sw-pause-before JOB` / `--sw-pause-on-failure`)."""


@pauses_group.command("list")
@click.option("--run", "run_id", default=None, metavar="ID", help="Only this run's pauses.")
@click.option("--all", "all_", is_flag=True, help="Include resumed and aborted pauses.")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def pauses_list(
    ctx: click.Context, run_id: str | None, all_: bool, output: str, profile: str | None
) -> None:
    """Jobs paused and waiting for `sparkwing runs resume`."""
    _list(ctx, "pause", run_id, all_, output, profile)


@click.command("resume")
@RUN_OPTION
@NODE_OPTION
@click.option("--abort", is_flag=True, help="End the run (cancelled) instead of continuing.")
@COMMENT_OPTION
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def resume_cmd(
    ctx: click.Context,
    run_id: str,
    node: str,
    abort: bool,
    comment: str | None,
    output: str,
    profile: str | None,
) -> None:
    """Continue a paused job (a job paused after failing runs again), or --abort the run."""
    _resolve(
        ctx, "pause", run_id, node, "aborted" if abort else "resumed", comment, output, profile
    )
