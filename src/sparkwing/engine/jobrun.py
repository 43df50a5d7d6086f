"""The process a worker's local launcher starts for one dispatched job
(``python -m sparkwing.engine.jobrun``, a JobStart as JSON on stdin): it takes the run's
pipeline bundle by key from the cache, plans the run as its runner did, runs that one job in
its own workspace (consumed artifacts restored there, outputs uploaded), writes the job's
log to the logs surface, and leaves a JobResult in the file the start names."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sparkwing import _log
from sparkwing.engine.launcher import JobStart
from sparkwing.errors import PlanError, SparkwingError, UsageError
from sparkwing.surfaces.state.jobqueue import JobResult

log = _log.get("sparkwing.engine")

# Log lines are written out at least this often while the job runs.
LOG_FLUSH_SECONDS = 0.5


def fetch_bundle(cache_spec: Any, key: str, digest: str | None = None) -> Path:
    """The unpacked tree (``src/``, maybe ``site-packages/``) of bundle ``key``, taken from
    this machine's bundle cache or else fetched from ``bin/<key>`` of the cache surface.
    ``digest``: the one the run used; a tree unpacked from it already is used as it is."""
    from sparkwing.bundle import archive, remote
    from sparkwing.bundle.store import TREE_MARKER, LocalStore, check_bundle_key, rmtree

    check_bundle_key(key)
    store = LocalStore()
    spec = remote.binaries_spec(cache_spec)
    tree = store.tree_path(key)
    with store.locked(key, "build"):
        # The worker's every later job of the run: no archive to hash again.
        with contextlib.suppress(OSError):
            if digest and (tree / TREE_MARKER).read_text(encoding="ascii") == digest:
                return tree
        obj = store.object_path(key)
        work = store.work_dir()
        try:
            if not obj.is_file():
                cache = remote.open_remote(spec)
                try:
                    if not cache.get_file(remote.remote_key(key), work / "object"):
                        raise UsageError(
                            f"bundle {key[:12]} is not in {remote.location(spec)}: the run's "
                            "machine and this worker must share the cache surface"
                        )
                finally:
                    cache.close()
                archive.verify(work / "object")
                obj.parent.mkdir(parents=True, exist_ok=True)
                os.replace(work / "object", obj)
            found = archive.verify(obj)
            with contextlib.suppress(OSError):
                if (tree / TREE_MARKER).read_text(encoding="ascii") == found:
                    return tree
            dest = work / "tree"
            dest.mkdir()
            archive.unpack(obj, dest)
            (dest / TREE_MARKER).write_text(found, encoding="ascii")
            store.retire_tree(key)
            tree.parent.mkdir(parents=True, exist_ok=True)
            os.replace(dest, tree)
            return tree
        finally:
            rmtree(work)


def _plan_job(start: JobStart, tree: Path, workdir: Path) -> tuple[Any, Any, Any]:
    """Plan the run as its runner did; returns (JobSpec of this job, args, RunContext)."""
    from sparkwing.engine.jobspec import JobSpec
    from sparkwing.engine.loader import find_pipeline, import_project
    from sparkwing.engine.runner import add_site_dirs, call_plan
    from sparkwing.sdk.context import Git, RunContext
    from sparkwing.sdk.inputs import args_type_of, build_args
    from sparkwing.sdk.plan import Plan
    from sparkwing.sdk.runtime import planning

    spec = start.spec
    site = tree / "site-packages"
    if site.is_dir():
        add_site_dirs([str(site)])
    modules = import_project(tree / "src")
    pipeline = str(spec["pipeline"])
    pdef = find_pipeline(pipeline, spec.get("entrypoint"), modules, list(spec["yaml_names"]))
    args, _ = build_args(
        args_type_of(pdef.obj),
        pipeline,
        cli=list(spec["cli_args"]),
        yaml_args=dict(spec["yaml_args"]),
        default_args=dict(spec["default_args"]),
    )
    run = spec["run"]
    git = run.get("git") or {}
    rc = RunContext(
        run_id=start.run_id,
        pipeline=pipeline,
        git=Git(str(git.get("sha", "")), str(git.get("branch", "")), bool(git.get("dirty"))),
        trigger=str(run.get("trigger", "cli")),
        profile=str(run.get("profile", "local")),
        workdir=workdir,
    )
    plan = Plan(pipeline)
    try:
        with planning(pipeline):
            call_plan(pdef.obj, plan, args, rc)
    except SparkwingError:
        raise
    except BaseException as exc:
        raise PlanError(f'plan() of pipeline "{pipeline}" failed on this worker: {exc}') from None
    job = plan.jobs.get(start.node_id)
    if job is None:
        raise PlanError(f'plan() of pipeline "{pipeline}" has no job "{start.node_id}" here')
    return JobSpec.of(job), args, rc


class _LogWriter:
    """The job's lines, masked, appended to its (run, node) log stream in batches."""

    def __init__(self, logs: Any, start: JobStart, masker: Any) -> None:
        from sparkwing.surfaces.logs.base import LogRecord

        self._record = LogRecord
        self.logs = logs
        self.start = start
        self.masker = masker
        self.lines: list[Any] = []
        self.annotations: list[str] = []

    def add(self, stream: str, msg: str) -> None:
        from sparkwing.engine.clock import now_iso

        self.lines.append(self._record(now_iso(), self.masker.text(msg), stream))

    def items(self, _key: str, items: list[tuple[str, Any]]) -> None:
        for kind, item in items:
            if kind == "line":
                self.add("stdout", item)
            elif kind == "log":
                self.add(item[0], item[1])
            elif item.get("t") == "log":
                self.add(str(item.get("s", "info")), str(item.get("m", "")))
            elif item.get("t") == "mask":
                self.masker.add([str(v) for v in item.get("v", [])])
            elif item.get("t") == "ann":
                self.annotations.append(self.masker.text(str(item.get("m", ""))))

    def flush(self) -> None:
        if self.lines:
            lines, self.lines = self.lines, []
            self.logs.append(self.start.run_id, self.start.node_id, lines)
            self.logs.flush()


