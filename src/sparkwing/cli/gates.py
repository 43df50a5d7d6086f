"""``sparkwing runs approvals ...``, ``runs pauses list`` and ``runs resume``: resolving the
human gates of a run from any machine that shares its state surface."""

from __future__ import annotations

import os
from typing import Any

import click

from sparkwing.cli.common import OUTPUT_OPTION, PROFILE_OPTION, emit_json, emit_ndjson, table
from sparkwing.cli.timefmt import ago
from sparkwing.surfaces.state.base import require_gates

NODE_OPTION = click.option(
    "--node", "--job", "node", required=True, metavar="ID", help="The gate's job id."
)
RUN_OPTION = click.option("--run", "run_id", required=True, metavar="ID", help="The run.")
COMMENT_OPTION = click.option("--comment", "-m", default=None, help="Recorded with the decision.")


def who() -> str:
    """The name a decision made here is recorded under: the OS user (who is logged in, not
    what the environment claims), with $SPARKWING_USER only as a label beside it, e.g.
    ``ann (release-bot)``. Through a controller the token's name is recorded instead."""
    import pwd

    try:
        user = pwd.getpwuid(os.getuid()).pw_name  # not $USER, which anyone can set
    except KeyError:
        user = f"uid {os.getuid()}"  # no passwd entry for this uid (a bare container)
    label = " ".join(os.environ.get("SPARKWING_USER", "").split())
    return f"{user} ({label})" if label and label != user else user


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
        gates = require_gates(view.state).list(run_id=run_id, kind=kind, pending_only=not all_)
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
        gate = require_gates(view.state).resolve(run_id, node, kind, status, who(), comment)
    if output == "json":
        emit_json(gate.to_dict())
        return
    click.echo(f"{kind} {node} of {run_id}: {status} by {gate.resolved_by}")


def _list_command(group: click.Group, kind: str, all_help: str, doc: str) -> click.Command:
    """``GROUP list``: the gates of ``kind``, pending ones unless --all."""

    @group.command("list", help=doc)
    @click.option("--run", "run_id", default=None, metavar="ID", help=f"Only this run's {kind}s.")
    @click.option("--all", "all_", is_flag=True, help=all_help)
    @OUTPUT_OPTION
    @PROFILE_OPTION
    @click.pass_context
    def command(
        ctx: click.Context, run_id: str | None, all_: bool, output: str, profile: str | None
    ) -> None:
        _list(ctx, kind, run_id, all_, output, profile)

    return command


def _decide_command(group: click.Group, name: str, status: str, doc: str) -> click.Command:
    """``approvals NAME``: resolve an approval gate to ``status``."""

    @group.command(name, help=doc)
    @RUN_OPTION
    @NODE_OPTION
    @COMMENT_OPTION
    @OUTPUT_OPTION
    @PROFILE_OPTION
    @click.pass_context
    def command(
        ctx: click.Context,
        run_id: str,
        node: str,
        comment: str | None,
        output: str,
        profile: str | None,
    ) -> None:
        _resolve(ctx, "approval", run_id, node, status, comment, output, profile)

    return command


@click.group("approvals")
def approvals_group() -> None:
    """List and resolve approval gates (`plan.approval(...)`)."""


approvals_list = _list_command(
    approvals_group,
    "approval",
    "Include resolved approvals.",
    "Approvals waiting for a decision (with --all: also the decided ones).",
)
approve_cmd = _decide_command(
    approvals_group,
    "approve",
    "approved",
    "Approve a waiting gate: the run continues with the jobs that need it.",
)
deny_cmd = _decide_command(
    approvals_group,
    "deny",
    "denied",
    "Deny a waiting gate: the gate fails with reason `denied` and so does the run.",
)


@click.group("pauses")
def pauses_group() -> None:
    """Debug pauses (`sparkwing run --sw-pause-before JOB` / `--sw-pause-on-failure`)."""


pauses_list = _list_command(
    pauses_group,
    "pause",
    "Include resumed and aborted pauses.",
    "Jobs paused and waiting for `sparkwing runs resume`.",
)


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
