"""The runner's side of dispatched jobs: which jobs go to workers (a label this machine
lacks, or ``--sw-dispatch``), queueing an attempt with everything a worker needs, and
turning what the queue says back into the scheduler's terms: an attempt that ended (as a
local process's exit would), or a job a worker took. The runner enforces timeouts (it asks
the worker to stop, and stops waiting) and cancels what it queued when the run is cancelled.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkwing import _log
from sparkwing.engine.jobspec import JobSpec
from sparkwing.engine.supervisor import Exited
from sparkwing.errors import StorageError
from sparkwing.surfaces.state.base import NodeRecord

if TYPE_CHECKING:
    from sparkwing.surfaces.state.jobqueue import JobEntry, JobQueue, JobRef

log = _log.get("sparkwing.engine")

# What a queued job's spec holds; a worker refuses a version it does not know.
JOB_SPEC_VERSION = 1
# How often the runner reads its run's entries while jobs are out.
POLL_SECONDS = 0.2


def local_labels(flag_labels: list[str] | tuple[str, ...], env: Mapping[str, str]) -> list[str]:
    """The labels of the machine running a run: ``--sw-label`` values and ``SPARKWING_LABELS``
    (set by a worker for the runs it starts, or by whoever starts ``sparkwing run``)."""
    raw = env.get("SPARKWING_LABELS", "")
    return sorted({*flag_labels, *(p for p in raw.replace(",", " ").split() if p)})


def needs_dispatch(job: JobSpec, labels: list[str], dispatch_all: bool) -> bool:
    if job.approval is not None:
        return False
    if dispatch_all:
        return True
    if not job.labels:  # runs anywhere: no need to load the job queue's module to say so
        return False
    from sparkwing.surfaces.state.jobqueue import labels_fit

    return not labels_fit(list(job.labels), labels)


@dataclass
class _Out:
    """An attempt in the queue: its node's record, and when the runner stops waiting."""

    ref: JobRef
    record: NodeRecord
    timeout_s: float | None
    deadline: float | None = None
    worker: str | None = None


class Dispatcher:
    """One run's dispatched jobs. ``base`` is the part of every job's spec the run shares
    (bundle key, pipeline, arguments, run facts)."""

    def __init__(
        self,
        jobs: JobQueue,
        run_id: str,
        base: dict[str, Any],
        *,
        labels: list[str],
        dispatch_all: bool,
    ) -> None:
        self.jobs = jobs
        self.run_id = run_id
        self.base = base
        self.labels = labels
        self.dispatch_all = dispatch_all
        self.out: dict[str, _Out] = {}
        self._next_poll = 0.0

    def __len__(self) -> int:
        return len(self.out)

    def wants(self, job: JobSpec) -> bool:
        return needs_dispatch(job, self.labels, self.dispatch_all)

    def start(
        self,
        job: JobSpec,
        record: NodeRecord,
        outputs: dict[str, Any],
        consumed: dict[str, str | None],
        env: dict[str, str],
    ) -> str:
        """Queue the record's current attempt; returns the reason its node shows meanwhile."""
        from sparkwing.surfaces.state.jobqueue import JobRef, QueuedJob

        ref = JobRef(self.run_id, job.id, record.attempt)
        spec = {
            **self.base,
            "version": JOB_SPEC_VERSION,
            "inputs": {"outputs": outputs, "consumed": consumed},
            "env": env,
        }
        self.jobs.enqueue(QueuedJob(ref, list(job.labels), spec))
        self.out[job.id] = _Out(ref, record, job.timeout_s)
        record.extra["dispatched"] = True
        record.extra.pop("worker", None)
        return waiting_reason(list(job.labels))

    def next_timeout(self, now: float) -> float | None:
        """Seconds until the queue is due to be read again (None: nothing is out)."""
        if not self.out:
            return None
        return max(0.0, self._next_poll - now)

    def poll(self, *, force: bool = False) -> tuple[list[NodeRecord], list[Exited]]:
        """Read the queue (when due): records whose worker changed, attempts that ended."""
        now = time.monotonic()
        if not self.out or (now < self._next_poll and not force):
            return [], []
        self._next_poll = now + POLL_SECONDS
        try:
            entries = self.jobs.entries(self.run_id)
        except StorageError as exc:
            # Asked again at the next poll: the jobs go on meanwhile, on their workers.
            log.warning("run %s: could not read its dispatched jobs: %s", self.run_id, exc)
            return [], []
        found = {e.ref.node_id: e for e in entries if self._current(e)}
        changed: list[NodeRecord] = []
        ended: list[Exited] = []
        for node_id, out in list(self.out.items()):
            entry = found.get(node_id)
            if entry is None:
                continue
            if entry.worker and entry.worker != out.worker:
                out.worker = entry.worker
                out.record.extra["worker"] = entry.worker
                out.record.reason = f"on worker {entry.worker}"
                if out.timeout_s and out.deadline is None:
                    out.deadline = now + out.timeout_s
                changed.append(out.record)
            if entry.state == "done" and entry.result is not None:
                del self.out[node_id]
                ended.append(_exited(node_id, entry.result))
            elif out.deadline is not None and now >= out.deadline:
                # As a local attempt is killed at its timeout: the worker stops it when it
                # next renews its lease; the run does not wait for that.
                self._ask_to_stop(out, "timed out")
                del self.out[node_id]
                ended.append(Exited(node_id, 0, None, timed_out=True))
        return changed, ended

    def _current(self, entry: JobEntry) -> bool:
        out = self.out.get(entry.ref.node_id)
        return out is not None and out.ref == entry.ref

    def _ask_to_stop(self, out: _Out, reason: str) -> None:
        try:
            self.jobs.cancel(out.ref, reason)
        except StorageError as exc:  # the attempt still ends for the run; its job runs on
            log.warning("run %s: could not cancel job %s: %s", self.run_id, out.ref.node_id, exc)

    def cancel_all(self, reason: str) -> list[Exited]:
        """Ask every queued or running attempt to stop; they end (for the run) now."""
        ended = []
        for node_id, out in self.out.items():
            self._ask_to_stop(out, reason)
            ended.append(Exited(node_id, 0, {"ok": False, "error": reason}, timed_out=False))
        self.out.clear()
        return ended


