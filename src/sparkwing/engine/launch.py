"""Launching a run: from a project, a resolved profile, a pipeline and its inputs to a RunSpec,
the pipeline's bundle and a supervised runner, ending in a RunResult. Also the process a
queue worker starts for each claimed run (``python -m sparkwing.engine.launch``)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sparkwing import _log
from sparkwing.engine.runspec import RunResult, RunSpec
from sparkwing.errors import SparkwingError

if TYPE_CHECKING:
    import subprocess

    from sparkwing.conf.project import Project
    from sparkwing.conf.resolved import ResolvedProfile
    from sparkwing.engine.supervise import WarmRunner

log = _log.get("sparkwing.engine")

Say = Callable[[str], None]


@dataclass(frozen=True)
class LaunchOptions:
    """How to run: the engine flags of ``sparkwing run`` (``output`` already decided, never
    ``auto``), the trigger, and the run id when one was given out beforehand (a queued run)."""

    output: str = "plain"
    parallel: int | None = None
    pause_before: tuple[str, ...] = ()
    pause_on_failure: bool = False
    no_bundle_cache: bool = False
    trigger: str = "cli"
    run_id: str | None = None
    labels: tuple[str, ...] = ()
    dispatch: bool = False
    only: tuple[str, ...] = ()
    start_at: str | None = None
    dry_run: bool = False
    # The run a `runs retry` repeats; with ``retry_failed`` only what did not succeed there.
    retry_of: str | None = None
    retry_failed: bool = False


def launch(
    project: Project,
    resolved: ResolvedProfile,
    pipeline: str,
    inputs: Sequence[str],
    options: LaunchOptions,
    *,
    say: Say,
    warn: Say,
    warm: WarmRunner | None = None,
) -> RunResult:
    """Run ``pipeline`` of ``project`` with ``resolved``'s surfaces in a supervised runner
    process (``warm``, when one was forked beforehand); ``say`` / ``warn`` receive the
    bundle's progress and warnings."""
    from sparkwing.bundle.resolve import open_bundle
    from sparkwing.conf.interpolate import interpolate_spec
    from sparkwing.conf.resolved import SURFACES
    from sparkwing.engine.runspec import spec_to_dict
    from sparkwing.engine.supervise import supervise
    from sparkwing.ids import new_run_id

    entry = project.pipeline(pipeline)
    run_id = options.run_id or new_run_id()
    final = {
        name: interpolate_spec(
            resolved.spec(name), run_id=run_id, pipeline=pipeline, profile=resolved.name
        )
        for name in SURFACES
    }
    spec = RunSpec(
        run_id=run_id,
        pipeline=pipeline,
        root=str(project.root),
        sparkwing_dir=str(project.dir),
        entrypoint=entry.entrypoint if entry else None,
        yaml_names=[p.name for p in project.pipelines],
        cli_args=list(inputs),
        yaml_args=dict(entry.args) if entry else {},
        default_args=dict(project.defaults.args),
        profile_name=resolved.name,
        profile_source=resolved.source,
        surfaces={name: spec_to_dict(s) for name, s in final.items()},
        surface_reasons=dict(resolved.reasons),
        parallel=options.parallel or os.cpu_count() or 2,
        pause_before=list(options.pause_before),
        pause_on_failure=options.pause_on_failure,
        labels=list(options.labels),
        dispatch=options.dispatch,
        only=list(options.only),
        start_at=options.start_at,
        retry_of=options.retry_of,
        retry_failed=options.retry_failed,
        dry_run=options.dry_run,
        trigger=options.trigger,
        output=options.output,
        concurrency=asdict(entry.concurrency) if entry and entry.concurrency else None,
    )
    with open_bundle(
        project.dir, final["cache"], rebuild=options.no_bundle_cache, say=say, warn=warn
    ) as bundle:
        spec.bundle = bundle.record()
        if bundle.sources_dir is not None:
            spec.sparkwing_dir = str(bundle.sources_dir)
            spec.sys_path = bundle.sys_path
        result = supervise(spec, isolated=bundle.isolated, warm=warm)
    if resolved.notify:
        from sparkwing.engine.notify import announce

        announce(resolved.notify, final, run_id, resolved.name, os.environ)  # never blocks
    return result


