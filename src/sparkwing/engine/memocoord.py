"""Memo coordination: who computes a memoized job's result (the leader holding the key's
lease in the state surface), who waits for it, and storing, renewing or releasing it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sparkwing.engine import memo as memo_mod
from sparkwing.errors import SparkwingError
from sparkwing.surfaces.cache.base import Cache
from sparkwing.surfaces.state.base import StateStore


@dataclass(frozen=True)
class Settled:
    """What asking for a key gave: ``cached`` (``doc`` is the stored result), ``leader``
    (this job computes it) or ``held`` (``holder`` is computing it; ask again later)."""

    state: str
    doc: dict[str, Any] | None = None
    holder: str | None = None


class MemoCoordinator:
    """The memo leases of one run's jobs; a job id leads at most one key at a time."""

    def __init__(
        self, state: StateStore, cache: Cache, run_id: str, pipeline: str, lease: float
    ) -> None:
        self._state = state
        self._cache = cache
        self._run_id = run_id
        self._pipeline = pipeline
        self.lease = lease
        self._leading: dict[str, str] = {}  # job id -> key

    def key(self, job_id: str, user_key: Any) -> str:
        return memo_mod.full_key(self._pipeline, job_id, user_key)

    def _holder(self, job_id: str) -> str:
        return f"{self._run_id}/{job_id}"

    def is_leader(self, job_id: str) -> bool:
        return job_id in self._leading

    def settle(self, job_id: str, key: str) -> Settled:
        """Use a stored result, take the lead, or learn who holds the key."""
        holder = self._holder(job_id)
        for _ in range(3):
            doc = memo_mod.load(self._cache, key)
            if doc is not None:
                return Settled("cached", doc=doc)
            claim = self._state.memo.acquire(key, holder, self.lease)
            if claim.state == "held":
                return Settled("held", holder=claim.holder)
            # Between the look above and the claim, another leader may have stored its
            # result and ended its lease (and a third job forgotten the key): look again
            # before computing it a second time or forgetting it.
            doc = memo_mod.load(self._cache, key)
            if claim.state == "leader":
                if doc is not None:
                    self._state.memo.complete(key, holder, f"memo/{key}")
                    return Settled("cached", doc=doc)
                self._leading[job_id] = key
                return Settled("leader")
            if doc is not None:
                return Settled("cached", doc=doc)
            # done, yet the result document is missing or expired: let it be recomputed.
            self._state.memo.forget(key)
        raise SparkwingError(f'job "{job_id}": could not settle memoize key')

    def complete(self, job_id: str, output: Any, artifacts: str | None, ttl: float | None) -> None:
        """Store the leader's result for later runs and waiters, then end its lease."""
        key = self._leading.pop(job_id, None)
        if key is None:
            return
        doc = {
            "pipeline": self._pipeline,
            "job": job_id,
            "run_id": self._run_id,
            "output": output,
            "artifacts": artifacts,
        }
        memo_mod.store(self._cache, key, doc, ttl)
        self._state.memo.complete(key, self._holder(job_id), f"memo/{key}")

    def release(self, job_id: str) -> None:
        """Give up the lead without a result, so a waiter can take over."""
        key = self._leading.pop(job_id, None)
        if key is not None:
            self._state.memo.release(key, self._holder(job_id))

    def renew(self) -> None:
        for job_id, key in self._leading.items():
            self._state.memo.renew(key, self._holder(job_id), self.lease)
