"""The queue worker: claims runs queued in a state store (those whose labels it has),
materialises each one's code in a workspace of its own (a worktree of its git commit, or
its unpacked snapshot: :mod:`sparkwing.source.workspace`), starts it through
:mod:`sparkwing.engine.launch`, renews its claim while it runs, and closes or requeues it,
reporting each step to a callback (``sparkwing worker`` renders them).

A run whose worker died (its lease expired) is claimed by another worker, which marks the dead
attempt's open jobs cancelled, puts the record back to ``queued`` and starts the run over under
the same id. A successful run is never started again; after ``MAX_ATTEMPTS`` lost attempts a
run is failed instead of being retried forever.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkwing import _log
from sparkwing.engine.queuespec import SPEC_VERSION, QueuedSpec, read_spec
from sparkwing.engine.workerbeat import DEFAULT_HEARTBEAT_SECONDS, Beat
from sparkwing.surfaces.state.base import require_queue

if TYPE_CHECKING:
    from sparkwing.source.workspace import Held, Workspaces
    from sparkwing.surfaces.cache.base import Cache
    from sparkwing.surfaces.spec import SurfaceSpec
    from sparkwing.surfaces.state.base import RunClaim, RunRecord, StateStore

__all__ = ["SPEC_VERSION", "Worker", "WorkerEvent", "submit"]

log = _log.get("sparkwing.engine")

DEFAULT_LEASE_SECONDS = 30.0
MAX_ATTEMPTS = 3
_REAP_SECONDS = 0.1


@dataclass(frozen=True)
class WorkerEvent:
    """One thing that happened: ``kind`` is claimed, finished, requeued, lost, kept (a failed
    run's workspace left in place), note or warning; ``run`` is the run it is about (None
    for a note or a warning); ``data`` the details."""

    kind: str
    run: RunRecord | None
    data: dict[str, Any] = field(default_factory=dict)


Report = Callable[[WorkerEvent], None]


@dataclass
class Active:
    """A claimed run: its workspace being prepared (``preparing``), then its launch process
    running (``proc``)."""

    claim: RunClaim
    spec: QueuedSpec
    started: float
    renew_at: float
    proc: subprocess.Popen[bytes] | None = None
    result_path: str = ""
    preparing: Future[Path] | None = None
    held: Held | None = None
    lost: bool = False


class Worker:
    """Drive it with :meth:`serve` (until done or stopped) or :meth:`turn` (one pass).

    ``labels``: what this worker offers (it claims only runs needing a subset of them);
    ``cache``: opens the cache that holds snapshots; ``keep_failed``: leave the workspace
    of a run that did not succeed (its path is reported)."""

    def __init__(
        self,
        state: StateStore,
        queue: SurfaceSpec,
        *,
        name: str,
        lease: float,
        parallel: int,
        poll: float,
        once: bool,
        max_runs: int | None,
        report: Report,
        labels: Sequence[str] = (),
        cache: Callable[[], Cache] | None = None,
        keep_failed: bool = False,
        workspaces: Workspaces | None = None,
        heartbeat: float = DEFAULT_HEARTBEAT_SECONDS,
        profile: str | None = None,
    ) -> None:
        from sparkwing.source.workspace import Workspaces

        self.state = state
        self.queue = queue
        self.name = name
        self.lease = lease
        self.parallel = parallel
        self.poll = poll
        self.once = once
        self.max_runs = max_runs
        self.report = report
        self.labels = list(labels)
        # The worker's own profile: a run queued without one (by a webhook or a schedule)
        # runs under it, so its record lands in this worker's queue.
        self.profile = profile
        self.cache = cache
        self.keep_failed = keep_failed
        self.workspaces = workspaces or Workspaces()
        self.beat = Beat(state, name, self.labels, heartbeat)
        self.active: dict[str, Active] = {}
        self.claimed = 0
        self.stop_signal: int | None = None
        self._stopping_children = False
        self._results = ""
        self._pool: ThreadPoolExecutor | None = None

    def stop(self, signum: int) -> None:
        """Stop: end the runs in progress (they go back to the queue), then return."""
        self.stop_signal = self.stop_signal or signum

    def serve(self) -> int:
        """Run until done (``once`` / ``max_runs``) or stopped by SIGINT / SIGTERM; 130 when
        stopped, else 0."""
        from sparkwing.errors import StorageError

        def on_signal(signum: int, _frame: Any) -> None:
            self.stop(signum)

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            with tempfile.TemporaryDirectory(prefix="sparkwing-worker-") as results:
                self._results = results
                while True:
                    try:
                        if self.turn():
                            break
                    except StorageError as exc:
                        # The store is unreachable for longer than its own retries: keep the
                        # runs going and try again; their claims are renewed once it is back.
                        self._warn(str(exc))
                        self._sleep(self.poll)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.close()
        return 130 if self.stop_signal else 0

    def start(self) -> None:
        """Before the first turn: remove the workspaces a killed worker left on this machine
        and register in the fleet."""
        from sparkwing.errors import StorageError

        for path in self.workspaces.clean_stale():
            self._note(f"removed the workspace a stopped worker left: {path}")
        try:
            self.beat.start()
        except StorageError as exc:
            self._warn(f"could not register in the fleet: {exc}")

    def close(self) -> None:
        """After the last turn: leave the fleet."""
        from sparkwing.errors import StorageError

        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        try:
            self.beat.leave()
        except StorageError as exc:
            self._warn(f"could not leave the fleet: {exc}")

    def turn(self) -> bool:
        """One pass: reap, renew, report to the fleet, claim; True when the worker is done."""
        self._reap()
        self._renew_due()
        self.beat.due(list(self.active))
        if self.stop_signal:
            if not self._stopping_children:
                self._stopping_children = True
                for active in self.active.values():
                    if active.proc is not None:
                        _signal(active.proc, signal.SIGTERM)
            if not self.active:
                return True
            self._sleep(_REAP_SECONDS)
            return False
        can_claim = self.max_runs is None or self.claimed < self.max_runs
        if can_claim and len(self.active) < self.parallel:
            claim = require_queue(self.state).claim(self.name, self.lease, self.labels)
            if claim is not None:
                self.claimed += 1
                self._take(claim)
                return False
            if self.once and not self.active:
                return True
        elif not can_claim and not self.active:
            return True
        self._sleep(_REAP_SECONDS if self.active else self.poll)
        return False

    # -- reporting ----------------------------------------------------------------------
    def _emit(self, kind: str, run: RunRecord, **data: Any) -> None:
        self.report(WorkerEvent(kind, run, data))

    def _emit_end(self, kind: str, run: RunRecord, status: str, seconds: float | None) -> None:
        self._emit(kind, run, status=status, seconds=seconds, reason=run.reason)

    def _warn(self, message: str) -> None:
        self.report(WorkerEvent("warning", None, {"message": message}))

    def _note(self, message: str) -> None:
        self.report(WorkerEvent("note", None, {"message": message}))

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.stop_signal is None and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, _REAP_SECONDS))

    # -- one claimed run ----------------------------------------------------------------
    def _take(self, claim: RunClaim) -> None:
        from sparkwing.status import FINAL_RUN_STATUSES

        run = claim.run
        self._emit("claimed", run, attempt=claim.attempt, previous_worker=claim.previous_worker)
        if run.status == "success":
            return self._close(claim, "success", "already finished by an earlier attempt")
        if claim.attempt == 1 and run.status in FINAL_RUN_STATUSES:
            return self._close(claim, run.status, "ended before any worker started it")
        spec = read_spec(claim.spec, run.pipeline)
        problem = spec if isinstance(spec, str) else None
        if problem is None and claim.attempt > MAX_ATTEMPTS:
            problem = (
                f"abandoned after {MAX_ATTEMPTS} attempts: each worker holding it stopped "
                "before the run finished"
            )
        if run.status != "queued":
            self._abandon(claim)
        if problem is not None or isinstance(spec, str):
            return self._fail(claim, problem or "")
        if spec.remote:
            return self._prepare(claim, spec)
        root = Path(str(spec.source.get("root", "")))
        problem = self._check(claim, spec, root, local=True)
        if problem is not None:
            return self._fail(claim, problem)
        now = time.monotonic()
        self._start(Active(claim, spec, now, now + self.lease / 3), root)

    def _check(self, claim: RunClaim, spec: QueuedSpec, root: Path, *, local: bool) -> str | None:
        """Why the run cannot start from ``root``, or None: there must be its project
        (on this machine, for a local source) and its profile must keep its state in this
        worker's queue."""
        from sparkwing.conf.project import find_project
        from sparkwing.conf.resolve import resolve_profile
        from sparkwing.errors import SparkwingError
        from sparkwing.surfaces.session import Surfaces

        try:
            project = find_project(root) if root.is_dir() else None
            if project is None or project.root != root:
                if local:
                    return f"project {root} is not on this machine ({socket.gethostname()})"
                return f"no .sparkwing/ folder in the run's source at {root}"
            resolved = resolve_profile(
                project,
                flag=spec.profile or self.profile,
                env=os.environ,
                pipeline=claim.run.pipeline,
            )
            target = Surfaces.of_profile(resolved, pipeline=claim.run.pipeline).spec("state")
        except SparkwingError as exc:
            return str(exc)
        if target != self.queue:
            return (
                f'profile "{resolved.name}" keeps this run in {target.describe()}, '
                f"not in this worker's {self.queue.describe()}"
            )
        return None

    def _prepare(self, claim: RunClaim, spec: QueuedSpec) -> None:
        """Fetch and check out (or download and unpack) the run's code in the background;
        :meth:`_reap` starts the run once it is there."""
        from sparkwing.errors import SparkwingError
        from sparkwing.source.workspace import prepare

        run_id = claim.run.run_id
        try:
            cache = self.cache() if self.cache and spec.source.get("kind") == "snapshot" else None
            held = self.workspaces.hold(run_id, spec.source)
        except (SparkwingError, OSError) as exc:
            return self._fail(claim, f"could not prepare the run's workspace: {exc}")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="sparkwing-source")
        future = self._pool.submit(prepare, spec.source, cache, held.path)
        now = time.monotonic()
        self.active[run_id] = Active(
            claim, spec, now, now + self.lease / 3, preparing=future, held=held
        )

    def _prepared(self, active: Active, future: Future[Path]) -> None:
        """The workspace is ready (or could not be made): start the run, or end it."""
        from sparkwing.errors import SparkwingError

        claim = active.claim
        run_id = claim.run.run_id
        del self.active[run_id]
        try:
            root = future.result()
        except (SparkwingError, OSError) as exc:
            self._drop_workspace(active, failed=True)
            return self._fail(claim, f"could not get the run's source: {exc}")
        except Exception as exc:  # a bug in sparkwing: the run still ends, with the reason
            log.debug("preparing the workspace of %s failed", run_id, exc_info=True)
            self._drop_workspace(active, failed=True)
            reason = f"could not get the run's source: internal error: {type(exc).__name__}: {exc}"
            return self._fail(claim, reason)
        if active.lost:
            self._drop_workspace(active, failed=False)
            return self._emit("lost", claim.run)
        if self.stop_signal is not None:
            self._drop_workspace(active, failed=False)
            require_queue(self.state).release(run_id, self.name, requeue=True)
            return self._emit_end("requeued", claim.run, claim.run.status, None)
        problem = self._check(claim, active.spec, root.resolve(), local=False)
        if problem is not None:
            self._drop_workspace(active, failed=True)
            return self._fail(claim, problem)
        self._start(active, root)

    def _start(self, active: Active, root: Path) -> None:
        from sparkwing.engine.launch import QueuedStart, start_queued

        claim, spec = active.claim, active.spec
        run = claim.run
        result_path = os.path.join(self._results or tempfile.gettempdir(), f"{run.run_id}.json")
        start = QueuedStart(
            run_id=run.run_id,
            pipeline=run.pipeline,
            root=str(root),
            profile=spec.profile or self.profile,
            result_path=result_path,
            parent=os.getpid(),
            args=list(spec.args),
            # What queued it (a push, a schedule, `runs submit`) stays the run's trigger.
            trigger=run.trigger if run.trigger not in ("", "cli") else "queue",
        )
        try:
            proc = start_queued(start)
        except OSError as exc:
            self._drop_workspace(active, failed=True)
            return self._fail(claim, f"could not start sparkwing run: {exc}")
        now = time.monotonic()
        active.proc, active.result_path, active.started = proc, result_path, now
        active.renew_at = min(active.renew_at, now + self.lease / 3)
        self.active[run.run_id] = active

    def _renew_due(self) -> None:
        now = time.monotonic()
        for active in self.active.values():
            if active.lost or now < active.renew_at:
                continue
            active.renew_at = now + self.lease / 3
            if not require_queue(self.state).renew(active.claim.run.run_id, self.name, self.lease):
                # Another worker took it after our lease lapsed: never run it twice at once.
                active.lost = True
                if active.proc is not None:
                    _signal(active.proc, signal.SIGTERM)
                self._warn(f"lost the claim on {active.claim.run.run_id}; stopping its run here")

    def _reap(self) -> None:
        for run_id, active in list(self.active.items()):
            if active.preparing is not None:
                if active.preparing.done():
                    future, active.preparing = active.preparing, None
                    self._prepared(active, future)
                continue
            assert active.proc is not None  # a prepared run has its process
            code = active.proc.poll()
            if code is None:
                continue
            del self.active[run_id]
            try:
                self._finish(active, code)
            finally:
                try:
                    os.unlink(active.result_path)
                except OSError:
                    pass

    def _finish(self, active: Active, code: int) -> None:
        from sparkwing.engine.clock import now_iso
        from sparkwing.engine.recovery import record_runner_death
        from sparkwing.engine.runspec import RunResult
        from sparkwing.status import FINAL_RUN_STATUSES

        claim = active.claim
        run_id = claim.run.run_id
        seconds = time.monotonic() - active.started
        if active.lost:
            self._drop_workspace(active, failed=False)
            self._emit("lost", claim.run)
            return
        run = self.state.get_run(run_id)
        if run is None or run.status not in FINAL_RUN_STATUSES:
            result = RunResult.read(active.result_path)
            error = result.error if result is not None else None
            reason = error or f"sparkwing run exited with code {code}"
            if run is not None and run.status == "queued":
                # It never started (bad input, config error): the error is the run's reason.
                self.state.update_run(run_id, status="failed", reason=reason, finished_at=now_iso())
            else:
                record_runner_death(self.state, run_id, reason)
            run = self.state.get_run(run_id) or claim.run
        requeue = self.stop_signal is not None and run.status == "cancelled"
        self._drop_workspace(active, failed=run.status != "success" and not requeue, run=run)
        require_queue(self.state).release(run_id, self.name, requeue=requeue)
        self._emit_end("requeued" if requeue else "finished", run, run.status, seconds)

    def _drop_workspace(
        self, active: Active, *, failed: bool, run: RunRecord | None = None
    ) -> None:
        """Remove the run's workspace, or with ``keep_failed`` leave a failed one (reported)."""
        if active.held is None:
            return
        keep = failed and self.keep_failed
        self.workspaces.release(active.held, keep=keep)
        if keep:
            self._emit("kept", run or active.claim.run, path=str(active.held.path))

    def _close(self, claim: RunClaim, status: str, why: str) -> None:
        require_queue(self.state).release(claim.run.run_id, self.name)
        run = self.state.get_run(claim.run.run_id) or claim.run
        if run.status != status or not run.reason:
            run.reason = why
        self._emit_end("finished", run, status, None)

    def _fail(self, claim: RunClaim, reason: str) -> None:
        from sparkwing.engine.clock import now_iso

        run_id = claim.run.run_id
        self.state.update_run(run_id, status="failed", reason=reason, finished_at=now_iso())
        self._close(claim, "failed", reason)

    def _abandon(self, claim: RunClaim) -> None:
        """Close what an earlier attempt left open (its jobs, its orphaned processes here)
        and put the record back to queued, so the run starts over under the same id."""
        from sparkwing.engine.clock import now_iso
        from sparkwing.engine.recovery import cancel_dispatched, kill_orphans
        from sparkwing.status import FINAL_NODE_STATUSES
        from sparkwing.surfaces.state.base import NewEvent

        run, now = claim.run, now_iso()
        why = f"attempt {claim.attempt - 1} (worker {claim.previous_worker}) did not finish"
        nodes = self.state.list_nodes(run.run_id)
        nodes = [n for n in nodes if n.status not in FINAL_NODE_STATUSES]
        if run.host == socket.gethostname():
            kill_orphans(run.run_id, [n.extra.get("pgid") for n in nodes])
        for node in nodes:
            node.status, node.reason, node.finished_at = "cancelled", why, now
        self.state.upsert_nodes(nodes)
        cancel_dispatched(self.state, run.run_id, why)
        data = {"attempt": claim.attempt - 1, "worker": claim.previous_worker, "status": run.status}
        self.state.append_events(run.run_id, [NewEvent("attempt_abandoned", now, data=data)])
        self.state.update_run(run.run_id, status="queued", reason=why, finished_at=None, pid=None)


