"""Concurrency groups on an object store: one compare-and-swap document per group at
``coord/groups/<group>.json`` holding its members; each call reads it, applies
:func:`groups.step` and writes it back only if nobody wrote in between (else it re-reads).
Lease times are this host's clock, so runners sharing a bucket need roughly synced clocks."""

from __future__ import annotations

import json
import time

from sparkwing.errors import PreconditionFailedError, StorageError
from sparkwing.surfaces.objectstore.base import ObjectStore
from sparkwing.surfaces.state.groups import GroupTurn, Member, Op, SteppedGroups, step

GROUPS_PREFIX = "coord/groups/"
_ROUNDS = 100


def _parse(data: bytes, key: str) -> list[Member]:
    try:
        doc = json.loads(data)
        return [Member.from_dict(m) for m in doc["members"]]
    except (ValueError, TypeError, KeyError) as exc:
        raise StorageError(f"concurrency group object {key} is unreadable: {exc}") from None


def _encode(members: list[Member]) -> bytes:
    return json.dumps({"members": [m.to_dict() for m in members]}, separators=(",", ":")).encode()


class GroupDocs(SteppedGroups):
    """The state's ``groups`` part where the store enforces preconditions."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def _apply(
        self, group: str, op: Op, run_id: str, on_busy: str, lease: float, submitted: str
    ) -> tuple[list[Member], GroupTurn]:
        key = f"{GROUPS_PREFIX}{group}.json"
        for _ in range(_ROUNDS):
            got = self._store.get(key)
            before = _parse(got[0], key) if got is not None else []
            encoded = _encode(before)
            members, turn = step(
                before,
                time.time(),
                op,
                run_id,
                on_busy=on_busy,
                lease_seconds=lease,
                submitted=submitted,
            )
            after = _encode(members)
            if op == "read" or after == encoded:
                return members, turn
            try:
                if got is None:
                    self._store.put_if_absent(key, after)
                else:
                    self._store.put_if_match(key, after, got[1].etag)
                return members, turn
            except PreconditionFailedError:
                continue  # a peer changed the group meanwhile: decide again on its version
        raise StorageError(f"concurrency group {key}: gave up after {_ROUNDS} conflicting writes")
