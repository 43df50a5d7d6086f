"""Human gates (approvals, debug pauses) on an object store: one compare-and-swap document
per gate at ``coord/gates/<run_id>/<node_id>.<kind>.json``.

Opening is a put-if-absent (or a put-if-match over a resolved gate); resolving is a
put-if-match on the pending document just read, so of two people racing exactly one write
lands and the other re-reads a resolved gate and is told who won.
"""

from __future__ import annotations

import builtins
import json
from datetime import UTC, datetime

from sparkwing.errors import NotFoundError, PreconditionFailedError, StorageError, UsageError
from sparkwing.surfaces.objectstore.base import ObjectStore
from sparkwing.surfaces.state.base import (
    GATE_RESOLUTIONS,
    Gate,
    Gates,
    already_resolved,
    check_gate,
)

GATES_PREFIX = "coord/gates/"
_ROUNDS = 50


def _key(run_id: str, node_id: str, kind: str) -> str:
    return f"{GATES_PREFIX}{run_id}/{node_id}.{kind}.json"


def _parse(data: bytes, key: str) -> Gate:
    try:
        return Gate.from_dict(json.loads(data))
    except (ValueError, TypeError) as exc:
        raise StorageError(f"gate object {key} is unreadable: {exc}") from None


def _encode(gate: Gate) -> bytes:
    return json.dumps(gate.to_dict(), separators=(",", ":")).encode()


class GateDocs(Gates):
    """The state's ``gates`` part where the store enforces preconditions."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def open(self, gate: Gate) -> Gate:
        check_gate(gate.run_id, gate.node_id, gate.kind)
        gate.status = "pending"
        key = _key(gate.run_id, gate.node_id, gate.kind)
        for _ in range(_ROUNDS):
            got = self._store.get(key)
            try:
                if got is None:
                    self._store.put_if_absent(key, _encode(gate))
                    return gate
                current = _parse(got[0], key)
                if current.status == "pending":
                    return current
                self._store.put_if_match(key, _encode(gate), got[1].etag)
                return gate
            except PreconditionFailedError:
                continue
        raise StorageError(f"gate {key}: gave up after {_ROUNDS} conflicting writes")

    def resolve(
        self, run_id: str, node_id: str, kind: str, status: str, by: str, comment: str | None
    ) -> Gate:
        check_gate(run_id, node_id, kind)
        if status not in GATE_RESOLUTIONS[kind]:
            raise UsageError(
                f"a {kind} resolves to one of {', '.join(GATE_RESOLUTIONS[kind])}, not {status!r}"
            )
        key = _key(run_id, node_id, kind)
        for _ in range(_ROUNDS):
            got = self._store.get(key)
            if got is None:
                raise NotFoundError(f'run {run_id} has no {kind} at job "{node_id}"')
            gate = _parse(got[0], key)
            if gate.status != "pending":
                raise already_resolved(gate)
            gate.status, gate.resolved_by, gate.comment = status, by, comment
            gate.resolved_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            try:
                self._store.put_if_match(key, _encode(gate), got[1].etag)
                return gate
            except PreconditionFailedError:
                continue  # someone else wrote first: the next read says who
        raise StorageError(f"gate {key}: gave up after {_ROUNDS} conflicting writes")

    def get(self, run_id: str, node_id: str, kind: str) -> Gate | None:
        check_gate(run_id, node_id, kind)
        key = _key(run_id, node_id, kind)
        got = self._store.get(key)
        return _parse(got[0], key) if got else None

    def list(
        self, *, run_id: str | None = None, kind: str | None = None, pending_only: bool = True
    ) -> builtins.list[Gate]:
        prefix = GATES_PREFIX
        if run_id is not None:
            check_gate(run_id, "x", kind or "approval")
            prefix += run_id + "/"
        gates = []
        for meta in self._store.list(prefix):
            if kind is not None and not meta.key.endswith(f".{kind}.json"):
                continue
            got = self._store.get(meta.key)
            if got is None:
                continue
            gate = _parse(got[0], meta.key)
            if not pending_only or gate.status == "pending":
                gates.append(gate)
        return sorted(gates, key=lambda g: (g.created_at, g.run_id, g.node_id))