def _execute(
    start: JobStart,
    job: Any,
    args: Any,
    rc: Any,
    writer: _LogWriter,
    open_cache: Callable[[], Any],
    open_secrets: Callable[[], Any],
    workdir: Path,
) -> tuple[dict[str, Any] | None, str | None]:
    """Run the job's attempt under a supervisor in ``workdir``; (its result message, why it
    was stopped)."""
    import time

    from sparkwing.engine.jobproc import JobHost, JobLaunch, ShellLaunch
    from sparkwing.engine.scheduler import _attempt_error
    from sparkwing.engine.supervisor import Supervisor

    inputs = start.spec.get("inputs") or {}
    outputs = dict(inputs.get("outputs") or {})
    consumed = dict(inputs.get("consumed") or {})
    env = {
        **job.env_vars,
        "SPARKWING_RUN_ID": start.run_id,
        "SPARKWING_PIPELINE": rc.pipeline,
        "SPARKWING_JOB": job.id,
        "SPARKWING_WORKER": start.worker,
    }

    host = JobHost(rc, args, {job.id: job.fn}, outputs, open_secrets, open_cache)
    with Supervisor(writer.items, writer.masker, host) as sup:
        if isinstance(job.fn, str) and not consumed and not job.output_globs:
            writer.add("info", f"$ {job.fn}")
            sup.start_shell(
                job.id, ShellLaunch(job.id, job.fn, {**os.environ, **env}, str(workdir)), None
            )
        else:
            launch = JobLaunch(
                job.id, env, str(workdir), start.attempt, consumed, tuple(job.output_globs)
            )
            sup.start(job.id, launch, None)
        flushed = time.monotonic()
        while True:
            if sup.interrupted:
                exits = sup.terminate_all()
                writer.flush()
                return None, sup.interrupted
            exits = sup.wait(LOG_FLUSH_SECONDS)
            if time.monotonic() - flushed >= LOG_FLUSH_SECONDS or exits:
                writer.flush()
                flushed = time.monotonic()
            if exits:
                exited = exits[0]
                result = exited.result
                if result is not None and result.get("ok"):
                    return result, None
                return {"ok": False, "error": _attempt_error(job, exited)}, None


