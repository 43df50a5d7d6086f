"""The scheduler: one loop that composes the DAG state machine, the process supervisor,
memo coordination and gate waiting, deciding each job's next step and recording it.

Each loop turn starts what is ready, waits once for process output and exits, and fires
due timers. Records are written in batches: before the loop waits, but no more often than
every few milliseconds (see :meth:`Scheduler._wait_timeout`), and always before the run
ends. A run being cancelled
still runs its ``finally_`` jobs, within a bounded grace time.
"""

from __future__ import annotations

import heapq
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkwing.engine import artifacts
from sparkwing.engine.dag import FINALLY, JOB, ON_FAILURE, Dag, DagNode
from sparkwing.engine.gatewait import GATE_POLL_SECONDS, GateWaiter
from sparkwing.engine.jobproc import JobHost, JobLaunch, ShellLaunch
from sparkwing.engine.jobspec import JobSpec, freeze
from sparkwing.engine.memocoord import MemoCoordinator
from sparkwing.engine.recorder import Recorder
from sparkwing.engine.supervisor import Exited, Supervisor
from sparkwing.errors import SparkwingError
from sparkwing.sdk.context import Context, Failure, RunContext
from sparkwing.sdk.durations import format_duration
from sparkwing.sdk.plan import Plan
from sparkwing.sdk.runtime import Runtime, running
from sparkwing.status import FINAL_NODE_STATUSES
from sparkwing.surfaces.cache.base import Cache
from sparkwing.surfaces.state.base import Gate, NodeRecord

if TYPE_CHECKING:
    from sparkwing.engine.dispatch import Dispatcher

HEARTBEAT_SECONDS = 5.0
MEMO_POLL_SECONDS = 0.25
# The loop wakes at least this often so a live display can update its clock.
MAX_TURN_SECONDS = 0.5
# How long the finally jobs of a cancelled run may take before they are ended too: short
# enough that `runs cancel` (which waits 10 s) still sees the run end.
FINALLY_GRACE_SECONDS = 5.0


@dataclass
class NodeRun:
    """One job of the run: its spec, its record, and what the scheduler waits on for it."""

    job: JobSpec
    record: NodeRecord
    looked: bool = False  # skip_if was evaluated (only before the first attempt)
    memo_key: str | None = None
    wake_at: float | None = None  # a retry, memo or gate poll is due then
    wake_kind: str | None = None
    paused_before: bool = False  # its pause-before gate was resumed already

    @property
    def final(self) -> bool:
        return self.record.status in FINAL_NODE_STATUSES


class RunnerSink:
    """The engine-side Sink for user code it runs itself (skip_if, memoize key functions)."""

    def __init__(self, recorder: Recorder, node_id: str) -> None:
        self._recorder = recorder
        self._node = node_id

    def log(self, stream: str, msg: str) -> None:
        self._recorder.log(self._node, stream, msg)

    def mask(self, values: list[str]) -> None:
        self._recorder.masker.add(values)

    def annotate(self, text: str) -> None:
        self._recorder.annotate(self._node, text)

    def mask_text(self, text: str) -> str:
        return self._recorder.masker.text(text)


