"""The job worker: claims jobs dispatched to this machine's labels from the state's job
queue, starts each through a launcher in a workspace of its own under
``$SPARKWING_HOME/work/jobs/``, renews each claim while it runs (stopping a job whose runner
asked for a cancel, dropping one whose claim another worker took), and completes it with
its result. ``sparkwing worker`` runs one beside its run worker (:func:`serving_jobs`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkwing import _log
from sparkwing.engine.dispatch import JOB_SPEC_VERSION
from sparkwing.engine.launcher import JobStart, Launched, Launcher, LocalProcessLauncher
from sparkwing.surfaces.state.jobqueue import JobClaim, JobQueue, JobResult

if TYPE_CHECKING:
    from sparkwing.conf.resolved import ResolvedProfile

log = _log.get("sparkwing.engine")

IDLE_POLL_SECONDS = 0.2
TURN_SECONDS = 0.05
# The surfaces a job reads its inputs from and writes its results to.
JOB_SURFACES = ("cache", "logs", "secrets")

Say = Callable[[str], None]


def labels_from_env(env: dict[str, str] | None = None) -> list[str]:
    """The labels ``SPARKWING_LABELS`` gives (comma or space separated)."""
    raw = (env if env is not None else os.environ).get("SPARKWING_LABELS", "")
    return sorted({part for part in raw.replace(",", " ").split() if part})


def jobs_home() -> Path:
    from sparkwing.paths import local_dir

    return local_dir() / "work" / "jobs"


@dataclass
class _Active:
    claim: JobClaim
    launched: Launched
    workspace: Path
    renew_at: float
    stopping: bool = False


class JobWorker:
    """Drive it with :meth:`serve` until :meth:`stop`, or :meth:`turn` for one pass."""

    def __init__(
        self,
        jobs: JobQueue,
        resolved: ResolvedProfile,
        *,
        name: str,
        labels: list[str],
        lease: float,
        parallel: int,
        say: Say,
        launcher: Launcher | None = None,
        keep_failed: bool = False,
    ) -> None:
        self.jobs = jobs
        self.resolved = resolved
        self.name = name
        self.labels = list(labels)
        self.lease = lease
        self.parallel = max(1, parallel)
        self.say = say
        self.launcher = launcher or LocalProcessLauncher()
        self.keep_failed = keep_failed
        self.active: dict[tuple[str, str, int], _Active] = {}
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def serve(self) -> None:
        """Until stopped; then the jobs still running are ended and given back to the queue
        (claimable at once by another worker)."""
        from sparkwing.errors import StorageError

        try:
            while not self._stop.is_set():
                try:
                    busy = self.turn()
                except StorageError as exc:
                    self.say(f"warning: job queue: {exc}")
                    busy = False
                except Exception as exc:  # a bug here must not end the serving thread
                    log.debug("job worker turn failed", exc_info=True)
                    self.say(f"warning: job worker: {type(exc).__name__}: {exc}")
                    busy = False
                self._stop.wait(TURN_SECONDS if busy or self.active else IDLE_POLL_SECONDS)
        finally:
            self._give_back()

    def turn(self) -> bool:
        """Reap, renew, claim; True when it claimed a job (there may be more)."""
        self._reap()
        self._renew_due()
        claimed = False
        while len(self.active) < self.parallel and not self._stop.is_set():
            claim = self.jobs.claim(self.name, self.labels, self.lease)
            if claim is None:
                break
            claimed = True
            self._start(claim)
        return claimed

    # -- one job ------------------------------------------------------------------------
    def _surfaces(self, claim: JobClaim) -> dict[str, dict[str, Any]]:
        from sparkwing.engine.runspec import spec_to_dict
        from sparkwing.surfaces.session import Surfaces

        pipeline = str(claim.spec.get("pipeline", ""))
        surfaces = Surfaces.of_profile(self.resolved, run_id=claim.ref.run_id, pipeline=pipeline)
        return {name: spec_to_dict(surfaces.spec(name)) for name in JOB_SURFACES}

    def _start(self, claim: JobClaim) -> None:
        ref = claim.ref
        how = f" (reclaimed from {claim.previous_worker})" if claim.previous_worker else ""
        self.say(f"job      {ref.run_id}  {ref.node_id}  attempt {ref.attempt}  claimed{how}")
        if claim.spec.get("version") != JOB_SPEC_VERSION:
            version = claim.spec.get("version")
            error = f"queued by another sparkwing version (job spec version {version!r})"
            self._complete(claim, JobResult("failed", error=error, extra={"worker": self.name}))
            return
        workspace = jobs_home() / ref.run_id / f"{ref.node_id}.{ref.attempt}.{claim.claim}"
        start = JobStart(
            run_id=ref.run_id,
            node_id=ref.node_id,
            attempt=ref.attempt,
            spec=claim.spec,
            workspace=str(workspace),
            result_path=str(workspace.parent / f".{workspace.name}.result.json"),
            surfaces=self._surfaces(claim),
            worker=self.name,
            parent=os.getpid(),
        )
        try:
            shutil.rmtree(workspace, ignore_errors=True)
            launched = self.launcher.start(start)
        except Exception as exc:  # a job that cannot start fails; the worker goes on
            self._complete(claim, JobResult("failed", error=f"could not start the job: {exc}"))
            return
        renew_at = time.monotonic() + self.lease / 3
        self.active[(ref.run_id, ref.node_id, ref.attempt)] = _Active(
            claim, launched, workspace, renew_at
        )

    def _renew_due(self) -> None:
        now = time.monotonic()
        for key, active in list(self.active.items()):
            if now < active.renew_at:
                continue
            active.renew_at = now + self.lease / 3
            claim = active.claim
            renewal = self.jobs.renew(claim.ref, self.name, claim.claim, self.lease)
            if renewal == "lost":
                # Another worker holds it now: never run one attempt twice at once.
                active.launched.kill()
                del self.active[key]
                self._clean(active, keep=False)
                self.say(f"lost     {claim.ref.run_id}  {claim.ref.node_id}  claim taken over")
            elif renewal == "cancel" and not active.stopping:
                active.stopping = True
                active.launched.stop()

    def _reap(self) -> None:
        for key, active in list(self.active.items()):
            result = active.launched.poll()
            if result is None:
                continue
            del self.active[key]
            result.extra.setdefault("worker", self.name)
            self._complete(active.claim, result)
            self._clean(active, keep=self.keep_failed and result.status != "success")

    def _complete(self, claim: JobClaim, result: JobResult) -> None:
        ref = claim.ref
        if not self.jobs.complete(ref, self.name, claim.claim, result):
            self.say(f"lost     {ref.run_id}  {ref.node_id}  its result came too late")
            return
        why = f"  {result.error}" if result.error else ""
        self.say(
            f"job      {ref.run_id}  {ref.node_id}  attempt {ref.attempt}  {result.status}{why}"
        )

    def _clean(self, active: _Active, *, keep: bool) -> None:
        result_file = active.workspace.parent / f".{active.workspace.name}.result.json"
        result_file.unlink(missing_ok=True)
        if not keep:
            shutil.rmtree(active.workspace, ignore_errors=True)
        with contextlib.suppress(OSError):
            active.workspace.parent.rmdir()  # the run's folder, once its last job is gone

    def _give_back(self) -> None:
        for active in self.active.values():
            active.launched.kill()
            claim = active.claim
            with contextlib.suppress(Exception):  # the lease lapses by itself otherwise
                self.jobs.renew(claim.ref, self.name, claim.claim, 0)
            self._clean(active, keep=False)
        self.active.clear()


@contextlib.contextmanager
def serving_jobs(
    state: Any,
    resolved: ResolvedProfile,
    *,
    name: str,
    labels: list[str] | tuple[str, ...] = (),
    lease: float,
    parallel: int,
    say: Say,
) -> Iterator[JobWorker | None]:
    """Serve dispatched jobs in a thread while the block runs (None, and nothing served,
    when ``state`` has no job queue). Labels: ``labels`` and those of ``SPARKWING_LABELS``."""
    jobs: JobQueue | None = getattr(state, "jobs", None)
    if jobs is None:
        yield None
        return
    offered = sorted({*labels, *labels_from_env()})
    worker = JobWorker(
        jobs, resolved, name=name, labels=offered, lease=lease, parallel=parallel, say=say
    )
    thread = threading.Thread(target=worker.serve, name="sparkwing-jobs", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join()
