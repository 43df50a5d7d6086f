"""Concurrency groups: at most one run of a group active at a time across every runner sharing
a state store. The optional ``groups`` part of a StateStore, and the one decision procedure
(:func:`step`) every backend applies to a group's members under its own lock or CAS."""

from __future__ import annotations

import abc
import builtins
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sparkwing.errors import UsageError
from sparkwing.ids import check_segment

HOLDING, WAITING = "holding", "waiting"

TurnState = Literal["holding", "waiting", "skipped", "cancelled", "lost"]


@dataclass
class Member:
    """A run in a group: the one ``holding`` it, or one ``waiting`` for it. ``expires`` is
    when its lease ends unless renewed (seconds since the epoch, the store's clock);
    ``submitted`` (the run's submission time, ISO) orders the waiters; ``preempted_by`` is
    the run that took over (cancel-running): this one must end."""

    run_id: str
    state: str
    expires: float
    submitted: str = ""
    preempted_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Member:
        return cls(
            run_id=str(data["run_id"]),
            state=str(data["state"]),
            expires=float(data["expires"]),
            submitted=str(data.get("submitted") or ""),
            preempted_by=data.get("preempted_by"),
        )


@dataclass
class GroupTurn:
    """Where a run stands in its group. ``holding``: it may run. ``waiting``: behind
    ``holder`` at ``position`` (1 = next). ``skipped``: it arrived while ``holder`` had the
    group and must end (skip). ``cancelled``: ``by`` took over and this run must end.
    ``lost``: it is no longer a member (its lease expired)."""

    state: TurnState
    holder: str | None = None
    position: int = 0
    by: str | None = None
    members: list[Member] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "holder": self.holder,
            "position": self.position,
            "by": self.by,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupTurn:
        return cls(
            state=data["state"],
            holder=data.get("holder"),
            position=int(data.get("position") or 0),
            by=data.get("by"),
        )


def check_group(name: str) -> str:
    """A group name is one key segment (it names a row, a document, a URL path part)."""
    return check_segment(name, "concurrency group")


def check_on_busy(on_busy: str) -> str:
    from sparkwing.conf.model import ON_BUSY

    if on_busy not in ON_BUSY:
        raise UsageError(f"on_busy must be one of {', '.join(ON_BUSY)}, not {on_busy!r}")
    return on_busy


class ConcurrencyGroups(abc.ABC):
    """Members of each group; every call is one atomic step of :func:`step`."""

    @abc.abstractmethod
    def enter(
        self, group: str, run_id: str, on_busy: str, lease_seconds: float, submitted: str
    ) -> GroupTurn:
        """Join ``group`` (acting on ``on_busy`` when it is busy); waiters are served in
        order of ``submitted`` (the run's submission time). Entering again is a poll."""

    @abc.abstractmethod
    def poll(self, group: str, run_id: str, lease_seconds: float) -> GroupTurn:
        """Renew the member's lease and say where it stands (``lost`` when not a member)."""

    @abc.abstractmethod
    def leave(self, group: str, run_id: str) -> None:
        """Remove ``run_id`` from the group (its own end, or a dead member cleared by a
        peer); the next waiter becomes the holder. Leaving twice is harmless."""

    @abc.abstractmethod
    def members(self, group: str) -> builtins.list[Member]:
        """The live members, holder first, then waiters in order."""


Op = Literal["enter", "poll", "leave", "read"]


def _order(member: Member) -> tuple[int, str, str]:
    # The holder first, then FIFO by submission (ties broken by run id).
    return (0 if member.state == HOLDING else 1, member.submitted, member.run_id)


def step(
    members: builtins.list[Member],
    now: float,
    op: Op,
    run_id: str = "",
    *,
    on_busy: str = "queue",
    lease_seconds: float = 0.0,
    submitted: str = "",
) -> tuple[builtins.list[Member], GroupTurn]:
    """One operation on a group's members at time ``now``: the new member list and the
    caller's turn. Expired members are dropped first, so a dead holder never keeps its
    group; the first waiter not preempted is promoted whenever nobody holds it."""
    live = sorted((m for m in members if m.expires > now), key=_order)
    me = next((m for m in live if m.run_id == run_id), None)
    if op == "enter" and me is None:
        holder = next((m for m in live if m.state == HOLDING), None)
        ahead = [m for m in live if m.preempted_by is None]
        if on_busy == "skip" and ahead:
            first = holder or ahead[0]
            return live, GroupTurn("skipped", holder=first.run_id, members=live)
        if on_busy == "cancel-running":
            for other in live:
                other.preempted_by = other.preempted_by or run_id
        me = Member(run_id, WAITING, now + lease_seconds, submitted)
        live.append(me)
    elif op == "leave":
        live = [m for m in live if m.run_id != run_id]
        me = None
    elif me is not None and op in ("enter", "poll"):
        me.expires = now + lease_seconds
    if not any(m.state == HOLDING for m in live):
        first_waiter = next((m for m in live if m.preempted_by is None), None)
        if first_waiter is not None:
            first_waiter.state = HOLDING
    live.sort(key=_order)
    return live, _turn(live, me)


def _turn(live: builtins.list[Member], me: Member | None) -> GroupTurn:
    holder = next((m.run_id for m in live if m.state == HOLDING), None)
    if me is None:
        return GroupTurn("lost", holder=holder, members=live)
    if me.preempted_by is not None:
        return GroupTurn("cancelled", holder=holder, by=me.preempted_by, members=live)
    if me.state == HOLDING:
        return GroupTurn("holding", holder=me.run_id, members=live)
    waiting = [m for m in live if m.state == WAITING and m.preempted_by is None]
    return GroupTurn("waiting", holder=holder, position=waiting.index(me) + 1, members=live)


class SteppedGroups(ConcurrencyGroups):
    """ConcurrencyGroups over one primitive, :meth:`_apply`: :func:`step` applied atomically
    to a group's stored members (under a lock, or by compare-and-swap)."""

    @abc.abstractmethod
    def _apply(
        self, group: str, op: Op, run_id: str, on_busy: str, lease: float, submitted: str
    ) -> tuple[builtins.list[Member], GroupTurn]:
        """Read ``group``'s members, apply :func:`step` and store the result, atomically."""

    def _step(
        self,
        group: str,
        op: Op,
        run_id: str = "",
        on_busy: str = "queue",
        lease: float = 0.0,
        submitted: str = "",
    ) -> tuple[builtins.list[Member], GroupTurn]:
        check_group(group)
        if run_id:
            check_segment(run_id, "run id")
        return self._apply(group, op, run_id, on_busy, lease, submitted)

    def enter(
        self, group: str, run_id: str, on_busy: str, lease_seconds: float, submitted: str
    ) -> GroupTurn:
        check_on_busy(on_busy)
        return self._step(group, "enter", run_id, on_busy, float(lease_seconds), submitted)[1]

    def poll(self, group: str, run_id: str, lease_seconds: float) -> GroupTurn:
        return self._step(group, "poll", run_id, lease=float(lease_seconds))[1]

    def leave(self, group: str, run_id: str) -> None:
        self._step(group, "leave", run_id)

    def members(self, group: str) -> builtins.list[Member]:
        return self._step(group, "read")[0]
