"""The queue worker: claims runs queued in a state store, starts each one through
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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sparkwing.surfaces.state.base import require_queue

if TYPE_CHECKING:
    from sparkwing.surfaces.spec import SurfaceSpec
    from sparkwing.surfaces.state.base import RunClaim, RunRecord, StateStore

DEFAULT_LEASE_SECONDS = 30.0
MAX_ATTEMPTS = 3
_REAP_SECONDS = 0.1

# What a queued run's spec holds; a worker refuses a version it does not know.
SPEC_VERSION = 1


@dataclass(frozen=True)
class WorkerEvent:
    """One thing that happened: ``kind`` is claimed, finished, requeued, lost or warning;
    ``run`` is the run it is about (None for a warning); ``data`` the details."""

    kind: str
    run: RunRecord | None
    data: dict[str, Any] = field(default_factory=dict)


Report = Callable[[WorkerEvent], None]


@dataclass
class Active:
    """A claimed run whose launch process is running."""

    claim: RunClaim
    proc: subprocess.Popen[bytes]
    result_path: str
    started: float
    renew_at: float
    lost: bool = False


class Worker:
    """Drive it with :meth:`serve` (until done or stopped) or :meth:`turn` (one pass)."""

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
    ) -> None:
        self.state = state
        self.queue = queue
        self.name = name
        self.lease = lease
        self.parallel = parallel
        self.poll = poll
        self.once = once
        self.max_runs = max_runs
        self.report = report
        self.active: dict[str, Active] = {}
        self.claimed = 0
        self.stop_signal: int | None = None
        self._stopping_children = False
        self._results = ""

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
        return 130 if self.stop_signal else 0

    def turn(self) -> bool:
        """One pass: reap, renew, claim; True when the worker is done."""
        self._reap()
        self._renew_due()
        if self.stop_signal:
            if not self._stopping_children:
                self._stopping_children = True
                for active in self.active.values():
                    _signal(active.proc, signal.SIGTERM)
            if not self.active:
                return True
            self._sleep(_REAP_SECONDS)
            return False
        can_claim = self.max_runs is None or self.claimed < self.max_runs
        if can_claim and len(self.active) < self.parallel:
            claim = require_queue(self.state).claim(self.name, self.lease)
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
        problem = self._check(claim)
        if problem is None and claim.attempt > MAX_ATTEMPTS:
            problem = (
                f"abandoned after {MAX_ATTEMPTS} attempts: each worker holding it stopped "
                "before the run finished"
            )
        if run.status != "queued":
            self._abandon(claim)
        if problem is not None:
            return self._fail(claim, problem)
        self._start(claim)

    def _check(self, claim: RunClaim) -> str | None:
        """Why the run cannot start here, or None: its project must be on this machine and
        its profile must keep its state in this worker's queue."""
        from pathlib import Path

        from sparkwing.conf.project import find_project
        from sparkwing.conf.resolve import resolve_profile
        from sparkwing.errors import SparkwingError
        from sparkwing.surfaces.session import Surfaces

        spec = claim.spec
        if spec.get("version") != SPEC_VERSION:
            return f"queued by another sparkwing version (spec version {spec.get('version')!r})"
        root = Path(str(spec.get("root", "")))
        project = find_project(root) if root.is_dir() else None
        if project is None or project.root != root:
            return f"project {root} is not on this machine ({socket.gethostname()})"
        try:
            resolved = resolve_profile(
                project, flag=spec.get("profile"), env=os.environ, pipeline=claim.run.pipeline
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

    def _start(self, claim: RunClaim) -> None:
        from sparkwing.engine.launch import QueuedStart, start_queued

        spec, run = claim.spec, claim.run
        result_path = os.path.join(self._results or tempfile.gettempdir(), f"{run.run_id}.json")
        start = QueuedStart(
            run_id=run.run_id,
            pipeline=run.pipeline,
            root=str(spec["root"]),
            profile=str(spec["profile"]),
            result_path=result_path,
            parent=os.getpid(),
            args=[str(a) for a in spec.get("args", [])],
        )
        try:
            proc = start_queued(start)
        except OSError as exc:
            return self._fail(claim, f"could not start sparkwing run: {exc}")
        now = time.monotonic()
        self.active[run.run_id] = Active(claim, proc, result_path, now, now + self.lease / 3)

    def _renew_due(self) -> None:
        now = time.monotonic()
        for active in self.active.values():
            if active.lost or now < active.renew_at:
                continue
            active.renew_at = now + self.lease / 3
            if not require_queue(self.state).renew(active.claim.run.run_id, self.name, self.lease):
                # Another worker took it after our lease lapsed: never run it twice at once.
                active.lost = True
                _signal(active.proc, signal.SIGTERM)
                self._warn(f"lost the claim on {active.claim.run.run_id}; stopping its run here")

    def _reap(self) -> None:
        for run_id, active in list(self.active.items()):
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
        require_queue(self.state).release(run_id, self.name, requeue=requeue)
        self._emit_end("requeued" if requeue else "finished", run, run.status, seconds)

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
        from sparkwing.engine.recovery import kill_orphans
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
        data = {"attempt": claim.attempt - 1, "worker": claim.previous_worker, "status": run.status}
        self.state.append_events(run.run_id, [NewEvent("attempt_abandoned", now, data=data)])
        self.state.update_run(run.run_id, status="queued", reason=why, finished_at=None, pid=None)


def submit(
    state: StateStore,
    *,
    pipeline: str,
    root: str,
    args: list[str],
    profile: str,
    profile_source: str,
    queue: SurfaceSpec,
    submitted_by: str,
) -> tuple[RunRecord, dict[str, Any]]:
    """Put a run of ``pipeline`` in ``state``'s queue for any worker of that queue; returns
    the queued record and the spec a worker starts it from."""
    from sparkwing.engine.clock import now_iso
    from sparkwing.ids import new_run_id
    from sparkwing.surfaces.state.base import RunRecord

    run = RunRecord(
        run_id=new_run_id(),
        pipeline=pipeline,
        status="queued",
        created_at=now_iso(),
        trigger="queue",
        profile=profile,
        profile_source=profile_source,
        surfaces={"state": queue.to_record()},
        host=socket.gethostname(),
        extra={"submitted_by": submitted_by},
    )
    job: dict[str, Any] = {
        "version": SPEC_VERSION,
        "root": root,
        "pipeline": pipeline,
        "args": args,
        "profile": profile,
        "cwd": os.getcwd(),
    }
    require_queue(state).submit(run, job)
    return run, job


def _signal(proc: subprocess.Popen[bytes], signum: int) -> None:
    try:
        proc.send_signal(signum)
    except OSError:
        pass
