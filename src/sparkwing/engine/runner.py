"""The runner process: imports the pipeline's code, plans, executes the run, and writes a
RunResult for its supervisor.

Forked by :mod:`sparkwing.engine.supervise` (or started as a new interpreter with a RunSpec
on stdin), so the pipeline's imports live in this process only and a crash here cannot take
the CLI with it (the supervisor records it instead).
"""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkwing import _log
from sparkwing.engine.runspec import CODE_OF_STATUS, RunResult, RunSpec
from sparkwing.errors import PlanError, SparkwingError
from sparkwing.status import FINAL_NODE_STATUSES

if TYPE_CHECKING:
    from sparkwing.engine.concurrency import GroupPlace
    from sparkwing.engine.scheduler import Scheduler
    from sparkwing.engine.selection import Selection
    from sparkwing.surfaces.session import Surfaces
    from sparkwing.surfaces.state.base import NodeRecord

log = _log.get("sparkwing.engine")


def call_plan(obj: Any, plan: Any, args: Any, rc: Any) -> None:
    is_class = isinstance(obj, type)
    fn = getattr(obj(), "plan", None) if is_class else obj
    if fn is None or not callable(fn):
        raise PlanError(f"pipeline {plan.pipeline!r}: {obj!r} has no plan() method")
    # plan(plan), plan(plan, args) or plan(plan, args, rc): count positional parameters
    # from the code object (inspect.signature would cost ~6 ms of imports).
    code = getattr(fn, "__code__", None) or getattr(getattr(fn, "__func__", None), "__code__", None)
    count = 3
    if code is not None:
        count = code.co_argcount - (1 if is_class or hasattr(fn, "__self__") else 0)
    fn(*[plan, args, rc][: max(1, min(3, count))])


def _plan_location(exc: BaseException, *roots: Path) -> str:
    import traceback

    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.startswith(tuple(str(root) for root in roots)):
            return f" (at {frame.filename}:{frame.lineno})"
    return ""


def add_site_dirs(paths: list[str]) -> None:
    """Put a bundle's installed requirements first on ``sys.path`` (its sources go in front
    of them on import), reading their ``.pth`` files as a site-packages folder would."""
    import site

    before = list(sys.path)
    for path in paths:
        site.addsitedir(path)
    added = [p for p in sys.path if p not in before]
    sys.path[:] = added + before
    # Commands jobs start (`ctx.sh("pytest")`, `python -m ...`) see the bundle too: its
    # console scripts on PATH, its packages on PYTHONPATH.
    scripts = [os.path.join(p, "bin") for p in paths if os.path.isdir(os.path.join(p, "bin"))]
    if scripts:
        os.environ["PATH"] = os.pathsep.join([*scripts, os.environ.get("PATH", "")])
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*paths, *([old] if old else [])])


def execute(spec: RunSpec) -> RunResult:
    from sparkwing.engine import gitinfo
    from sparkwing.engine.lastwords import note_last_words
    from sparkwing.engine.loader import find_pipeline, import_project
    from sparkwing.sdk.context import RunContext
    from sparkwing.sdk.inputs import args_type_of, build_args
    from sparkwing.sdk.plan import Plan
    from sparkwing.sdk.runtime import planning

    root = Path(spec.root)
    git_proc = gitinfo.start(root)
    if spec.sys_path:
        add_site_dirs(spec.sys_path)
    modules = import_project(
        Path(spec.sparkwing_dir),
        lambda path: note_last_words(
            spec, f"pipeline module {path} ended the runner process while being imported"
        ),
    )
    pdef = find_pipeline(spec.pipeline, spec.entrypoint, modules, spec.yaml_names)
    args, plain_args = build_args(
        args_type_of(pdef.obj),
        spec.pipeline,
        cli=spec.cli_args,
        yaml_args=spec.yaml_args,
        default_args=spec.default_args,
        resolve_secret=_secret_lookup(spec),
    )
    rc = RunContext(
        run_id=spec.run_id,
        pipeline=spec.pipeline,
        git=gitinfo.finish(git_proc),
        trigger=spec.trigger,
        profile=spec.profile_name,
        workdir=root,
    )
    plan = Plan(spec.pipeline)
    note_last_words(spec, f'plan() of pipeline "{spec.pipeline}" ended the runner process')
    try:
        with planning(spec.pipeline):
            call_plan(pdef.obj, plan, args, rc)
    except SparkwingError:
        raise
    except SystemExit as exc:
        raise PlanError(
            f'plan() of pipeline "{spec.pipeline}" called sys.exit({exc.code!r})'
            f"{_plan_location(exc, root, Path(spec.sparkwing_dir))}"
        ) from None
    except Exception as exc:
        raise PlanError(
            f'plan() of pipeline "{spec.pipeline}" raised '
            f"{type(exc).__name__}: {exc}{_plan_location(exc, root, Path(spec.sparkwing_dir))}"
        ) from None
    note_last_words(spec, None)
    order = plan.order()
    unknown = [j for j in spec.pause_before if j not in plan.jobs]
    if unknown:
        raise PlanError(
            f'--sw-pause-before: pipeline "{spec.pipeline}" has no job "{unknown[0]}" '
            f"(jobs: {', '.join(order)})"
        )
    return _run(spec, plan, order, args, plain_args, rc)


