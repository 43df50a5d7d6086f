"""The click-free path of ``sparkwing run``: finding the project, resolving the profile,
launching and reporting, shared by the click command and by the fast path that answers the
common form ``sparkwing run NAME [inputs and engine flags]`` without importing click (most of
a one-job run's start-up). Every other form (help, options before the name, ``-C``) and every
usage error go to the click command, which words them."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkwing.cli.outcome import echo_err, guarded

if TYPE_CHECKING:
    from sparkwing.conf.project import Project
    from sparkwing.conf.resolved import ResolvedProfile
    from sparkwing.engine.supervise import WarmRunner

Echo = Callable[[str], None]


def run_fast(args: list[str]) -> int | None:
    """The exit code of ``sparkwing ARGS`` when it is ``run NAME ...`` with nothing click
    must word; None when the click command has to take it."""
    if len(args) < 2 or args[0] != "run" or args[1].startswith("-"):
        return None
    from sparkwing.engine.flags import PROFILE_FLAG, RUN_FLAGS, by_spelling, defaults, take_flags
    from sparkwing.errors import UsageError

    options: dict[str, Any] = {**defaults(RUN_FLAGS), PROFILE_FLAG.dest: None}
    options.update(trigger="cli", run_id=None)
    try:
        rest = take_flags(args[2:], by_spelling([PROFILE_FLAG, *RUN_FLAGS]), options)
    except UsageError:
        return None  # worded by click, which checks values its own way
    inputs = rest[: rest.index("--")] if "--" in rest else rest
    if "--help" in inputs or "-h" in inputs:
        return None
    from sparkwing.ids import is_run_id

    if any(
        v is not None and not is_run_id(v) for v in (options["run_id"], options.get("retry_of"))
    ):
        return None  # worded by click
    pipeline = args[1]

    def command() -> int:
        from sparkwing import _log
        from sparkwing.engine.supervise import WarmRunner

        _log.install_diagnostics()
        # The runner process starts now and imports the engine while this one resolves the
        # project, profile and bundle (see WarmRunner); discarded if no run comes of it.
        warm = WarmRunner.start()
        try:
            project = required_project(Path.cwd())
            resolved = resolve_for(project, options["profile"], pipeline, echo_err)
            return launch_and_report(
                project, resolved, pipeline, rest, options, echo_err, warm=warm
            )
        finally:
            if warm is not None:
                warm.discard()

    return guarded(args, command)


def required_project(start: Path) -> Project:
    from sparkwing.conf.project import find_project
    from sparkwing.errors import UsageError

    project = find_project(start)
    if project is None:
        raise UsageError(
            f"no .sparkwing/ folder found in {start} or any parent "
            "(create a pipeline with `sparkwing pipeline new NAME`)"
        )
    return project


def resolve_for(
    project: Project | None, profile: str | None, pipeline: str | None, warn: Echo
) -> ResolvedProfile:
    """The profile for ``pipeline``; the user profiles file's warnings go to ``warn``."""
    from sparkwing.conf.profiles import load_user_profiles
    from sparkwing.conf.resolve import resolve_profile

    user = load_user_profiles()
    for warning in user.warnings:
        warn(f"warning: {warning}")
    return resolve_profile(project, flag=profile, env=os.environ, pipeline=pipeline, user=user)


def launch_and_report(
    project: Project,
    resolved: ResolvedProfile,
    pipeline: str,
    inputs: list[str],
    options: dict[str, Any],
    echo: Echo,
    warm: WarmRunner | None = None,
) -> int:
    """Launch the run as ``options`` (the run command's, engine flags included) say; its
    errors go to ``echo`` (stderr), as one JSON object under ``-o json``. The exit code."""
    from sparkwing.engine.flags import job_list
    from sparkwing.engine.launch import LaunchOptions, launch

    output: str = options["output"]
    if output == "auto":
        output = "tty" if sys.stdout.isatty() and os.environ.get("TERM") != "dumb" else "plain"

    def say(message: str) -> None:
        if output != "quiet":
            echo(message)

    how = LaunchOptions(
        output=output,
        parallel=options["parallel"],
        pause_before=tuple(options["pause_before"]),
        pause_on_failure=bool(options["pause_on_failure"]),
        no_bundle_cache=bool(options["no_bundle_cache"]),
        labels=tuple(options["labels"]),
        dispatch=bool(options["dispatch"]),
        trigger=options["trigger"],
        run_id=options["run_id"],
        only=job_list(options["only"]),
        start_at=options["start_at"],
        dry_run=bool(options["dry_run"]),
        retry_of=options.get("retry_of"),
        retry_failed=bool(options.get("retry_failed")),
    )
    result = launch(project, resolved, pipeline, inputs, how, say=say, warn=echo, warm=warm)
    sys.stdout.flush()
    if result.preview is not None and not result.errors:
        from sparkwing.cli.preview import show_preview  # a dry run only: click is fine here

        show_preview(result.preview, output)
        return result.code
    if output == "json" and result.errors:
        # One JSON object on stderr, as every other command's errors under -o json.
        doc: dict[str, Any] = {"error": result.errors[-1], "exit": result.code}
        if len(result.errors) > 1:
            doc["errors"] = list(result.errors)
        echo(json.dumps(doc, ensure_ascii=False))
    else:
        for error in result.errors:
            echo(f"error: {error}")
    return result.code
