"""``sparkwing worker``: claim runs queued with ``sparkwing runs submit`` from the profile's
state and execute each one with ``sparkwing run`` (the same engine path), renewing its claim.

A run whose worker died (its lease expired) is claimed by another worker, which marks the dead
attempt's open jobs cancelled, puts the record back to ``queued`` and starts the run over under
the same id. A successful run is never started again; after ``MAX_ATTEMPTS`` lost attempts a
run is failed instead of being retried forever.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import click

from sparkwing.cli.common import PROFILE_OPTION, output_option
from sparkwing.surfaces.state.base import require_queue

if TYPE_CHECKING:
    from sparkwing.surfaces.spec import SurfaceSpec
    from sparkwing.surfaces.state.base import RunClaim, RunRecord, StateStore

DEFAULT_LEASE_SECONDS = 30.0
MAX_ATTEMPTS = 3
_REAP_SECONDS = 0.1

# The child that executes one claimed run: the `sparkwing run` CLI itself, asked to end (and
# so to cancel its run cleanly) when this worker dies, however it dies.
_TRAMPOLINE = (
    "import os, signal, sys\n"
    "from sparkwing.engine.procutil import die_with_parent\n"
    "die_with_parent(signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(143)\n"
    "from sparkwing.cli.main import main\n"
    "main(sys.argv[2:])\n"
)


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from sparkwing.errors import SparkwingError
    from sparkwing.sdk.durations import parse_duration

    try:
        seconds = parse_duration(value, "duration")
    except SparkwingError as exc:
        raise click.BadParameter(str(exc).removeprefix("duration: ")) from None
    if seconds <= 0:
        raise click.BadParameter(f"must be more than 0, got {value!r}")
    return seconds


@dataclass
class Active:
    """A claimed run whose `sparkwing run` child is running."""

    claim: RunClaim
    proc: subprocess.Popen[bytes]
    output: IO[bytes]
    started: float
    renew_at: float
    lost: bool = False


class Worker:
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
        json_lines: bool,
    ) -> None:
        self.state = state
        self.queue = queue
        self.name = name
        self.lease = lease
        self.parallel = parallel
        self.poll = poll
        self.once = once
        self.max_runs = max_runs
        self.json_lines = json_lines
        self.active: dict[str, Active] = {}
        self.claimed = 0
        self.stop_signal: int | None = None
        self._stopping_children = False

    # -- output -----------------------------------------------------------------------
    def emit(self, event: str, run: RunRecord, text: str, **fields: Any) -> None:
        """One line: ``event run pipeline text``, or with -o json one object with ``fields``."""
        if self.json_lines:
            doc = {"event": event, "run_id": run.run_id, "pipeline": run.pipeline, **fields}
            click.echo(json.dumps({**doc, "worker": self.name}, default=str))
        else:
            click.echo(f"{event:<8} {run.run_id}  {run.pipeline}  {text}".rstrip())
        sys.stdout.flush()

    def emit_end(self, event: str, run: RunRecord, status: str, seconds: float | None) -> None:
        took = "-" if seconds is None else f"{seconds:.1f}s"
        reason = f"  {run.reason}" if run.reason else ""
        self.emit(
            event,
            run,
            f"{status}  {took}{reason}",
            status=status,
            seconds=None if seconds is None else round(seconds, 3),
            reason=run.reason,
        )

    def warn(self, message: str) -> None:
        click.echo(f"warning: {message}", err=True)

    # -- the loop ---------------------------------------------------------------------
    def serve(self) -> int:
        from sparkwing.errors import StorageError

        def stop(signum: int, _frame: Any) -> None:
            self.stop_signal = self.stop_signal or signum

        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while True:
                try:
                    if self._turn():
                        break
                except StorageError as exc:
                    # The store is unreachable for longer than its own retries: keep the
                    # runs going and try again; their claims are renewed once it is back.
                    self.warn(str(exc))
                    self._sleep(self.poll)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        return 130 if self.stop_signal else 0

    def _turn(self) -> bool:
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

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.stop_signal is None and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, _REAP_SECONDS))

    # -- one claimed run --------------------------------------------------------------
    def _take(self, claim: RunClaim) -> None:
        from sparkwing.status import FINAL_RUN_STATUSES

        run = claim.run
        how = f"attempt {claim.attempt}"
        if claim.attempt > 1 and claim.previous_worker:
            how += f", reclaimed from {claim.previous_worker}"
        self.emit("claimed", run, how, attempt=claim.attempt, previous_worker=claim.previous_worker)
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

        from sparkwing.cli.submit import SPEC_VERSION, state_spec
        from sparkwing.conf.project import find_project
        from sparkwing.conf.resolve import resolve_profile
        from sparkwing.errors import SparkwingError

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
            target = state_spec(resolved, claim.run.pipeline)
        except SparkwingError as exc:
            return str(exc)
        if target != self.queue:
            return (
                f'profile "{resolved.name}" keeps this run in {target.describe()}, '
                f"not in this worker's {self.queue.describe()}"
            )
        return None

    def _start(self, claim: RunClaim) -> None:
        spec, run = claim.spec, claim.run
        root = str(spec["root"])
        argv = [
            *("-C", root, "run", "--profile", str(spec["profile"])),
            *("--sw-run-id", run.run_id, "--sw-trigger", "queue", "-o", "quiet"),
            run.pipeline,
            *[str(a) for a in spec.get("args", [])],
        ]
        # Closed when the run is reaped (the file outlives this function by design).
        output = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _TRAMPOLINE, str(os.getpid()), *argv],
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C meant for the worker reaches the runs through
                # the worker, which decides what happens to them.
                start_new_session=True,
            )
        except OSError as exc:
            output.close()
            return self._fail(claim, f"could not start sparkwing run: {exc}")
        now = time.monotonic()
        self.active[run.run_id] = Active(claim, proc, output, now, now + self.lease / 3)

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
                self.warn(f"lost the claim on {active.claim.run.run_id}; stopping its run here")

    def _reap(self) -> None:
        for run_id, active in list(self.active.items()):
            code = active.proc.poll()
            if code is None:
                continue
            del self.active[run_id]
            try:
                self._finish(active, code)
            finally:
                active.output.close()

    def _finish(self, active: Active, code: int) -> None:
        from sparkwing.engine.clock import now_iso
        from sparkwing.engine.recovery import record_runner_death
        from sparkwing.status import FINAL_RUN_STATUSES

        claim = active.claim
        run_id = claim.run.run_id
        seconds = time.monotonic() - active.started
        if active.lost:
            self.emit("lost", claim.run, "claim taken by another worker")
            return
        run = self.state.get_run(run_id)
        if run is None or run.status not in FINAL_RUN_STATUSES:
            reason = _last_error(active.output) or f"sparkwing run exited with code {code}"
            if run is not None and run.status == "queued":
                # It never started (bad input, config error): the error is the run's reason.
                self.state.update_run(run_id, status="failed", reason=reason, finished_at=now_iso())
            else:
                record_runner_death(self.state, run_id, reason)
            run = self.state.get_run(run_id) or claim.run
        requeue = self.stop_signal is not None and run.status == "cancelled"
        require_queue(self.state).release(run_id, self.name, requeue=requeue)
        self.emit_end("requeued" if requeue else "finished", run, run.status, seconds)

    def _close(self, claim: RunClaim, status: str, why: str) -> None:
        require_queue(self.state).release(claim.run.run_id, self.name)
        run = self.state.get_run(claim.run.run_id) or claim.run
        if run.status != status or not run.reason:
            run.reason = why
        self.emit_end("finished", run, status, None)

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


def _signal(proc: subprocess.Popen[bytes], signum: int) -> None:
    try:
        proc.send_signal(signum)
    except OSError:
        pass


def _last_error(output: IO[bytes]) -> str | None:
    """The last ``error: ...`` line the run printed (it prints one line per failure)."""
    output.seek(0)
    lines = output.read().decode(errors="replace").splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    return errors[-1][len("error: ") :].strip() if errors else None


@click.command("worker", context_settings={"help_option_names": ["-h", "--help"]})
@PROFILE_OPTION
@click.option(
    "--once",
    is_flag=True,
    help="Exit when the queue is empty and this worker's runs have finished.",
)
@click.option(
    "--max-runs",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Claim at most N runs, then exit once they have finished.",
)
@click.option(
    "--poll",
    default="1s",
    show_default=True,
    metavar="T",
    callback=_duration,
    help="How often to look for queued runs when idle.",
)
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Execute up to N runs at once.",
)
@click.option(
    "--lease",
    default=f"{DEFAULT_LEASE_SECONDS:g}s",
    show_default=True,
    metavar="T",
    callback=_duration,
    help="How long a claim lasts without renewal (renewed every third of it); a run whose "
    "worker died is taken over this long after it stopped renewing.",
)
@output_option("One line per claimed / finished run; json: one JSON object per line.")
@click.pass_context
def worker_cmd(
    ctx: click.Context,
    profile: str | None,
    once: bool,
    max_runs: int | None,
    poll: float,
    parallel: int,
    lease: float,
    output: str,
) -> int:
    """Execute runs queued with `sparkwing runs submit` in PROFILE's state, each exactly once,
    with the same engine as `sparkwing run`. Workers on any number of machines can share a
    postgres queue (a sqlite one: on this machine). Ctrl-C or SIGTERM stops the runs in
    progress and puts them back in the queue for another worker."""
    from sparkwing.cli.common import describe_store, resolve
    from sparkwing.cli.submit import open_resolved_state, state_spec

    resolved = resolve(ctx, profile)
    queue = state_spec(resolved)
    state = open_resolved_state(resolved, queue)
    name = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(2).hex()}"
    click.echo(
        f"worker {name}: queue in {describe_store(state)} (profile {resolved.name}), "
        f"up to {parallel} run(s) at once",
        err=True,
    )
    try:
        worker = Worker(
            state,
            queue,
            name=name,
            lease=lease,
            parallel=parallel,
            poll=poll,
            once=once,
            max_runs=max_runs,
            json_lines=output == "json",
        )
        return worker.serve()
    finally:
        state.close()