def _secret_lookup(spec: RunSpec) -> Callable[[str], str | None]:
    """Looks a ``secret:NAME`` input up in the profile's secrets (opened on first use)."""
    opened: list[Any] = []

    def lookup(name: str) -> str | None:
        from sparkwing.surfaces.open import open_secrets

        if not opened:
            opened.append(open_secrets(spec.surface("secrets")))
        found = opened[0].resolve(name)
        return None if found is None else str(found.value)

    return lookup


def _run(
    spec: RunSpec, plan: Any, order: list[str], args: Any, plain_args: dict[str, Any], rc: Any
) -> RunResult:
    from sparkwing.engine.concurrency import place_of
    from sparkwing.engine.selection import select
    from sparkwing.surfaces.session import Surfaces

    # Every surface this run opens is closed when it ends, however it ends; its place in
    # a concurrency group is given up just before (once the run is recorded final).
    with Surfaces({name: spec.surface(name) for name in spec.surfaces}) as surfaces:
        selection = select(
            plan,
            order,
            surfaces.state,
            only=spec.only,
            start_at=spec.start_at,
            retry_failed_of=spec.retry_of if spec.retry_failed else None,
        )
        if spec.dry_run:
            return _dry_run(spec, surfaces, plan, selection, args, rc)
        with place_of(spec, plain_args) as place:
            code = _run_with(spec, surfaces, plan, selection, args, plain_args, rc, place)
        return RunResult.of_code(code)


def _dry_run(
    spec: RunSpec, surfaces: Surfaces, plan: Any, selection: Selection, args: Any, rc: Any
) -> RunResult:
    """The preview of the run, and no run: nothing is written to the state surface."""
    from sparkwing.engine.preview import preview
    from sparkwing.surfaces.open import open_secrets

    secrets_spec = spec.surface("secrets")
    doc = preview(
        plan,
        selection,
        args=args,
        rc=rc,
        cache=surfaces.cache,
        open_secrets=lambda: open_secrets(secrets_spec),
    )
    return RunResult(0, "success", (), doc)


def _link_retry(state: Any, earlier_id: str, run_id: str) -> None:
    """The earlier run's record names its retry (``extra.retried_by``, newest last); a
    store refusing to change a finished run costs the back link only."""
    try:
        earlier = state.get_run(earlier_id)
        if earlier is None:
            return
        retries = [*earlier.extra.get("retried_by", []), run_id]
        state.update_run(earlier_id, extra={**earlier.extra, "retried_by": retries})
    except SparkwingError as exc:  # refused (a finished run, a token's rights) or down
        log.warning("run %s: could not link it from %s: %s", run_id, earlier_id, exc)


