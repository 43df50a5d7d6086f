"""``sparkwing worker``: execute runs queued with ``sparkwing runs submit`` in the profile's
state through the engine's queue worker (:mod:`sparkwing.engine.worker`), printing one line
(or, with ``-o json``, one JSON object) per claimed and finished run; notes and warnings go
to stderr."""

from __future__ import annotations

import functools
import json
import os
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from sparkwing.cli.common import PROFILE_OPTION, output_option
from sparkwing.engine.worker import DEFAULT_LEASE_SECONDS

if TYPE_CHECKING:
    from sparkwing.engine.worker import WorkerEvent


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from sparkwing.errors import SparkwingError
    from sparkwing.sdk.durations import parse_duration

    try:
        seconds = parse_duration(value, "duration")
    except SparkwingError as exc:
        raise click.BadParameter(str(exc).removeprefix("duration: ")) from None
    if seconds <= 0:
        raise click.BadParameter(f"must be more than 0, got {value!r}")
    return seconds


def parse_labels(
    ctx: click.Context | None, param: click.Parameter | None, value: tuple[str, ...]
) -> list[str]:
    """``--label`` values checked (letters, digits, ``._:=-``), sorted, without repeats."""
    from sparkwing.errors import InvalidKeyError
    from sparkwing.ids import check_labels

    try:
        return check_labels(value)
    except InvalidKeyError as exc:
        raise click.BadParameter(str(exc)) from None


def _describe(event: WorkerEvent) -> str:
    """The human part of an event's line."""
    data = event.data
    if event.kind == "claimed":
        how = f"attempt {data['attempt']}"
        if data["attempt"] > 1 and data.get("previous_worker"):
            how += f", reclaimed from {data['previous_worker']}"
        return how
    if event.kind == "lost":
        return "claim taken by another worker"
    if event.kind == "kept":
        return f"workspace kept at {data['path']}"
    seconds = data.get("seconds")
    took = "-" if seconds is None else f"{seconds:.1f}s"
    reason = f"  {data['reason']}" if data.get("reason") else ""
    return f"{data['status']}  {took}{reason}"


def renderer(name: str, json_lines: bool) -> Callable[[WorkerEvent], None]:
    """Print each event: ``event run pipeline text``, or with -o json one object."""

    def render(event: WorkerEvent) -> None:
        if event.run is None:
            prefix = "warning: " if event.kind == "warning" else ""
            click.echo(f"{prefix}{event.data.get('message', '')}", err=True)
            return
        run = event.run
        if json_lines:
            doc = {"event": event.kind, "run_id": run.run_id, "pipeline": run.pipeline}
            data = dict(event.data)
            if isinstance(data.get("seconds"), float):
                data["seconds"] = round(data["seconds"], 3)
            click.echo(json.dumps({**doc, **data, "worker": name}, default=str))
        else:
            line = f"{event.kind:<8} {run.run_id}  {run.pipeline}  {_describe(event)}"
            click.echo(line.rstrip())
        sys.stdout.flush()

    return render


@click.command("worker", context_settings={"help_option_names": ["-h", "--help"]})
@PROFILE_OPTION
@click.option(
    "--once",
    is_flag=True,
    help="Exit when the queue is empty and this worker's runs have finished.",
)
@click.option(
    "--max-runs",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Claim at most N runs, then exit once they have finished.",
)
@click.option(
    "--poll",
    default="1s",
    show_default=True,
    metavar="T",
    callback=_duration,
    help="How often to look for queued runs when idle.",
)
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Execute up to N runs at once.",
)
@click.option(
    "--lease",
    default=f"{DEFAULT_LEASE_SECONDS:g}s",
    show_default=True,
    metavar="T",
    callback=_duration,
    help="How long a claim lasts without renewal (renewed every third of it); a run whose "
    "worker died is taken over this long after it stopped renewing.",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="LABEL",
    callback=parse_labels,
    help="A label this worker offers (repeatable: --label linux --label gpu); it takes only "
    "runs whose every required label it has.",
)
@click.option(
    "--keep-failed",
    is_flag=True,
    help="Leave the workspace of a run that did not succeed (its path is printed); "
    "others are removed once their run ends.",
)
@output_option("One line per claimed / finished run; json: one JSON object per line.")
@click.pass_context
def worker_cmd(
    ctx: click.Context,
    profile: str | None,
    once: bool,
    max_runs: int | None,
    poll: float,
    parallel: int,
    lease: float,
    labels: list[str],
    keep_failed: bool,
    output: str,
) -> int:
    """Execute runs queued with `sparkwing runs submit` in PROFILE's state, each exactly once,
    with the same engine as `sparkwing run`. Workers on any number of machines can share a
    postgres or controller queue (a sqlite one: on this machine). A run's code comes with
    it: its git commit is checked out from a mirror kept under $SPARKWING_HOME/mirrors, or
    its snapshot is taken from the cache, into a workspace under $SPARKWING_HOME/work
    removed when the run ends. Ctrl-C or SIGTERM stops the runs in progress and puts them
    back in the queue for another worker."""
    from sparkwing.cli.common import resolve
    from sparkwing.engine.worker import Worker
    from sparkwing.surfaces.session import Surfaces

    resolved = resolve(ctx, profile)
    with Surfaces.of_profile(resolved) as surfaces:
        queue = surfaces.spec("state")
        name = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(2).hex()}"
        offers = f", labels {', '.join(labels)}" if labels else ""
        click.echo(
            f"worker {name}: queue in {surfaces.where('state')} (profile {resolved.name}), "
            f"up to {parallel} run(s) at once{offers}",
            err=True,
        )
        worker = Worker(
            surfaces.state,
            queue,
            name=name,
            lease=lease,
            parallel=parallel,
            poll=poll,
            once=once,
            max_runs=max_runs,
            report=renderer(name, output == "json"),
            labels=labels,
            cache=lambda: surfaces.cache,
            keep_failed=keep_failed,
            profile=resolved.name,
        )
        from sparkwing.engine.jobworker import labels_from_env, serving_jobs

        if labels:
            # The runs this worker starts have its labels too: their jobs needing them run
            # there rather than being dispatched to another worker.
            os.environ["SPARKWING_LABELS"] = ",".join(sorted({*labels_from_env(), *labels}))
        say = functools.partial(click.echo, err=output == "json")
        with serving_jobs(
            surfaces.state,
            resolved,
            name=name,
            labels=labels,
            lease=lease,
            parallel=parallel,
            say=say,
        ):
            return worker.serve()