def _workdir(start: JobStart, cache: Any, writer: _LogWriter) -> Path:
    """Where the job runs: the project root of the run's code (its git commit, or its
    snapshot) checked out in the job's workspace, or the bare workspace for a run whose
    code did not travel."""
    from sparkwing.source.record import describe_source
    from sparkwing.source.workspace import prepare

    workspace = Path(start.workspace)
    source = start.spec.get("source")
    if not source:
        return workspace
    writer.add("info", f"code: {describe_source(source)}")
    return prepare(source, cache, workspace / "code")


def run_job(start: JobStart) -> JobResult:
    """The whole job; never raises: a problem is the result's error (and a log line)."""
    from sparkwing.engine.clock import now_iso
    from sparkwing.engine.masking import Masker
    from sparkwing.engine.runspec import spec_from_dict
    from sparkwing.surfaces.open import open_cache, open_secrets
    from sparkwing.surfaces.session import Surfaces

    started = now_iso()
    specs = {name: spec_from_dict(doc) for name, doc in start.surfaces.items()}
    masker = Masker()
    with Surfaces(specs) as surfaces:
        writer = _LogWriter(surfaces.logs, start, masker)
        where = f"worker {start.worker}"
        writer.add("info", f"running on {where} (attempt {start.attempt})")
        extra: dict[str, Any] = {"worker": start.worker}
        try:
            bundle = start.spec["bundle"]
            tree = fetch_bundle(specs["cache"], str(bundle["key"]), bundle.get("digest"))
            workdir = _workdir(start, surfaces.cache, writer)
            job, args, rc = _plan_job(start, tree, workdir)
            result, stopped = _execute(
                start,
                job,
                args,
                rc,
                writer,
                lambda: open_cache(specs["cache"]),
                lambda: open_secrets(specs["secrets"]),
                workdir,
            )
        except SparkwingError as exc:
            writer.add("error", str(exc))
            result, stopped = {"ok": False, "error": masker.text(str(exc))}, None
        except Exception as exc:  # a bug in sparkwing: the job fails with what it was
            log.debug("job %s of %s failed to start", start.node_id, start.run_id, exc_info=True)
            error = masker.text(f"internal error on {where}: {type(exc).__name__}: {exc}")
            writer.add("error", error)
            result, stopped = {"ok": False, "error": error}, None
        if writer.annotations:
            extra["annotations"] = writer.annotations
        try:
            writer.flush()
        except SparkwingError as exc:
            log.warning("job %s: could not write its log: %s", start.node_id, exc)
    finished = now_iso()
    if stopped is not None:
        return JobResult("cancelled", error=stopped, started_at=started, finished_at=finished)
    assert result is not None
    if result.get("ok"):
        return JobResult(
            "success",
            output=masker.data(result.get("output")),
            artifacts=result.get("artifacts"),
            started_at=started,
            finished_at=finished,
            extra=extra,
        )
    return JobResult(
        "failed",
        error=masker.text(str(result.get("error") or "job failed")),
        started_at=started,
        finished_at=finished,
        extra=extra,
    )


def main() -> None:
    import signal

    from sparkwing.engine.procutil import die_with_parent

    _log.install_diagnostics()
    start = JobStart.from_json(sys.stdin.read())
    # Stopped (and so cancelled cleanly) when the worker that started it dies.
    die_with_parent(signal.SIGTERM)
    if start.parent and os.getppid() != start.parent:
        sys.exit(143)  # the worker died before that was set: no one holds the job's lease
    result = run_job(start)
    tmp = start.result_path + ".tmp"
    try:
        Path(tmp).write_text(json.dumps(result.to_dict()), encoding="utf-8")
        os.replace(tmp, start.result_path)
    except OSError as exc:
        log.error("job %s: could not write its result: %s", start.node_id, exc)
        sys.exit(70)
    sys.exit(0 if result.status == "success" else 1)


if __name__ == "__main__":
    main()