def _run_with(
    spec: RunSpec,
    surfaces: Surfaces,
    plan: Any,
    selection: Selection,
    args: Any,
    plain_args: dict[str, Any],
    rc: Any,
    place: GroupPlace,
) -> int:
    from sparkwing.engine.clock import now_iso
    from sparkwing.engine.dispatch import make_dispatcher
    from sparkwing.engine.jobspec import JobSpec
    from sparkwing.engine.masking import Masker
    from sparkwing.engine.procutil import kill_leftovers, process_start_ticks
    from sparkwing.engine.progress import make_display
    from sparkwing.engine.recorder import Recorder
    from sparkwing.engine.scheduler import Scheduler
    from sparkwing.surfaces.open import open_cache, open_secrets
    from sparkwing.surfaces.state.base import RunRecord

    state = surfaces.state
    order = selection.order
    needs_gates = (
        spec.pause_before
        or spec.pause_on_failure
        or any(job.approval is not None for job in plan.jobs.values())
    )
    if needs_gates and state.gates is None:
        what = "approvals" if any(j.approval for j in plan.jobs.values()) else "debug pauses"
        raise PlanError(
            f"{what} are not supported on this store ({spec.surface('state').describe()}): "
            "use postgres or a controller"
        )
    remote = make_dispatcher(
        spec,
        rc,
        state,
        [JobSpec.of(job) for job in plan.jobs.values()],
        cache=lambda: surfaces.cache,
    )
    cache, logs = surfaces.cache, surfaces.logs
    cache_spec, secrets_spec = spec.surface("cache"), spec.surface("secrets")
    display = make_display(spec.output)
    from sparkwing.sdk.inputs import secret_values
    from sparkwing.sdk.runtime import mask_values_of

    # Secret inputs are masked like secrets from the first line this run writes.
    secrets = secret_values(None if args is None else type(args), args)
    masker = Masker([v for value in secrets for v in mask_values_of(value)])
    display.watch(masker)
    now = now_iso()
    run = RunRecord(
        run_id=spec.run_id,
        pipeline=spec.pipeline,
        status="running",
        created_at=now,
        started_at=now,
        heartbeat_at=now,
        args=plain_args,
        git=rc.git.to_dict(),
        trigger=spec.trigger,
        profile=spec.profile_name,
        profile_source=spec.profile_source,
        surfaces={name: spec.surface(name).to_record() for name in spec.surfaces},
        host=os.uname().nodename,
        pid=os.getpid(),
        extra={
            "start_ticks": process_start_ticks(os.getpid()),
            "parallel": spec.parallel,
            "surface_sources": spec.surface_reasons,
            "jobs": len(order),
            **({"bundle": spec.bundle} if spec.bundle else {}),
            **({"selection": selection.asked} if selection.asked else {}),
            **({"retry_of": spec.retry_of} if spec.retry_of else {}),
        },
    )
    place.on_wait = display.waiting
    place.create_run(state, run)  # with a concurrency group: returns once the run holds it
    if spec.retry_of:
        _link_retry(state, spec.retry_of, spec.run_id)
    # What a job leaves running is ended by the supervisor as the job ends.
    recorder = Recorder(spec.run_id, state, logs, masker, listener=display.notify)
    scheduler: Scheduler | None = None
    try:
        # A shell command may spell a secret input out: the snapshot is masked as logs are.
        state.save_plan(spec.run_id, masker.data(plan.snapshot()))
        recorder.event("run_started", None, {"pipeline": spec.pipeline, "jobs": len(order)})
        display.start(run, order)
        scheduler = Scheduler(
            plan=plan,
            order=order,
            args=args,
            rc=rc,
            recorder=recorder,
            cache=cache,
            # Job processes open their own (a forked child must not share a connection).
            open_cache=lambda: open_cache(cache_spec),
            open_secrets=lambda: open_secrets(secrets_spec),
            parallel=spec.parallel,
            workdir=Path(spec.root),
            memo_lease=float(os.environ.get("SPARKWING_MEMO_LEASE_SECONDS", "60")),
            pause_before=frozenset(spec.pause_before),
            pause_on_failure=spec.pause_on_failure,
            remote=remote,
            reuse=selection.reuse,
        )
        place.watch(scheduler.sup.interrupt)
        # Collection is off through the CLI's start-up (see cli.main). From here a run allocates per
        # job; what start-up made is frozen, never swept again nor copied into job processes
        # by a sweep that touches it.
        if not gc.isenabled():
            gc.freeze()
            gc.enable()
        status = scheduler.execute()
        kill_leftovers(spec.run_id)
        reason = scheduler.interrupted if status == "cancelled" else None
        if status == "failed" and scheduler.denied:
            reason = "denied"
        elif status == "failed":
            reason = _failed_reason(scheduler)
        recorder.event("run_finished", None, {"status": status, "reason": reason})
        recorder.flush()
        # The run last: a reader that sees it final finds its logs written out too.
        surfaces.close_one("logs")
        state.update_run(spec.run_id, status=status, reason=reason, finished_at=now_iso())
    except BaseException as exc:
        kill_leftovers(spec.run_id)
        known = [n.record for n in scheduler.nodes.values()] if scheduler is not None else None
        _finish_after_engine_error(spec.run_id, surfaces, recorder, masker, exc, known)
        raise
    final = state.get_run(spec.run_id) or run
    display.finish(final, state.list_nodes(spec.run_id))
    return CODE_OF_STATUS[status]


