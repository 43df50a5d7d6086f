"""The DAG scheduler: starts ready jobs up to the parallelism limit, supervises their
processes (timeouts, retries, cancellation) and records every transition.

It runs single-threaded around one selector, so forking job processes is safe and the
ordering of records is the ordering of what happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparkwing.engine import memo as memo_mod
from sparkwing.engine.clock import now_iso
from sparkwing.engine.jobproc import JobLaunch, fork_job
from sparkwing.engine.protocol import LineSplitter
from sparkwing.engine.recorder import Recorder
from sparkwing.errors import GateResolvedError, SparkwingError
from sparkwing.sdk.context import Context, RunContext
from sparkwing.sdk.durations import format_duration
from sparkwing.sdk.plan import Job, Plan
from sparkwing.sdk.runtime import Runtime, running
from sparkwing.status import FINAL_NODE_STATUSES
from sparkwing.surfaces.cache.base import Cache
from sparkwing.surfaces.state.base import Gate, NodeRecord, require_gates

HEARTBEAT_SECONDS = 5.0
KILL_GRACE_SECONDS = 2.0
MEMO_POLL_SECONDS = 0.25
GATE_POLL_SECONDS = 0.5
# What an approval that times out becomes, per on_expiry.
EXPIRY_RESOLUTION = {"fail": "expired", "deny": "denied", "approve": "approved"}


@dataclass
class NodeRun:
    job: Job
    record: NodeRecord
    waiting_on: set[str]
    dependants: list[str] = field(default_factory=list)
    pid: int | None = None
    fd: int | None = None
    pidfd: int | None = None
    splitter: LineSplitter = field(default_factory=LineSplitter)
    result: dict[str, Any] | None = None
    deadline: float | None = None
    timed_out: bool = False
    started: float = 0.0
    retry_at: float | None = None
    memo_key: str | None = None
    memo_leader: bool = False
    memo_poll_at: float | None = None
    gate_kind: str | None = None  # the gate this node waits at (approval / pause)
    gate_poll_at: float | None = None
    gate_deadline: float | None = None
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


class Interrupted(Exception):
    pass


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
    ) -> None:
        self.plan = plan
        self.args = args
        self.rc = rc
        self.rec = recorder
        self.cache = cache
        self.open_cache = open_cache
        self.open_secrets = open_secrets
        self.parallel = max(1, parallel)
        self.workdir = workdir
        self.memo_lease = memo_lease
        self.pause_before = pause_before
        self.pause_on_failure = pause_on_failure
        self.outputs: dict[str, Any] = {}
        self.artifacts: dict[str, str | None] = {}
        self.nodes: dict[str, NodeRun] = {}
        for job_id in order:
            job = plan.jobs[job_id]
            rec = NodeRecord(run_id=rc.run_id, node_id=job_id, needs=list(job.deps))
            self.nodes[job_id] = NodeRun(job, rec, set(job.deps))
        for node in self.nodes.values():
            for dep in node.job.deps:
                self.nodes[dep].dependants.append(node.job.id)
        self.ready: deque[str] = deque(j for j in order if not self.nodes[j].waiting_on)
        self.running: dict[int, NodeRun] = {}  # by pipe fd
        self.sel = selectors.DefaultSelector()
        self.interrupted: str | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._next_heartbeat = time.monotonic() + min(HEARTBEAT_SECONDS, memo_lease / 3)
        self._next_run_heartbeat = time.monotonic() + HEARTBEAT_SECONDS
        self.failed_required = False
        self.denied = False
        self._parent = os.getppid()

    # ---------------------------------------------------------------- public entry
    def execute(self) -> str:
        """Run every job to a final outcome; returns the run status."""
        old = self._install_signals()
        try:
            self.rec.nodes_changed([n.record for n in self.nodes.values()])
            self.rec.flush()
            while not all(n.final for n in self.nodes.values()):
                if self.interrupted:
                    self._cancel_everything(self.interrupted)
                    break
                self._start_ready()
                if all(n.final for n in self.nodes.values()):
                    break
                self._wait(self._next_timeout())
                self._timers()
                self.rec.flush()
                self.rec.tick()
        finally:
            self._restore_signals(old)
            self.rec.flush()
            self.sel.close()
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self.interrupted:
            return "cancelled"
        return "failed" if self.failed_required else "success"

    # ---------------------------------------------------------------- signals
    def _install_signals(self) -> dict[int, Any]:
        old: dict[int, Any] = {}

        def handler(signum: int, _frame: Any) -> None:
            if self.interrupted is None:
                if signum == signal.SIGTERM and os.getppid() != self._parent:
                    self.interrupted = "the sparkwing process that started this run died"
                else:
                    self.interrupted = f"interrupted by {signal.Signals(signum).name}"

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            old[sig] = signal.signal(sig, handler)
        old[-1] = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        self.sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        return old

    def _restore_signals(self, old: dict[int, Any]) -> None:
        signal.set_wakeup_fd(old.pop(-1))
        for sig, prev in old.items():
            signal.signal(sig, prev)

    # ---------------------------------------------------------------- scheduling
    def _start_ready(self) -> None:
        while self.ready and len(self.running) < self.parallel and not self.interrupted:
            node = self.nodes[self.ready.popleft()]
            if node.final:
                continue
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
        )

    def _in_engine(self, node: NodeRun, fn: Callable[[Context], Any]) -> Any:
        """Call user code (skip_if, key_fn) in this process with a sink into the node's log."""
        sink = RunnerSink(self.rec, node.job.id)
        with running(Runtime(sink, self.open_secrets)):
            return fn(self._context(node, sink))

    def _prepare(self, node: NodeRun) -> None:
        job = node.job
        first_look = node.memo_poll_at is None and node.record.attempt == 0
        if job.approval is not None:
            self._open_gate(
                node,
                "approval",
                job.approval.message or f"approve {job.id}?",
                job.approval.timeout_s,
            )
            return
        if job.id in self.pause_before and not node.paused_before:
            self._open_gate(
                node, "pause", f"paused before {job.id} starts", None, {"when": "before"}
            )
            return
        if job.skip_fn is not None and first_look and self._in_engine(node, job.skip_fn):
            self._finish(node, "skipped", "skip_if returned true")
            return
        if job.memo_fn is not None and not node.memo_leader:
            if node.memo_key is None:
                user_key = self._in_engine(node, job.memo_fn)
                node.memo_key = memo_mod.full_key(self.rc.pipeline, job.id, user_key)
                node.record.memo_key = node.memo_key
            if self._try_memo(node):
                return
        self._launch(node)

    def _try_memo(self, node: NodeRun) -> bool:
        """True if the node is settled (cached) or parked waiting for another holder."""
        assert node.memo_key is not None
        holder = f"{self.rc.run_id}/{node.job.id}"
        for _ in range(3):
            doc = memo_mod.load(self.cache, node.memo_key)
            if doc is not None:
                self._restore_cached(node, doc)
                return True
            claim = self.rec.state.memo.acquire(node.memo_key, holder, self.memo_lease)
            if claim.state == "leader":
                node.memo_leader = True
                node.memo_poll_at = None
                return False
            if claim.state == "held":
                if node.memo_poll_at is None:
                    self.rec.event("memo_wait", node.job.id, {"holder": claim.holder})
                    self._set_status(node, "running", f"waiting for {claim.holder} (memoize)")
                node.memo_poll_at = time.monotonic() + MEMO_POLL_SECONDS
                return True
            # done: the result document is missing or expired; let the key be recomputed.
            self.rec.state.memo.forget(node.memo_key)
        node.memo_leader = False
        raise SparkwingError(f'job "{node.job.id}": could not settle memoize key')

    def _restore_cached(self, node: NodeRun, doc: dict[str, Any]) -> None:
        digest = doc.get("artifacts")
        if digest:
            from sparkwing.surfaces.cache.content import restore_manifest

            restore_manifest(self.cache, digest, self.workdir)
        node.record.output = doc.get("output")
        node.record.artifacts = digest
        node.record.extra["cached_from"] = doc.get("run_id")
        self.outputs[node.job.id] = doc.get("output")
        self.artifacts[node.job.id] = digest
        self._finish(node, "cached", f"memoized result of {doc.get('run_id')}")

    def _launch(self, node: NodeRun) -> None:
        job = node.job
        node.record.attempt += 1
        node.result = None
        node.timed_out = False
        consumed = {dep: self.artifacts.get(dep) for dep in job.consumed}
        launch = JobLaunch(
            job_id=job.id,
            fn=job.fn,
            context=lambda sink: self._context(node, sink),
            env={
                **job.env_vars,
                # Also how recovery recognises this run's processes if the runner dies.
                "SPARKWING_RUN_ID": self.rc.run_id,
                "SPARKWING_PIPELINE": self.rc.pipeline,
                "SPARKWING_JOB": job.id,
            },
            workdir=str(self.workdir),
            open_secrets=self.open_secrets,
            before=_restorer(self.open_cache, consumed, self.workdir) if consumed else None,
            after=_uploader(self.open_cache, job.output_globs, self.workdir)
            if job.output_globs
            else None,
        )
        pid, fd = fork_job(launch, self.rec.masker)
        os.set_blocking(fd, False)
        node.pid, node.fd = pid, fd
        node.started = time.monotonic()
        node.deadline = node.started + job.timeout_s if job.timeout_s else None
        node.splitter = LineSplitter()
        self.running[fd] = node
        self.sel.register(fd, selectors.EVENT_READ, ("pipe", node))
        try:
            node.pidfd = os.pidfd_open(pid)
            self.sel.register(node.pidfd, selectors.EVENT_READ, ("exit", node))
        except (AttributeError, OSError):
            node.pidfd = None
        node.record.started_at = node.record.started_at or now_iso()
        # The job's process group id, so `doctor` can end what a dead runner left behind.
        node.record.extra["pgid"] = pid
        self._set_status(node, "running", None)
        self.rec.event("node_started", job.id, {"attempt": node.record.attempt, "pid": pid})

    # ---------------------------------------------------------------- waiting
    def _next_timeout(self) -> float:
        now = time.monotonic()
        times = [self._next_heartbeat]
        for node in self.nodes.values():
            for t in (node.deadline, node.retry_at, node.memo_poll_at, node.gate_poll_at):
                if t is not None and not node.final:
                    times.append(t)
        # Wake at least every half second so a live display can update its clock.
        timeout = min(0.5, max(0.0, min(times) - now))
        if any(n.pidfd is None for n in self.running.values()):
            timeout = min(timeout, 0.05)  # no pidfd: poll for exits
        return timeout

    def _wait(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            kind, node = key.data
            if kind == "wake":
                with contextlib.suppress(OSError):
                    while os.read(self._wake_r, 512):
                        pass
            elif node.fd is None:
                continue  # reaped earlier in this same batch of events
            elif kind == "pipe":
                self._read_pipe(node)
            elif kind == "exit":
                self._reap(node)
        for node in list(self.running.values()):
            if node.pidfd is None:
                self._reap(node, block=False)

    def _read_pipe(self, node: NodeRun) -> bool:
        """Read what is available; False at end of file."""
        assert node.fd is not None
        while True:
            try:
                chunk = os.read(node.fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                return False
            self._handle_items(node, node.splitter.feed(chunk))

    def _handle_items(self, node: NodeRun, items: list[tuple[str, Any]]) -> None:
        node_id = node.job.id
        for kind, item in items:
            if kind == "line":
                self.rec.log(node_id, "stdout", self.rec.masker.text(item))
                continue
            t = item.get("t")
            if t == "log":
                self.rec.log(
                    node_id,
                    str(item.get("s", "info")),
                    self.rec.masker.text(str(item.get("m", ""))),
                )
            elif t == "mask":
                self.rec.masker.add([str(v) for v in item.get("v", [])])
            elif t == "ann":
                self.rec.annotate(node_id, self.rec.masker.text(str(item.get("m", ""))))
            elif t == "result":
                node.result = item

    def _reap(self, node: NodeRun, block: bool = True) -> None:
        assert node.pid is not None
        try:
            pid, status = os.waitpid(node.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            pid, status = node.pid, 0
        if pid == 0:
            return
        # Drain whatever the job wrote before it exited, then end its process group so a
        # command it left in the background cannot outlive the job.
        self._read_pipe(node)
        self._handle_items(node, node.splitter.finish())
        with contextlib.suppress(OSError):
            os.killpg(node.pid, signal.SIGKILL)
        self._detach(node)
        self._attempt_done(node, status)

    def _detach(self, node: NodeRun) -> None:
        if node.fd is not None:
            self.running.pop(node.fd, None)
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(node.fd)
            os.close(node.fd)
        if node.pidfd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(node.pidfd)
            os.close(node.pidfd)
        node.fd = node.pidfd = node.pid = None
        node.deadline = None

    # ---------------------------------------------------------------- outcomes
    def _attempt_done(self, node: NodeRun, status: int) -> None:
        job = node.job
        result = node.result
        if self.interrupted:
            self._finish(node, "cancelled", self.interrupted)
            return
        if result is not None and result.get("ok") and not node.timed_out:
            output = self.rec.masker.data(result.get("output"))
            node.record.output = output
            node.record.artifacts = result.get("artifacts")
            self.outputs[job.id] = output
            self.artifacts[job.id] = node.record.artifacts
            if node.memo_leader and node.memo_key:
                memo_mod.store(
                    self.cache,
                    node.memo_key,
                    {
                        "pipeline": self.rc.pipeline,
                        "job": job.id,
                        "run_id": self.rc.run_id,
                        "output": output,
                        "artifacts": node.record.artifacts,
                    },
                    job.memo_ttl,
                )
                self.rec.state.memo.complete(
                    node.memo_key, f"{self.rc.run_id}/{job.id}", f"memo/{node.memo_key}"
                )
                node.memo_leader = False
            self._finish(node, "success", None)
            return
        if node.timed_out:
            error = f"timed out after {format_duration(job.timeout_s or 0)}"
        elif result is not None:
            error = str(result.get("error") or "job failed")
        elif os.WIFSIGNALED(status):
            error = f"job process killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
        else:
            error = (
                f"job process exited with code {os.waitstatus_to_exitcode(status)} "
                "without reporting a result"
            )
        error = self.rec.masker.text(error)
        if node.record.attempt <= job.retries:
            delay = job.backoff * (2 ** (node.record.attempt - 1))
            node.retry_at = time.monotonic() + delay
            node.record.error = error
            self._set_status(node, "running", f"retrying in {format_duration(delay)}: {error}")
            self.rec.event(
                "node_retry",
                job.id,
                {"attempt": node.record.attempt, "delay_s": delay, "error": error},
            )
            return
        if self.pause_on_failure:
            node.record.error = error
            self._open_gate(node, "pause", f"{job.id} failed: {error}", None, {"when": "failure"})
            return
        if node.memo_leader and node.memo_key:
            self.rec.state.memo.release(node.memo_key, f"{self.rc.run_id}/{job.id}")
            node.memo_leader = False
        node.record.error = error
        self._finish(node, "failed", error)

    def _set_status(self, node: NodeRun, status: str, reason: str | None) -> None:
        node.record.status = status
        node.record.reason = reason
        self.rec.node_changed(node.record)

    def _finish(self, node: NodeRun, status: str, reason: str | None) -> None:
        node.record.finished_at = now_iso()
        node.retry_at = node.memo_poll_at = node.gate_poll_at = None
        node.gate_kind = None
        self._set_status(node, status, reason)
        self.rec.event("node_finished", node.job.id, {"status": status, "reason": reason})
        job = node.job
        failed = status in ("failed", "cancelled")
        if status == "failed" and not job.is_optional:
            self.failed_required = True
        blocks = failed and not (status == "failed" and (job.is_optional or job.continues_on_error))
        for dep_id in node.dependants:
            dependant = self.nodes[dep_id]
            if dependant.final or self.interrupted:
                continue
            if blocks:
                self._finish(dependant, "cancelled", f"upstream-failed: {job.id} {status}")
                continue
            dependant.waiting_on.discard(job.id)
            if not dependant.waiting_on:
                self.ready.append(dep_id)

    # ---------------------------------------------------------------- timers
    def _timers(self) -> None:
        now = time.monotonic()
        for node in self.nodes.values():
            if node.final:
                continue
            if node.deadline is not None and now >= node.deadline and node.pid is not None:
                node.timed_out = True
                node.deadline = None
                with contextlib.suppress(OSError):
                    os.killpg(node.pid, signal.SIGKILL)
            if node.retry_at is not None and now >= node.retry_at:
                node.retry_at = None
                self.ready.append(node.job.id)
            if node.gate_poll_at is not None and now >= node.gate_poll_at:
                self._poll_gate(node, now)
            if node.memo_poll_at is not None and now >= node.memo_poll_at:
                node.memo_poll_at = now + 3600  # parked until _prepare re-polls it
                self.ready.append(node.job.id)
        if now >= self._next_heartbeat:
            # A short memo lease needs renewing more often than the run's heartbeat.
            self._next_heartbeat = now + min(HEARTBEAT_SECONDS, self.memo_lease / 3)
            if now >= self._next_run_heartbeat:
                self._next_run_heartbeat = now + HEARTBEAT_SECONDS
                self.rec.heartbeat()
            holder_prefix = self.rc.run_id + "/"
            for node in self.nodes.values():
                if node.memo_leader and node.memo_key:
                    self.rec.state.memo.renew(
                        node.memo_key, holder_prefix + node.job.id, self.memo_lease
                    )

    # ---------------------------------------------------------------- human gates
    def _open_gate(
        self,
        node: NodeRun,
        kind: str,
        message: str,
        timeout_s: float | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Park the node at an approval or a pause until someone resolves it (any machine
        sharing the state surface); the run keeps heartbeating meanwhile."""
        from datetime import UTC, datetime, timedelta

        expires = None
        if timeout_s is not None:
            expires = (datetime.now(UTC) + timedelta(seconds=timeout_s)).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )
            node.gate_deadline = time.monotonic() + timeout_s
        message = self.rec.masker.text(message)
        gate = Gate(
            run_id=self.rc.run_id,
            node_id=node.job.id,
            kind=kind,
            message=message,
            created_at=now_iso(),
            expires_at=expires,
            extra=extra or {},
        )
        node.gate_kind = kind
        node.gate_poll_at = time.monotonic() + GATE_POLL_SECONDS
        hint = f"--run {self.rc.run_id} --node {node.job.id}"
        if kind == "approval":
            status = "approval_pending"
            reason = f"waiting for approval: {message} (sparkwing runs approvals approve {hint})"
        else:
            status = "paused"
            reason = f"{message} (sparkwing runs resume {hint})"
        node.record.extra["gate"] = {"kind": kind, "message": message, "expires_at": expires}
        self._set_status(node, status, reason)
        self.rec.event(
            "gate_opened", node.job.id, {"kind": kind, "message": message, "expires_at": expires}
        )
        # The node's status is written before the gate exists: whoever finds the gate
        # also finds the run saying what it waits for.
        self.rec.flush()
        require_gates(self.rec.state).open(gate)

    def _poll_gate(self, node: NodeRun, now: float) -> None:
        assert node.gate_kind is not None
        node.gate_poll_at = now + GATE_POLL_SECONDS
        gate = require_gates(self.rec.state).get(self.rc.run_id, node.job.id, node.gate_kind)
        if gate is None:
            return
        if gate.status == "pending":
            if node.gate_deadline is None or now < node.gate_deadline:
                return
            approval = node.job.approval
            resolution = EXPIRY_RESOLUTION[approval.on_expiry if approval else "fail"]
            try:
                gate = require_gates(self.rec.state).resolve(
                    self.rc.run_id,
                    node.job.id,
                    gate.kind,
                    resolution,
                    "sparkwing (timed out)",
                    f"no decision within the timeout ({resolution})",
                )
            except GateResolvedError:
                resolved = require_gates(self.rec.state).get(self.rc.run_id, node.job.id, gate.kind)
                if resolved is None:
                    return
                gate = resolved
        self._gate_resolved(node, gate)

    def _gate_resolved(self, node: NodeRun, gate: Gate) -> None:
        job = node.job
        node.gate_poll_at = node.gate_deadline = None
        node.gate_kind = None
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
            self.failed_required = True
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
            self.ready.append(job.id)
        else:  # aborted
            self.interrupted = f"aborted at the pause of {job.id} by {by}{note}"

    def _cancel_everything(self, reason: str) -> None:
        for node in list(self.running.values()):
            with contextlib.suppress(OSError):
                os.killpg(node.pid or 0, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE_SECONDS
        while self.running and time.monotonic() < deadline:
            self._wait(0.05)
        for node in list(self.running.values()):
            with contextlib.suppress(OSError):
                os.killpg(node.pid or 0, signal.SIGKILL)
            self._reap(node)
        for node in self.nodes.values():
            if not node.final:
                if node.memo_leader and node.memo_key:
                    self.rec.state.memo.release(node.memo_key, f"{self.rc.run_id}/{node.job.id}")
                self._finish(node, "cancelled", reason)


def _restorer(
    open_cache: Callable[[], Cache], consumed: dict[str, str | None], workdir: Path
) -> Callable[[Context], None]:
    def restore(ctx: Context) -> None:
        from sparkwing.surfaces.cache.content import restore_manifest

        cache = open_cache()
        for dep, digest in consumed.items():
            if digest:
                count = restore_manifest(cache, digest, workdir)
                ctx.log.info(f"restored {count} artifact file(s) from {dep}")

    return restore


def _uploader(
    open_cache: Callable[[], Cache], globs: list[str], workdir: Path
) -> Callable[[Context], str | None]:
    def upload(ctx: Context) -> str | None:
        from sparkwing.surfaces.cache.content import upload_outputs

        digest = upload_outputs(open_cache(), workdir, globs)
        if digest is None:
            ctx.log.warn(f"outputs({', '.join(map(json.dumps, globs))}) matched no files")
        return digest

    return upload