class Scheduler:
    def __init__(
        self,
        *,
        plan: Plan,
        order: list[str],
        args: Any,
        rc: RunContext,
        recorder: Recorder,
        cache: Cache,
        open_cache: Callable[[], Cache],
        open_secrets: Callable[[], Any],
        parallel: int,
        workdir: Path,
        memo_lease: float = 60.0,
        pause_before: frozenset[str] = frozenset(),
        pause_on_failure: bool = False,
        remote: Dispatcher | None = None,
        reuse: Mapping[str, NodeRecord] | None = None,
        finally_grace: float = FINALLY_GRACE_SECONDS,
    ) -> None:
        self.args = args
        self.rc = rc
        self.rec = recorder
        self.cache = cache
        self.open_cache = open_cache
        self.open_secrets = open_secrets
        self.parallel = max(1, parallel)
        self.workdir = workdir
        self.pause_before = pause_before
        self.pause_on_failure = pause_on_failure
        self.remote = remote  # jobs that run on workers, when some do
        # Jobs not run again: their earlier record (of another run) gives their outcome.
        self.reuse: Mapping[str, NodeRecord] = reuse or {}
        self.finally_grace = finally_grace
        self._closing_at: float | None = None  # when a cancelled run's grace time ends
        self.outputs: dict[str, Any] = {}
        self.artifacts: dict[str, str | None] = {}
        specs = freeze(plan, order)
        self.nodes: dict[str, NodeRun] = {
            s.id: NodeRun(
                s,
                NodeRecord(
                    run_id=rc.run_id,
                    node_id=s.id,
                    needs=list(s.deps),
                    extra={"role": s.role} if s.role != JOB else {},
                ),
            )
            for s in specs
        }
        fns = {s.id: s.fn for s in specs}
        host = JobHost(rc, args, fns, self.outputs, open_secrets, open_cache)
        self.sup = Supervisor(self._handle_items, recorder.masker, host)
        # A failure handler's own failure is reported, yet the run's outcome stays that of
        # the job it handles.
        self.dag = Dag(
            DagNode(
                s.id, s.deps, s.is_optional or s.role == ON_FAILURE, s.continues_on_error, s.role
            )
            for s in specs
        )
        self.memo = MemoCoordinator(recorder.state, cache, rc.run_id, rc.pipeline, memo_lease)
        self.gates = GateWaiter(recorder.state, rc.run_id)
        self._timers: list[tuple[float, str]] = []  # heap of (when, node id)
        self._aborted: str | None = None
        self.denied = False
        now = time.monotonic()
        # A short memo lease needs renewing more often than the run's heartbeat.
        self._memo_every = min(HEARTBEAT_SECONDS, memo_lease / 3)
        self._next_memo_renew = now + self._memo_every
        self._next_heartbeat = now + HEARTBEAT_SECONDS
        # What a command job's environment starts from; taken again after user code ran in
        # this process (it may have set variables), not copied for every job.
        self._base_env = dict(os.environ)

    @property
    def interrupted(self) -> str | None:
        """Why the run is being cancelled as a whole (a signal, an aborted pause), if it is."""
        return self._aborted or self.sup.interrupted

    @property
    def failed_required(self) -> bool:
        return self.dag.failed_required

    # ---------------------------------------------------------------- public entry
    def execute(self) -> str:
        """Run every job to a final outcome; returns the run status."""
        with self.sup:
            try:
                self.rec.nodes_changed([n.record for n in self.nodes.values()])
                self.rec.flush()
                while not self.dag.done:
                    if self.interrupted and self._closing_at is None:
                        self._cancel_everything(self.interrupted)
                        self._closing_at = time.monotonic() + self.finally_grace
                        continue
                    if self._closing_at is not None and time.monotonic() >= self._closing_at:
                        self._end_finally()
                        break
                    # Outcomes go on record before their dependants start, unless a burst of
                    # short jobs is under way (then with the next batch, see _wait_timeout).
                    self._flush_if_due()
                    self._start_ready()
                    self.rec.tick()
                    if self.dag.done:
                        break
                    exits = self.sup.wait(self._wait_timeout())
                    self.rec.mark_time()
                    exits += self._poll_remote()
                    for exited in exits:
                        self._attempt_done(self.nodes[exited.key], exited)
                    self._fire_timers()
            finally:
                self.rec.flush()
        if self.interrupted:
            return "cancelled"
        return "failed" if self.failed_required else "success"

    # ---------------------------------------------------------------- scheduling
    def _start_ready(self) -> None:
        # While a cancelled run closes, only its finally jobs are left to start.
        while len(self.sup) < self.parallel and (
            not self.interrupted or self._closing_at is not None
        ):
            node_id = self.dag.take()
            if node_id is None:
                return
            node = self.nodes[node_id]
            try:
                self._prepare(node)
            except SparkwingError as exc:
                self._finish(node, "failed", str(exc))
            except Exception as exc:  # user code in skip_if / key functions
                self._finish(node, "failed", f"{type(exc).__name__}: {exc}")

    def _context(self, node: NodeRun, sink: Any) -> Context:
        return Context(
            run=self.rc,
            job=node.job.id,
            args=self.args,
            outputs=dict(self.outputs),
            sink=sink,
            attempt=max(1, node.record.attempt),
            failure=self._failure_for(node),
        )

    def _failure_for(self, node: NodeRun) -> Failure | None:
        """What a failure handler handles (its job's failure), or what a finally job should
        know (the run's cancellation, else its first failed job); None for other jobs."""
        role = node.job.role
        if role == ON_FAILURE:
            failed = self.nodes[node.job.deps[0]].record
            return Failure(failed.node_id, "failed", failed.error or "", failed.attempt)
        if role != FINALLY:
            return None
        if self.interrupted:
            return Failure(None, "cancelled", self.interrupted)
        for other in self.nodes.values():
            rec = other.record
            if rec.status == "failed" and not (other.job.is_optional or other.job.role != JOB):
                return Failure(rec.node_id, "failed", rec.error or rec.reason or "", rec.attempt)
        return None

    def _in_engine(self, node: NodeRun, fn: Callable[[Context], Any]) -> Any:
        """Call user code (skip_if, key_fn) in this process with a sink into the node's log."""
        sink = RunnerSink(self.rec, node.job.id)
        cwd = os.getcwd()
        try:
            with running(Runtime(sink, self.open_secrets)):
                return fn(self._context(node, sink))
        finally:
            self._base_env = dict(os.environ)
            # Commands start in the engine's folder (the supervisor knows it): user code
            # that moved elsewhere (or removed the folder it moved to) must not move them.
            try:
                moved = os.getcwd() != cwd
            except OSError:
                moved = True
            if moved:
                os.chdir(cwd)

    def _prepare(self, node: NodeRun) -> None:
        """Decide an active node's next step: a gate, a skip, a memoized result, a wait
        for another memo holder, or an attempt."""
        job = node.job
        earlier = self.reuse.get(job.id)
        if earlier is not None:
            self._reuse(node, earlier)
            return
        if job.approval is not None:
            message = self.rec.masker.text(job.approval.message or f"approve {job.id}?")
            gate = self.gates.prepare(
                job.id, "approval", message, job.approval.timeout_s, None, job.approval.on_expiry
            )
            self._open_gate(node, gate)
            return
        if job.id in self.pause_before and not node.paused_before:
            message = f"paused before {job.id} starts"
            self._open_gate(
                node, self.gates.prepare(job.id, "pause", message, None, {"when": "before"})
            )
            return
        first_look = not node.looked
        node.looked = True
        if job.skip_fn is not None and first_look and self._in_engine(node, job.skip_fn):
            self._finish(node, "skipped", "skip_if returned true")
            return
        if job.memo_fn is not None and not self.memo.is_leader(job.id):
            if node.memo_key is None:
                node.memo_key = self.memo.key(job.id, self._in_engine(node, job.memo_fn))
                node.record.memo_key = node.memo_key
            settled = self.memo.settle(job.id, node.memo_key)
            if settled.state == "cached":
                assert settled.doc is not None
                self._restore_cached(node, settled.doc)
                return
            if settled.state == "held":
                if node.wake_kind != "memo":
                    self.rec.event("memo_wait", job.id, {"holder": settled.holder})
                    self._set_status(node, "running", f"waiting for {settled.holder} (memoize)")
                self._wake(node, "memo", time.monotonic() + MEMO_POLL_SECONDS)
                return
        self._launch(node)

    def _restore_cached(self, node: NodeRun, doc: dict[str, Any]) -> None:
        digest = doc.get("artifacts")
        if digest:
            artifacts.restore(self.cache, digest, self.workdir)
        node.record.output = doc.get("output")
        node.record.artifacts = digest
        node.record.extra["cached_from"] = doc.get("run_id")
        self.outputs[node.job.id] = doc.get("output")
        self.artifacts[node.job.id] = digest
        self._finish(node, "cached", f"memoized result of {doc.get('run_id')}")

    def _reuse(self, node: NodeRun, earlier: NodeRecord) -> None:
        """Take a job's outcome, output and artifacts from its record in an earlier run
        instead of running it (its artifacts restored into the workspace, as a memoized
        result's are)."""
        digest = earlier.artifacts
        if digest:
            artifacts.restore(self.cache, digest, self.workdir)
        node.record.output = earlier.output
        node.record.artifacts = digest
        node.record.extra["reused_from"] = earlier.run_id
        self.outputs[node.job.id] = earlier.output
        self.artifacts[node.job.id] = digest
        if earlier.status == "skipped":
            self._finish(node, "skipped", f"skipped in {earlier.run_id}")
        else:
            self._finish(node, "reused", f"from {earlier.run_id}")

    def _launch(self, node: NodeRun) -> None:
        job = node.job
        node.wake_kind = None
        node.record.attempt += 1
        env = {
            **job.env_vars,
            # Also how recovery recognises this run's processes if the runner dies.
            "SPARKWING_RUN_ID": self.rc.run_id,
            "SPARKWING_PIPELINE": self.rc.pipeline,
            "SPARKWING_JOB": job.id,
        }
        if self.remote is not None and self.remote.wants(job):
            consumed = {dep: self.artifacts.get(dep) for dep in job.consumed}
            outputs = {dep: self.outputs[dep] for dep in job.deps if dep in self.outputs}
            reason = self.remote.start(job, node.record, outputs, consumed, env)
            node.record.started_at = node.record.started_at or self.rec.now()
            self._set_status(node, "running", reason)
            self.rec.event("node_started", job.id, {"attempt": node.record.attempt, "queued": True})
            return
        if isinstance(job.fn, str) and not job.consumed and not job.output_globs:
            # A plain command needs no Python around it: one fork/exec of /bin/sh, its
            # output read and masked here, worded in the log as ctx.sh words it.
            self.rec.log(job.id, "info", self.rec.masker.text(f"$ {job.fn}"))
            shell = ShellLaunch(job.id, job.fn, self._base_env | env, str(self.workdir))
            pid = self.sup.start_shell(job.id, shell, job.timeout_s)
        else:
            pid = self.sup.start(job.id, self._job_launch(node, env), job.timeout_s)
        node.record.started_at = node.record.started_at or self.rec.now()
        # The job's process group id, so `doctor` can end what a dead runner left behind.
        node.record.extra["pgid"] = pid
        self._set_status(node, "running", None)
        self.rec.event("node_started", job.id, {"attempt": node.record.attempt, "pid": pid})

    def _job_launch(self, node: NodeRun, env: dict[str, str]) -> JobLaunch:
        """A Python job process: a callable, or a command with artifacts to move."""
        job = node.job
        consumed = {dep: self.artifacts.get(dep) for dep in job.consumed}
        attempt = max(1, node.record.attempt)
        return JobLaunch(
            job.id,
            env,
            str(self.workdir),
            attempt,
            consumed,
            job.output_globs,
            self._failure_for(node),
        )

    def _handle_items(self, node_id: str, items: list[tuple[str, Any]]) -> None:
        self.rec.mark_time()  # delivered while the loop waits: now, not the turn's start
        masker = self.rec.masker
        for kind, item in items:
            if kind == "line":
                self.rec.log(node_id, "stdout", masker.text(item))
                continue
            if kind == "log":  # a command job's own output: (stream, text)
                self.rec.log(node_id, item[0], masker.text(item[1]))
                continue
            t = item.get("t")
            if t == "log":
                self.rec.log(
                    node_id, str(item.get("s", "info")), masker.text(str(item.get("m", "")))
                )
            elif t == "mask":
                masker.add([str(v) for v in item.get("v", [])])
            elif t == "ann":
                self.rec.annotate(node_id, masker.text(str(item.get("m", ""))))

    def _poll_remote(self) -> list[Exited]:
        """Dispatched attempts that ended; a job a worker took goes on record with it."""
        if self.remote is None:
            return []
        changed, ended = self.remote.poll()
        for record in changed:
            self.rec.node_changed(record)
        for exited in ended:  # what the job annotated on its worker
            for text in ((exited.result or {}).get("extra") or {}).get("annotations", []):
                self.rec.annotate(exited.key, self.rec.masker.text(str(text)))
        return ended

    # ---------------------------------------------------------------- timers
    def _wake(self, node: NodeRun, kind: str, when: float) -> None:
        """Ask for ``node`` to be looked at again at ``when``; replaces its earlier wake."""
        node.wake_at, node.wake_kind = when, kind
        heapq.heappush(self._timers, (when, node.job.id))

    def _wait_timeout(self) -> float:
        """How long the next wait may sleep, after writing out the buffered records when
        they are due. After a quiet spell they go out at once, before the runner waits
        (jobs started go on record with their process groups: a runner killed while it
        sleeps leaves them findable, doctor ends them; an outcome is on record as soon as
        it is known). In a burst of short jobs, flushes are FLUSH_AFTER_SECONDS apart and
        carry many jobs each; no wait outlasts the next one's due time."""
        timeout = self._next_timeout()
        left = self._flush_if_due()
        return timeout if left is None else min(timeout, left)

    def _flush_if_due(self) -> float | None:
        """Write the buffered records if they are due; else how long until they are (None
        when nothing waits)."""
        due = self.rec.flush_due()
        if due is None:
            return None
        left = due - time.monotonic()
        if left <= 0:
            self.rec.flush()
            return None
        return left

    def _next_timeout(self) -> float:
        now = time.monotonic()
        due = min(self._next_heartbeat, self._next_memo_renew)
        if self._closing_at is not None:
            due = min(due, self._closing_at)
        while self._timers and self.nodes[self._timers[0][1]].wake_at != self._timers[0][0]:
            heapq.heappop(self._timers)  # replaced or cancelled since it was pushed
        if self._timers:
            due = min(due, self._timers[0][0])
        remote_due = self.remote.next_timeout(now) if self.remote is not None else None
        if remote_due is not None:
            due = min(due, now + remote_due)
        return min(MAX_TURN_SECONDS, max(0.0, due - now))

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            when, node_id = heapq.heappop(self._timers)
            node = self.nodes[node_id]
            if node.wake_at != when or node.final:
                continue
            node.wake_at = None
            if node.wake_kind == "gate":
                self._poll_gate(node, now)
            else:
                self.dag.requeue(node_id)  # a retry, or a memo holder to ask again
        if now >= self._next_memo_renew:
            self._next_memo_renew = now + self._memo_every
            self.memo.renew()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + HEARTBEAT_SECONDS
            self.rec.heartbeat()

    # ---------------------------------------------------------------- outcomes
    def _attempt_done(self, node: NodeRun, exited: Exited) -> None:
        job = node.job
        result = exited.result
        if self.interrupted and (job.role != FINALLY or self._grace_over()):
            self.memo.release(job.id)
            reason = self.interrupted
            if job.role == FINALLY:
                reason += (
                    f"; not finished within the {format_duration(self.finally_grace)} grace time"
                )
            self._finish(node, "cancelled", reason)
            return
        if result is not None and result.get("ok") and not exited.timed_out:
            output = self.rec.masker.data(result.get("output"))
            node.record.output = output
            node.record.artifacts = result.get("artifacts")
            self.outputs[job.id] = output
            self.artifacts[job.id] = node.record.artifacts
            self.memo.complete(job.id, output, node.record.artifacts, job.memo_ttl)
            self._finish(node, "success", None)
            return
        error = self.rec.masker.text(_attempt_error(job, exited))
        if node.record.attempt <= job.retries:
            delay = job.backoff * (2 ** (node.record.attempt - 1))
            node.record.error = error
            self._set_status(node, "running", f"retrying in {format_duration(delay)}: {error}")
            self.rec.event(
                "node_retry",
                job.id,
                {"attempt": node.record.attempt, "delay_s": delay, "error": error},
            )
            self._wake(node, "retry", time.monotonic() + delay)
            return
        if self.pause_on_failure:
            node.record.error = error
            message = f"{job.id} failed: {error}"  # error is masked already
            self._open_gate(
                node, self.gates.prepare(job.id, "pause", message, None, {"when": "failure"})
            )
            return
        self.memo.release(job.id)
        node.record.error = error
        self._finish(node, "failed", error)

    def _set_status(self, node: NodeRun, status: str, reason: str | None) -> None:
        node.record.status = status
        node.record.reason = reason
        self.rec.node_changed(node.record)

    def _record_final(self, node: NodeRun, status: str, reason: str | None) -> None:
        node.record.finished_at = self.rec.now()
        node.wake_at = node.wake_kind = None
        self._set_status(node, status, reason)
        self.rec.event("node_finished", node.job.id, {"status": status, "reason": reason})

    def _finish(self, node: NodeRun, status: str, reason: str | None) -> None:
        """End a node and every dependant its outcome ends: cancelled by an upstream
        failure, or a failure handler skipped because its job did not fail."""
        self._record_final(node, status, reason)
        self.gates.forget(node.job.id)
        for cancelled in self.dag.finish(node.job.id, status, propagate=not self.interrupted):
            self._record_final(self.nodes[cancelled.id], cancelled.status, cancelled.reason)

    def _cancel_everything(self, reason: str) -> None:
        """End every job but the finally ones, which then run (see ``_end_finally``). A
        finally job already running has nothing else running beside it: it goes on."""
        remote = self.remote.cancel_all(reason) if self.remote is not None else []
        for exited in remote:
            self._attempt_done(self.nodes[exited.key], exited)
        if not any(
            n.job.role == FINALLY and n.record.status == "running" for n in self.nodes.values()
        ):
            for exited in self.sup.terminate_all():
                self._attempt_done(self.nodes[exited.key], exited)
        for node_id in self.dag.unfinished(keep_finally=True):
            node = self.nodes[node_id]
            self.memo.release(node_id)
            self._finish(node, "cancelled", reason)

    def _grace_over(self) -> bool:
        return self._closing_at is not None and time.monotonic() >= self._closing_at

    def _end_finally(self) -> None:
        """The cancelled run's grace time is over: its finally jobs still going end too."""
        for exited in self.sup.terminate_all():
            self._attempt_done(self.nodes[exited.key], exited)
        grace = format_duration(self.finally_grace)
        reason = f"{self.interrupted}; not started within the {grace} grace time"
        for node_id in self.dag.unfinished():
            node = self.nodes[node_id]
            self.memo.release(node_id)
            self._finish(node, "cancelled", reason)

    # ---------------------------------------------------------------- human gates
    def _open_gate(self, node: NodeRun, gate: Gate) -> None:
        """Park the node at ``gate`` (an approval or a pause, its message masked) until
        someone resolves it, from any machine sharing the state surface; the run keeps
        heartbeating meanwhile."""
        status, reason = self.gates.status_of(gate)
        opened = {"kind": gate.kind, "message": gate.message, "expires_at": gate.expires_at}
        node.record.extra["gate"] = dict(opened)
        self._set_status(node, status, reason)
        self.rec.event("gate_opened", node.job.id, opened)
        # The node's status is written before the gate exists: whoever finds the gate
        # also finds the run saying what it waits for.
        self.rec.flush()
        self.gates.open(gate)
        self._wake(node, "gate", time.monotonic() + GATE_POLL_SECONDS)

    def _poll_gate(self, node: NodeRun, now: float) -> None:
        gate = self.gates.poll(node.job.id, now)
        if gate is None:
            self._wake(node, "gate", now + GATE_POLL_SECONDS)
            return
        self._gate_resolved(node, gate)

    def _gate_resolved(self, node: NodeRun, gate: Gate) -> None:
        job = node.job
        by = gate.resolved_by or "someone"
        note = f": {gate.comment}" if gate.comment else ""
        node.record.extra["gate"] = gate.to_dict()
        self.rec.event(
            "gate_resolved",
            job.id,
            {"kind": gate.kind, "status": gate.status, "by": by, "comment": gate.comment},
        )
        if gate.status == "approved":
            node.record.output = {
                "approved_by": by,
                "comment": gate.comment,
                "at": gate.resolved_at,
            }
            self.outputs[job.id] = node.record.output
            self._finish(node, "success", f"approved by {by}{note}")
        elif gate.status == "denied":
            node.record.error = f"denied by {by}{note}"
            # A denial fails the run even when the approval job is optional.
            self.dag.failed_required = True
            self.denied = True
            self._finish(node, "failed", "denied")
        elif gate.status == "expired":
            node.record.error = "approval expired without a decision"
            self._finish(node, "failed", "approval expired")
        elif gate.status == "resumed":
            node.paused_before = True
            if gate.extra.get("when") == "failure":
                node.record.error = None
            self._set_status(node, "pending", f"resumed by {by}{note}")
            self.dag.requeue(job.id)
        else:  # aborted
            self._aborted = f"aborted at the pause of {job.id} by {by}{note}"


def _attempt_error(job: JobSpec, exited: Exited) -> str:
    """Why an attempt failed, in one line."""
    if exited.timed_out:
        return f"timed out after {format_duration(job.timeout_s or 0)}"
    if exited.result is not None:
        return str(exited.result.get("error") or "job failed")
    status = exited.status
    if os.WIFSIGNALED(status):
        return f"job process killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    return (
        f"job process exited with code {os.waitstatus_to_exitcode(status)} "
        "without reporting a result"
    )
