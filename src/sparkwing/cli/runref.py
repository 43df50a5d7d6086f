"""Naming a run on the command line: ``RUN`` or ``--run ID`` (``latest`` or nothing for the
newest), checked and looked up in the profile's state with one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from sparkwing.cli.common import StateView
    from sparkwing.surfaces.state.base import RunRecord

F = TypeVar("F", bound=Callable[..., Any])

LATEST = "latest"


RUN_HELP = "The run (also accepted as the first argument); 'latest' or omitted: the newest run."
# Commands that change a run never pick one by default: naming it is required.
EXPLICIT_RUN_HELP = "The run (also accepted as the first argument); 'latest' for the newest run."


def run_options(fn: F, *, help_text: str = RUN_HELP) -> F:
    """Adds the positional ``RUN`` and ``--run ID``; the command receives ``run_pos`` and
    ``run_opt`` and passes them to :func:`run_arg`."""
    fn = click.option("--run", "run_opt", default=None, metavar="ID", help=help_text)(fn)
    return click.argument("run_pos", required=False, metavar="[RUN]")(fn)


def explicit_run_options(fn: F) -> F:
    """:func:`run_options` for a command that requires the run to be named."""
    return run_options(fn, help_text=EXPLICIT_RUN_HELP)


def run_arg(run_pos: str | None, run_opt: str | None) -> str | None:
    if run_pos and run_opt and run_pos != run_opt:
        raise click.UsageError(f"two different runs given: {run_pos} and --run {run_opt}")
    return run_opt or run_pos


def find_run(view: StateView, ref: str | None) -> RunRecord:
    """The run ``ref`` names (None or ``latest``: the newest one)."""
    from sparkwing.errors import NotFoundError
    from sparkwing.ids import check_segment

    if ref is None or ref == LATEST:
        page = view.state.list_runs(limit=1)
        if not page.runs:
            raise NotFoundError(
                f"no runs yet in {view.where}; start one with `sparkwing run <pipeline>`"
            )
        return page.runs[0]
    check_segment(ref, "run id")
    run = view.state.get_run(ref)
    if run is None:
        raise NotFoundError(f'run "{ref}" not found in {view.where}')
    return run
