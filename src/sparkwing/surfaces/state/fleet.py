"""The fleet: workers register in the state store and refresh their entry with each
heartbeat, so ``sparkwing workers list`` shows every worker sharing a queue, its labels,
what it runs and when it was last seen. An optional part of a store (``store.fleet``)."""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sparkwing.errors import NotSupportedError

# A worker that missed this many heartbeats in a row is shown as stale.
STALE_AFTER_BEATS = 3


@dataclass
class WorkerInfo:
    """One worker as it last reported itself. Times are UTC ISO-8601 strings; ``heartbeat``
    is how often (seconds) it reports, so a reader can tell a stale entry."""

    name: str
    host: str = ""
    labels: list[str] = field(default_factory=list)
    version: str = ""
    started_at: str = ""
    last_seen: str = ""
    heartbeat: float = 10.0
    running: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def stale(self, now: datetime) -> bool:
        """Whether it missed its last few heartbeats (it died, or cannot reach the store)."""
        try:
            seen = datetime.fromisoformat(self.last_seen.replace("Z", "+00:00"))
        except ValueError:
            return True
        return (now - seen).total_seconds() > STALE_AFTER_BEATS * max(self.heartbeat, 1.0)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerInfo:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class Fleet(abc.ABC):
    """The workers a state store has seen."""

    @abc.abstractmethod
    def heartbeat(self, worker: WorkerInfo) -> None:
        """Register ``worker`` or replace its entry (by name) with this one."""

    @abc.abstractmethod
    def leave(self, name: str) -> bool:
        """Remove the worker ``name`` (it stopped); False when it was not registered."""

    @abc.abstractmethod
    def list(self) -> list[WorkerInfo]:
        """Every registered worker, by name."""

    @abc.abstractmethod
    def prune(self, before: str) -> int:
        """Forget workers last seen before ``before`` (ISO time); returns how many."""


class HasFleet(Protocol):
    """A state store, as far as :func:`require_fleet` needs one (base.py imports this
    module, so it cannot be imported back)."""

    @property
    def fleet(self) -> Fleet | None: ...

    def describe(self) -> str: ...


def require_fleet(store: HasFleet) -> Fleet:
    """``store.fleet``, or the refusal every caller gives a store without one."""
    if store.fleet is None:
        raise NotSupportedError(
            f"{store.describe()} does not keep a workers registry (sqlite, postgres and "
            "controller state do)"
        )
    return store.fleet
