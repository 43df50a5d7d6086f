"""Memo reservation on an object store: one compare-and-swap document per key,
``{holder, state, result, expires_at}`` with state ``held``, ``done`` or ``free``.

Every change is a put-if-absent (first claim) or a put-if-match on the etag just read, so of
several runners reaching a key exactly one wins each transition and the others re-read.
Released and forgotten keys become ``free`` rather than being deleted: a delete cannot be
made conditional, and an unconditional one could remove a newer holder's claim. Leases
compare against this machine's clock, so machines sharing a bucket need roughly synced clocks
(skew shortens or lengthens a dead holder's lease, it never elects two live leaders).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any

from sparkwing.errors import PreconditionFailedError, StorageError
from sparkwing.surfaces.objectstore.base import ObjectStore
from sparkwing.surfaces.state.base import MemoClaim

MEMO_PREFIX = "coord/memo/"
_ROUNDS = 100  # compare-and-swap rounds before giving up on a key under extreme contention


@dataclass(frozen=True)
class _Doc:
    holder: str | None
    state: str
    result: str | None
    expires_at: float | None

    @classmethod
    def parse(cls, data: bytes) -> _Doc:
        try:
            raw: Any = json.loads(data)
            expires = raw.get("expires_at")
            return cls(
                raw.get("holder"),
                str(raw["state"]),
                raw.get("result"),
                float(expires) if expires is not None else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            # Unreadable: treat as free, so a waiter can repair it with a conditional write.
            return cls(None, "free", None, None)

    def encode(self) -> bytes:
        body = {
            "holder": self.holder,
            "state": self.state,
            "result": self.result,
            "expires_at": self.expires_at,
        }
        return json.dumps(body, separators=(",", ":")).encode()


class MemoDocs:
    """The compare-and-swap transitions of memo documents in ``store``."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def _key(self, key: str) -> str:
        return MEMO_PREFIX + key

    def _contended(self, key: str) -> StorageError:
        return StorageError(f"memo key {key}: gave up after {_ROUNDS} conflicting writes")

    @staticmethod
    def _pause() -> None:
        time.sleep(random.uniform(0.001, 0.02))

    def acquire(self, key: str, holder: str, lease_seconds: float) -> MemoClaim:
        path = self._key(key)
        for _ in range(_ROUNDS):
            got = self._store.get(path)
            now = time.time()
            claim = _Doc(holder, "held", None, now + lease_seconds)
            try:
                if got is None:
                    self._store.put_if_absent(path, claim.encode())
                    return MemoClaim("leader", holder=holder, expires_at=claim.expires_at)
                doc = _Doc.parse(got[0])
                if doc.state == "done":
                    return MemoClaim("done", holder=doc.holder, result=doc.result)
                expired = doc.expires_at is None or doc.expires_at <= now
                if doc.state == "free" or doc.holder == holder or expired:
                    self._store.put_if_match(path, claim.encode(), got[1].etag)
                    return MemoClaim("leader", holder=holder, expires_at=claim.expires_at)
                return MemoClaim("held", holder=doc.holder, expires_at=doc.expires_at)
            except PreconditionFailedError:
                self._pause()
        raise self._contended(key)

    def renew(self, key: str, holder: str, lease_seconds: float) -> bool:
        path = self._key(key)
        for _ in range(_ROUNDS):
            got = self._store.get(path)
            if got is None:
                return False
            doc = _Doc.parse(got[0])
            if doc.state != "held" or doc.holder != holder:
                return False
            renewed = _Doc(holder, "held", None, time.time() + lease_seconds)
            try:
                self._store.put_if_match(path, renewed.encode(), got[1].etag)
                return True
            except PreconditionFailedError:
                self._pause()
        raise self._contended(key)

    def complete(self, key: str, holder: str, result: str) -> None:
        # Unconditional: done is final, and two completions name equivalent results (the
        # result is content-addressed), so the last writer winning is harmless.
        self._store.put(self._key(key), _Doc(holder, "done", result, None).encode())

    def _free_if(self, key: str, wanted: str, holder: str | None) -> None:
        path = self._key(key)
        for _ in range(_ROUNDS):
            got = self._store.get(path)
            if got is None:
                return
            doc = _Doc.parse(got[0])
            if doc.state != wanted or (holder is not None and doc.holder != holder):
                return
            try:
                self._store.put_if_match(path, _Doc(None, "free", None, None).encode(), got[1].etag)
                return
            except PreconditionFailedError:
                self._pause()
        raise self._contended(key)

    def release(self, key: str, holder: str) -> None:
        self._free_if(key, "held", holder)

    def forget(self, key: str) -> None:
        self._free_if(key, "done", None)
