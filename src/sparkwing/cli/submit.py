"""``sparkwing runs submit``: put a run of a pipeline in the profile's run queue, with where
its code comes from (a git commit, or a snapshot uploaded to the cache) and the labels its
worker needs, for any ``sparkwing worker`` of that profile to start; print its id."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from sparkwing.cli.common import PROFILE_OPTION, emit_json, load_project, output_option, resolve
from sparkwing.cli.runs_wait import TIMEOUT_OPTION, wait_and_show
from sparkwing.cli.worker import parse_labels
from sparkwing.engine.flags import PROFILE_FLAG, Flag

if TYPE_CHECKING:
    from sparkwing.surfaces.state.base import RunRecord

_REPO_FLAG = Flag(("--repo",), "repo", metavar="URL")
_REF_FLAG = Flag(("--ref",), "ref", metavar="REF")
_LABEL_FLAG = Flag(("--label",), "labels", metavar="LABEL", multiple=True)


def _take_options(args: list[str], options: dict[str, Any]) -> list[str]:
    """``--profile``, ``--repo``, ``--ref`` and ``--label`` may also follow the pipeline
    name, as ``--profile`` does with ``sparkwing run``; every other argument is left for
    the run (its inputs and engine flags)."""
    from sparkwing.engine.flags import by_spelling, take_flags
    from sparkwing.errors import UsageError

    flags = by_spelling([PROFILE_FLAG, _REPO_FLAG, _REF_FLAG, _LABEL_FLAG])
    try:
        return take_flags(args, flags, options, reserved=None)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None


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
@click.option(
    "--repo",
    default=None,
    metavar="URL",
    help="Run the code of this git repository (no checkout needed here); default: this "
    "checkout's origin, or a snapshot of the tree when it has changes origin lacks.",
)
@click.option(
    "--ref",
    default=None,
    metavar="REF",
    help="Branch, tag or commit to run, resolved to a commit now (default: HEAD; with "
    "--repo, the repository's default branch).",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="LABEL",
    help="Only a worker with this label may take the run (repeatable); added to the "
    "pipeline entry's `requires:`.",
)
@output_option(
    "Print the run id (table), or the queued run record as JSON. Give it before PIPELINE."
)
@click.option(
    "--wait",
    is_flag=True,
    help="Then wait for the run to end (as `runs wait`) and exit with its code; -o json "
    "prints its final record instead. Give it before PIPELINE.",
)
@TIMEOUT_OPTION
@click.argument("pipeline_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def submit_cmd(
    ctx: click.Context,
    pipeline: str,
    profile: str | None,
    repo: str | None,
    ref: str | None,
    labels: tuple[str, ...],
    output: str,
    wait: bool,
    timeout: float | None,
    pipeline_args: tuple[str, ...],
) -> int:
    """Queue a run of PIPELINE for `sparkwing worker` and print its id. Arguments after the
    name are passed to the run as with `sparkwing run` (inputs, --sw-parallel ...); they are
    checked when a worker starts it. The queue lives in the profile's state (postgres or a
    controller for workers on many machines, sqlite for workers on this one).

    The run takes its code with it: a clean checkout whose commit is on origin sends that
    repository and commit; a tree with uncommitted or unpushed changes, or no remote, is
    uploaded as a snapshot to the profile's cache (once per content). With --repo no
    checkout is needed here.

    A secret input (SecretStr) cannot be given a value here, since the queued arguments are
    stored in the state: give it as --NAME secret:SECRET, a secret of the profile the worker
    looks up."""
    import socket

    from sparkwing.cli.secret_inputs import refuse_secret_values
    from sparkwing.engine.worker import submit
    from sparkwing.ids import check_segment
    from sparkwing.source.deliver import deliver, project_at
    from sparkwing.surfaces.session import Surfaces
    from sparkwing.surfaces.state.base import require_queue

    check_segment(pipeline, "pipeline name")
    options: dict[str, Any] = {"profile": profile, "repo": repo, "ref": ref, "labels": labels}
    args = _take_options(list(pipeline_args), options)
    profile, repo, ref = options["profile"], options["repo"], options["ref"]
    wanted = parse_labels(ctx, None, tuple(options["labels"]))
    project = load_project(ctx, required=repo is None)
    delivery = None
    if repo is not None:
        # Resolved before the profile: without a checkout here the project file (profiles,
        # the pipeline's entry) is read from the commit itself.
        delivery = deliver(project.root if project else None, repo=repo, ref=ref)
        project = project or project_at(delivery.source, url=repo)
    assert project is not None
    refuse_secret_values(project, pipeline, profile, args)
    resolved = resolve(ctx, profile, pipeline, project)
    entry = project.pipeline(pipeline) if project is not None else None
    needs = sorted({*wanted, *(entry.requires if entry else ())})
    with Surfaces.of_profile(resolved, pipeline=pipeline) as surfaces:
        require_queue(surfaces.state)  # refused before anything is uploaded
        if delivery is None:
            assert project is not None
            delivery = deliver(project.root, repo=None, ref=ref, cache=lambda: surfaces.cache)
        run, job = submit(
            surfaces.state,
            pipeline=pipeline,
            source=delivery.source,
            args=args,
            labels=needs,
            profile=resolved.name,
            profile_source=resolved.source,
            queue=surfaces.spec("state"),
            submitted_by=f"{_user()}@{socket.gethostname()}",
        )
        if wait:
            if output != "json":
                click.echo(run.run_id, nl=True)
                sys.stdout.flush()  # the id first: a reader can follow the run meanwhile
            return wait_and_show(
                surfaces.state, run.run_id, timeout, output, surfaces.where("state")
            )
    if output == "json":
        emit_json({**run.to_dict(), "spec": job, "delivery": delivery.note})
    else:
        click.echo(f"source: {delivery.note}", err=True)
        click.echo(run.run_id)
    return 0


def waiting_worker(run: RunRecord) -> str:
    """Who a queued run waits for (``runs status``): any worker, or one with its labels."""
    labels = run.extra.get("labels") if isinstance(run.extra, dict) else None
    if labels:
        return f"a worker with label(s) {', '.join(str(label) for label in labels)}"
    return "a worker of this queue (`sparkwing worker`)"


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "?"