def submit(
    state: StateStore,
    *,
    pipeline: str,
    args: list[str],
    profile: str,
    profile_source: str,
    queue: SurfaceSpec,
    submitted_by: str,
    source: dict[str, Any] | None = None,
    root: str | None = None,
    labels: Sequence[str] = (),
    trigger: str = "queue",
) -> tuple[RunRecord, dict[str, Any]]:
    """Put a run of ``pipeline`` in ``state``'s queue for any worker of that queue having
    ``labels``; returns the queued record and the spec a worker starts it from. ``source``:
    where its code comes from (see :mod:`sparkwing.engine.queuespec`); without one, the
    project at ``root`` on this machine."""
    from sparkwing.engine.clock import now_iso
    from sparkwing.errors import UsageError
    from sparkwing.ids import check_labels, new_run_id
    from sparkwing.surfaces.state.base import RunRecord

    if source is None:
        if root is None:
            raise UsageError("a queued run needs a source or a project root")
        source = {"kind": "local", "root": root, "cwd": os.getcwd()}
    needs = check_labels(labels, "run label")
    extra: dict[str, Any] = {"submitted_by": submitted_by}
    if needs:
        extra["labels"] = needs
    run = RunRecord(
        run_id=new_run_id(),
        pipeline=pipeline,
        status="queued",
        created_at=now_iso(),
        trigger=trigger,
        profile=profile,
        profile_source=profile_source,
        surfaces={"state": queue.to_record()},
        host=socket.gethostname(),
        extra=extra,
        source=dict(source),
    )
    job = QueuedSpec(pipeline, dict(source), list(args), needs, profile).to_dict()
    require_queue(state).submit(run, job)
    return run, job


def _signal(proc: subprocess.Popen[bytes], signum: int) -> None:
    try:
        proc.send_signal(signum)
    except OSError:
        pass
