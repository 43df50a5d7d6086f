"""A run's place in its pipeline's concurrency group, in the runner process: entered when the
run is created, waited for (heartbeating, its reason naming the run it waits behind), held
while it runs (a thread renews the lease and cancels the run if another takes over), and
left when the run ends, however it ends."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from sparkwing import _log
from sparkwing.engine.clock import now_iso
from sparkwing.engine.runspec import RunSpec
from sparkwing.errors import SparkwingError
from sparkwing.status import FINAL_RUN_STATUSES
from sparkwing.surfaces.state.base import NewEvent, RunRecord, StateStore, require_groups

if TYPE_CHECKING:
    from sparkwing.surfaces.state.groups import ConcurrencyGroups, GroupTurn

log = _log.get("sparkwing.engine")

LEASE_ENV = "SPARKWING_GROUP_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 30.0
HEARTBEAT_SECONDS = 5.0
# Polls while waiting start quick (a group is often freed within a second) and back off.
FIRST_POLL_SECONDS = 0.2
MAX_POLL_SECONDS = 2.0
# A holder renews at least this often, so a run taken over stops within seconds.
RENEW_SECONDS = 2.0


class RunEnded(SparkwingError):
    """The run ended while waiting for its group (skipped, taken over, interrupted); its
    record is already final (cancelled, with this message as the reason)."""

    exit_code = 130


def lease_seconds() -> float:
    try:
        return max(0.5, float(os.environ.get(LEASE_ENV, DEFAULT_LEASE_SECONDS)))
    except ValueError:
        return DEFAULT_LEASE_SECONDS


_WAITING = "waiting for concurrency group "


def waiting_reason(group: str, holder: str | None) -> str:
    held = f", held by run {holder}" if holder else ""
    return f"{_WAITING}{group}{held}"


def group_wait(run: RunRecord) -> str | None:
    """What a run that has not started waits for, when it is a concurrency group."""
    if run.status == "pending" and run.reason and run.reason.startswith(_WAITING):
        return run.reason
    return None


class GroupPlace:
    """``with GroupPlace(group, on_busy) as place``: :meth:`create_run` instead of the
    store's ``create_run`` (it returns once the run holds its group), :meth:`watch` once a
    scheduler can be interrupted; leaving the block gives the group up. With ``group`` None
    it only creates the run."""

    def __init__(self, group: str | None, on_busy: str = "queue") -> None:
        self.group = group
        self.on_busy = on_busy
        self.lease = lease_seconds()
        self._state: StateStore | None = None
        self._groups: ConcurrencyGroups | None = None
        self._run_id = ""
        self._submitted = ""
        self._signal: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._interrupt: Callable[[str], None] | None = None
        self._pending: str | None = None
        self._lock = threading.Lock()
        # Told what the run waits for, each time that changes (the run's display).
        self.on_wait: Callable[[str], None] | None = None

    def __enter__(self) -> GroupPlace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._groups is not None and self.group is not None:
            try:
                self._groups.leave(self.group, self._run_id)
            except Exception as err:  # its lease lapses instead: the group is not stuck
                log.warning(
                    "run %s: could not leave concurrency group %s: %s",
                    self._run_id,
                    self.group,
                    err,
                )

    # -- entering and waiting ------------------------------------------------------------
    def create_run(self, state: StateStore, run: RunRecord) -> None:
        """Create ``run`` and, with a group, wait until it holds it; raises RunEnded (the
        record closed as cancelled) when it must not run."""
        if self.group is None:
            state.create_run(run)
            return
        groups = require_groups(state)
        run.status, run.reason = "pending", waiting_reason(self.group, None)
        run.extra["concurrency"] = {"group": self.group, "on_busy": self.on_busy}
        state.create_run(run)
        self._state, self._groups, self._run_id = state, groups, run.run_id
        # A queued run keeps its submission time as created_at: it orders the waiters.
        stored = state.get_run(run.run_id)
        self._submitted = stored.created_at if stored is not None else run.created_at
        try:
            self._wait(state, groups, run)
        except RunEnded:
            raise
        except BaseException as exc:
            self._close(
                f"engine error while waiting for concurrency group {self.group}: {exc}", "failed"
            )
            raise
        now = now_iso()
        run.status, run.reason, run.started_at, run.heartbeat_at = "running", None, now, now
        # Started now: the time it waited is between created_at and started_at.
        state.update_run(
            run.run_id, status="running", reason=None, started_at=now, heartbeat_at=now
        )
        state.append_events(
            run.run_id, [NewEvent("concurrency_acquired", now, data={"group": self.group})]
        )
        self._thread = threading.Thread(target=self._renew, name="sparkwing-group", daemon=True)
        self._thread.start()

    def _wait(self, state: StateStore, groups: ConcurrencyGroups, run: RunRecord) -> None:
        group = self.group
        assert group is not None
        previous = {
            s: signal.signal(s, self._on_signal)
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
        try:
            turn = groups.enter(group, run.run_id, self.on_busy, self.lease, self._submitted)
            shown: str | None = None
            pause = FIRST_POLL_SECONDS
            beat_due = 0.0
            while True:
                if self._signal is not None:
                    self._end(
                        f"cancelled while waiting for concurrency group {group} ({self._signal})"
                    )
                if turn.state == "holding":
                    return
                if turn.state == "skipped":
                    self._end(
                        f"skipped: concurrency group {group} is busy (held by run {turn.holder})"
                    )
                if turn.state == "cancelled":
                    self._end(f"cancelled: run {turn.by} took over concurrency group {group}")
                if turn.state == "lost":  # our lease lapsed while we stalled: queue again
                    turn = groups.enter(
                        group, run.run_id, self.on_busy, self.lease, self._submitted
                    )
                    continue
                if turn.holder != shown:
                    shown = turn.holder
                    self._show(state, run, turn)
                if turn.holder is not None:
                    self._clear_dead(state, groups, turn.holder)
                now = time.monotonic()
                if now >= beat_due:
                    beat_due = now + HEARTBEAT_SECONDS
                    state.heartbeat(run.run_id, now_iso())
                self._wake.wait(pause)
                pause = min(pause * 1.5, MAX_POLL_SECONDS)
                turn = groups.poll(group, run.run_id, self.lease)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._signal is None:
            self._signal = f"interrupted by {signal.Signals(signum).name}"
        self._wake.set()

    def _show(self, state: StateStore, run: RunRecord, turn: GroupTurn) -> None:
        """Say in the record what the run waits for (``runs status``, ``runs list``)."""
        assert self.group is not None
        waits = {"group": self.group, "holder": turn.holder, "position": turn.position}
        reason = waiting_reason(self.group, turn.holder)
        state.update_run(run.run_id, reason=reason)
        if self.on_wait is not None:
            self.on_wait(f"run {run.run_id} {reason}")
        state.append_events(run.run_id, [NewEvent("concurrency_wait", now_iso(), data=waits)])

    def _clear_dead(self, state: StateStore, groups: ConcurrencyGroups, holder: str) -> None:
        """A holder whose run is over, or whose runner died on this host, is cleared now
        rather than when its lease lapses (the dead-runner rule of engine.recovery)."""
        from sparkwing.engine.recovery import dead_runner, record_runner_death

        assert self.group is not None
        try:
            other = state.get_run(holder)
            if other is None:
                return
            if other.status not in FINAL_RUN_STATUSES:
                why = dead_runner(other, found_by=f"concurrency group {self.group}")
                if why is None:
                    return
                record_runner_death(state, holder, why)
            groups.leave(self.group, holder)
        except (
            SparkwingError
        ) as err:  # not ours to clear here (a controller refuses): wait for its lease
            log.debug("run %s: could not clear holder %s: %s", self._run_id, holder, err)

    def _end(self, reason: str) -> None:
        self._close(reason, "cancelled")
        raise RunEnded(reason)

    def _close(self, reason: str, status: str) -> None:
        """Leave the group and close the record, each tried even if the other fails."""
        state, groups, group = self._state, self._groups, self.group
        assert state is not None and groups is not None and group is not None
        self._groups = None  # left here: __exit__ has nothing more to do
        steps: list[tuple[str, Callable[[], object]]] = [
            ("leave its concurrency group", lambda: groups.leave(group, self._run_id)),
            (
                "record run_finished",
                lambda: state.append_events(
                    self._run_id,
                    [
                        NewEvent(
                            "run_finished", now_iso(), data={"status": status, "reason": reason}
                        )
                    ],
                ),
            ),
            (
                "close the run",
                lambda: state.update_run(
                    self._run_id, status=status, reason=reason, finished_at=now_iso()
                ),
            ),
        ]
        for what, step in steps:
            try:
                step()
            except Exception as err:
                log.warning("run %s: could not %s: %s", self._run_id, what, err)

    # -- holding ---------------------------------------------------------------------------
    def watch(self, interrupt: Callable[[str], None]) -> None:
        """Cancel the run through ``interrupt(reason)`` if it loses its group from here on
        (or lost it already since it was acquired)."""
        with self._lock:
            self._interrupt = interrupt
            pending = self._pending
        if pending is not None:
            interrupt(pending)

    def _renew(self) -> None:
        assert self.group is not None and self._groups is not None
        groups, group = self._groups, self.group
        while not self._stop.wait(min(self.lease / 3, RENEW_SECONDS)):
            try:
                turn = groups.poll(group, self._run_id, self.lease)
            except Exception as err:  # the store is down: try again at the next tick
                log.warning(
                    "run %s: could not renew concurrency group %s: %s", self._run_id, group, err
                )
                continue
            if turn.state == "cancelled":
                self._lost(f"cancelled: run {turn.by} took over concurrency group {group}")
                return
            if turn.state == "lost":
                self._lost(f"cancelled: the run lost concurrency group {group} (its lease lapsed)")
                return

    def _lost(self, reason: str) -> None:
        with self._lock:
            interrupt = self._interrupt
            if interrupt is None:
                self._pending = reason
        if interrupt is not None:
            interrupt(reason)


def place_of(spec: RunSpec, inputs: dict[str, Any]) -> GroupPlace:
    """The place of a run of ``spec`` given its input values: no group when its pipeline
    entry names none."""
    conf = spec.concurrency
    if not conf:
        return GroupPlace(None)
    from sparkwing.conf.concurrency import group_name

    name = group_name(str(conf["group"]), spec.pipeline, inputs, str(conf.get("where") or ""))
    return GroupPlace(name, str(conf.get("on_busy") or "queue"))