# -- a queued run, in the process a worker starts for it --------------------------------


@dataclass(frozen=True)
class QueuedStart:
    """What a worker tells the process it starts for one claimed run."""

    run_id: str
    pipeline: str
    root: str
    profile: str | None
    result_path: str
    parent: int
    args: list[str] = field(default_factory=list)
    trigger: str = "queue"


def start_queued(start: QueuedStart) -> subprocess.Popen[bytes]:
    """Start the process that runs ``start`` (see :func:`main`); raises OSError when it
    cannot be started."""
    from sparkwing.engine.launcher import start_module

    return start_module(
        "sparkwing.engine.launch", cwd=start.root, payload=json.dumps(asdict(start))
    )


def run_queued(start: QueuedStart) -> RunResult:
    """Resolve the queued run's project and profile here and launch it as `sparkwing run`
    would (quietly, under the id it was queued with); a problem is the result's error."""
    from sparkwing.conf.profiles import load_user_profiles
    from sparkwing.conf.project import find_project
    from sparkwing.conf.resolve import resolve_profile
    from sparkwing.engine.flags import RUN_FLAGS, by_spelling, defaults, job_list, take_flags

    try:
        project = find_project(Path(start.root))
        if project is None:
            return RunResult.of_code(2, f"no .sparkwing/ folder found in {start.root}")
        resolved = resolve_profile(
            project,
            flag=start.profile,
            env=os.environ,
            pipeline=start.pipeline,
            user=load_user_profiles(),
        )
        values = {**defaults(RUN_FLAGS), "output": "quiet"}
        inputs = take_flags(start.args, by_spelling(RUN_FLAGS), values)
        output = str(values["output"])
        if values["dry_run"]:
            return RunResult.of_code(2, "--sw-dry-run: a queued run cannot be a dry run")
        options = LaunchOptions(
            output="plain" if output == "auto" else output,
            parallel=values["parallel"],
            pause_before=tuple(values["pause_before"]),
            pause_on_failure=bool(values["pause_on_failure"]),
            no_bundle_cache=bool(values["no_bundle_cache"]),
            labels=tuple(values["labels"]),
            dispatch=bool(values["dispatch"]),
            only=job_list(values["only"]),
            start_at=values["start_at"],
            trigger=start.trigger,
            run_id=start.run_id,
        )
        return launch(
            project, resolved, start.pipeline, inputs, options, say=lambda _: None, warn=log.warning
        )
    except SparkwingError as exc:
        return RunResult.of_code(exc.exit_code, str(exc))
    except KeyboardInterrupt:
        return RunResult.of_code(130)
    except Exception as exc:  # a bug in sparkwing: the worker records it as the run's reason
        log.debug("starting queued run %s failed", start.run_id, exc_info=True)
        return RunResult(70, "failed", (f"internal error: {type(exc).__name__}: {exc}",))


def main() -> None:
    """Entry of the process a worker starts: a QueuedStart as JSON on stdin; the RunResult
    goes to its ``result_path``, and its code is the exit code."""
    import signal

    from sparkwing.engine.procutil import die_with_parent

    start = QueuedStart(**json.loads(sys.stdin.read()))
    # Asked to end (and so to cancel its run cleanly) when the worker dies, however it dies;
    # a worker that died before that was set leaves no one to report to.
    die_with_parent(signal.SIGTERM)
    if os.getppid() != start.parent:
        sys.exit(143)
    result = run_queued(start)
    try:
        result.write(start.result_path)
    except OSError as exc:
        log.error("run %s: could not write its result: %s", start.run_id, exc)
    sys.exit(result.code)


if __name__ == "__main__":
    main()