def waiting_reason(labels: list[str]) -> str:
    if labels:
        return f"queued for a worker with labels {', '.join(labels)}"
    return "queued for a worker"


def _exited(node_id: str, result: dict[str, Any]) -> Exited:
    """A worker's JobResult as the exit of the attempt."""
    if result.get("status") == "success":
        message = {"ok": True, "output": result.get("output"), "artifacts": result.get("artifacts")}
    else:
        message = {"ok": False, "error": result.get("error") or f"job {result.get('status')}"}
    message["extra"] = result.get("extra") or {}
    return Exited(node_id, 0, message, timed_out=False)


def run_base(spec: Any, rc: Any) -> dict[str, Any]:
    """The part of a job's spec every job of the run shares, from its RunSpec and context."""
    return {
        "pipeline": spec.pipeline,
        "bundle": {
            "key": (spec.bundle or {}).get("key"),
            "digest": (spec.bundle or {}).get("digest"),
        },
        "entrypoint": spec.entrypoint,
        "yaml_names": list(spec.yaml_names),
        "cli_args": list(spec.cli_args),
        "yaml_args": dict(spec.yaml_args),
        "default_args": dict(spec.default_args),
        "run": {
            "git": rc.git.to_dict(),
            "trigger": spec.trigger,
            "profile": spec.profile_name,
        },
    }


def make_dispatcher(
    spec: Any, rc: Any, state: Any, jobs: list[JobSpec], cache: Callable[[], Any] | None = None
) -> Dispatcher | None:
    """The run's dispatcher, or None when every job runs here; a PlanError when some job
    must go to a worker and the state store has no job queue (or the run no bundle, or its
    code cannot be sent).

    The jobs take the run's code with them as ``runs submit`` sends it: the checkout's
    commit when it is clean and on its origin, else a snapshot uploaded to ``cache`` once."""
    labels = local_labels(list(spec.labels), os.environ)
    going = [j for j in jobs if needs_dispatch(j, labels, spec.dispatch)]
    if not going:
        return None
    # Only a run some of whose jobs travel needs these (tarfile, git, subprocess).
    from pathlib import Path

    from sparkwing.errors import PlanError
    from sparkwing.source.deliver import deliver
    from sparkwing.source.mirror import SourceError

    first = going[0]
    if spec.dispatch:
        why = "--sw-dispatch sends every job to a worker"
    else:
        has = ", ".join(labels) or "none"
        why = (
            f'job "{first.id}" requires {", ".join(first.labels)}, which this machine lacks '
            f"(its labels: {has}; add some with --sw-label or SPARKWING_LABELS)"
        )
    jobs_queue = state.jobs
    if jobs_queue is None:
        raise PlanError(
            f"{why}, but {state.describe()} cannot dispatch jobs to workers: "
            "use sqlite, postgres or controller state"
        )
    if not (spec.bundle or {}).get("key"):
        raise PlanError(f"{why}, and a worker needs the pipeline's bundle, which this run has not")
    base = run_base(spec, rc)
    try:
        base["source"] = deliver(Path(spec.root), repo=None, ref=None, cache=cache).source
    except SourceError as exc:
        raise PlanError(f"{why}, but the run's code cannot be sent to workers: {exc}") from None
    return Dispatcher(jobs_queue, spec.run_id, base, labels=labels, dispatch_all=spec.dispatch)