def _failed_reason(scheduler: Scheduler) -> str:
    """Which jobs failed the run; failed failure handlers after them, never instead."""
    failed, handlers = [], []
    for n in scheduler.nodes.values():
        if n.record.status != "failed":
            continue
        if n.job.role == "on_failure":
            handlers.append(n.job.id)
        elif not n.job.is_optional:
            failed.append(n.job.id)
    reason = "failed jobs: " + ", ".join(failed)
    if handlers:
        reason += f" (failure handlers that failed too: {', '.join(handlers)})"
    return reason


def _finish_after_engine_error(
    run_id: str,
    surfaces: Surfaces,
    recorder: Any,
    masker: Any,
    exc: BaseException,
    known: list[NodeRecord] | None,
) -> None:
    """Close the run as failed after the engine itself broke: each step is tried even when
    an earlier one fails (each failure is logged), so neither the record nor any job stays
    unfinished; the engine error itself is re-raised by the caller. ``known``: the
    scheduler's own job records, newer than the stored ones when a write failed."""
    from sparkwing.engine.clock import now_iso
    from sparkwing.engine.recovery import finalise_nodes

    reason = masker.text(f"engine error: {type(exc).__name__}: {exc}")
    state = surfaces.state

    def finish_jobs() -> None:
        # The scheduler's records where they exist (a job that finished while the store
        # refused writes keeps its outcome), masked as the recorder would; then whatever
        # the store still holds unfinished.
        if known:
            for record in known:
                record.output = masker.data(record.output)
                record.error = masker.text(record.error) if record.error else record.error
                record.reason = masker.text(record.reason) if record.reason else record.reason
            finals = [n for n in known if n.status in FINAL_NODE_STATUSES]
            if finals:
                state.upsert_nodes(finals)
            finalise_nodes(state, run_id, reason, list(known))
        finalise_nodes(state, run_id, reason)

    steps: list[tuple[str, Callable[[], object]]] = [
        ("record run_finished", lambda: recorder.event("run_finished", None, _failed(reason))),
        ("flush the run's events and logs", recorder.flush),
        ("close the logs", lambda: surfaces.close_one("logs")),
        ("finish the run's jobs", finish_jobs),
        (
            "mark the run failed",
            lambda: surfaces.state.update_run(
                run_id, status="failed", reason=reason, finished_at=now_iso()
            ),
        ),
    ]
    for what, step in steps:
        try:
            step()
        except Exception as step_exc:
            log.warning("run %s: could not %s after an engine error: %s", run_id, what, step_exc)
            log.debug("details", exc_info=True)


def _failed(reason: str) -> dict[str, Any]:
    return {"status": "failed", "reason": reason}


def _crash_report(spec: RunSpec) -> str:
    import traceback

    from sparkwing.paths import local_dir

    path = local_dir() / "crash" / f"{spec.run_id}.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(traceback.format_exc())
    except OSError:
        return "<unwritable>"
    return str(path)


def run_in_child(spec: RunSpec) -> RunResult:
    """The runner's whole life in this process; returns how it ended (never raises) and
    writes that to ``spec.result_path`` for the process that started it."""
    import signal

    from sparkwing.engine.procutil import become_subreaper, die_with_parent

    # SIGTERM (not SIGKILL) when the CLI dies: the scheduler then cancels the run cleanly,
    # ends every job's process group and writes every status.
    die_with_parent(signal.SIGTERM)
    # What a job starts in a new session becomes this process's child when orphaned, so it
    # can be ended when the job ends (see Supervisor._end_leftovers).
    become_subreaper()
    try:
        result = execute(spec)
    except SparkwingError as exc:
        result = RunResult.of_code(exc.exit_code, str(exc))
    except KeyboardInterrupt:
        result = RunResult.of_code(130)
    except Exception as exc:  # a bug in sparkwing itself: keep the details, say one line
        report = _crash_report(spec)
        log.debug("internal error in run %s", spec.run_id, exc_info=True)
        message = (
            f"internal error in the sparkwing runner: {type(exc).__name__}: {exc} "
            f"(details in {report})"
        )
        result = RunResult(70, "failed", (message,))
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if spec.result_path:
        try:
            result.write(spec.result_path)
        except OSError as exc:
            log.error("run %s: could not write its result: %s", spec.run_id, exc)
    return result


def main() -> None:
    """Entry for a runner started as a new interpreter, with the RunSpec as JSON on stdin."""
    # A forked runner has the CLI's handler; a new interpreter needs its own.
    _log.install_diagnostics()
    try:
        spec = RunSpec.from_dict(json.loads(sys.stdin.read()))
    except ValueError as exc:
        log.error("runner received an invalid run spec: %s", exc)
        sys.exit(2)
    sys.exit(run_in_child(spec).code)


if __name__ == "__main__":
    main()
