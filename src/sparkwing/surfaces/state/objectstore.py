"""State on an object store (mode 2): per-run NDJSON under ``runs/<run_id>/``, written
incrementally, an index that lists the newest runs first, and memo reservation by
compare-and-swap.

Layout, relative to the store's prefix::

    runs/<id>/run.json            {"run": RunRecord, "index": <its index key>}, put-if-match
    runs/<id>/plan.json           the plan snapshot
    runs/<id>/events/<n>.ndjson   appended event segments (segments.py), seq = n + offset
    runs/<id>/nodes/<n>.ndjson    appended node batches, folded on read (last record wins)
    runs/<id>/nodes.json          a fold of the first batches, rewritten every 64 batches
    index/<inverted id>~/<meta>   one empty object per run, newest first (objindex.py)
    coord/memo/<key>              memo reservation documents (objmemo.py)
    coord/gates/<id>/...          gate documents (objgates.py)

A change costs O(1) requests whatever the run's size: an event batch or a node batch is
one new object, a run update one conditional put (plus two index requests when the
status, pipeline or creation time changes). ``list_runs(limit=N)`` is one LIST of the
index plus N run documents fetched in parallel.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sparkwing.errors import (
    NotFoundError,
    PreconditionFailedError,
    StorageError,
    UsageError,
)
from sparkwing.ids import check_key, check_segment
from sparkwing.status import FINAL_RUN_STATUSES
from sparkwing.surfaces.objectstore.base import ObjectStore
from sparkwing.surfaces.objectstore.probe import probe_conditional_writes, warn_once
from sparkwing.surfaces.state import objindex
from sparkwing.surfaces.state.base import (
    Event,
    Gates,
    Memo,
    MemoClaim,
    NewEvent,
    NodeRecord,
    RunPage,
    RunRecord,
    StateStore,
    check_run_update,
    not_final_error,
)
from sparkwing.surfaces.state.objgates import GATES_PREFIX, GateDocs
from sparkwing.surfaces.state.objgroups import GroupDocs
from sparkwing.surfaces.state.objmemo import MemoDocs
from sparkwing.surfaces.state.segments import SegmentLogs, dumps, fetch_all, new_token

if TYPE_CHECKING:
    from sparkwing.surfaces.state.groups import ConcurrencyGroups

_INDEXED = ("status", "created_at", "pipeline")
_CHECKPOINT_EVERY = 64  # node batches between two folds written for fresh readers
_CACHED_RUNS = 64
_ROUNDS = 100  # conditional-write rounds on one run document before giving up

Doc = dict[str, Any]


def _run_key(run_id: str) -> str:
    return f"runs/{run_id}/run.json"


def _parse(data: bytes, key: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise StorageError(f"state object {key} is not valid JSON") from None


class _Fold:
    """A run's nodes folded from its batches up to ``upto``, in first-seen order."""

    def __init__(self, upto: int = 0, nodes: list[dict[str, Any]] | None = None) -> None:
        self.upto = upto
        self.nodes: dict[str, dict[str, Any]] = {n["node_id"]: n for n in nodes or []}

    def apply(self, batch: int, records: list[dict[str, Any]]) -> None:
        for record in records:
            self.nodes[str(record["node_id"])] = record  # an existing id keeps its place
        self.upto = batch


class ObjectStoreState(StateStore):
    """State kept in ``store``; every method is safe across processes and machines."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._logs = SegmentLogs(store)
        self.memo = _ObjectMemo(self, MemoDocs(store))
        self._gates = GateDocs(store)
        self._groups = GroupDocs(store)
        self._lock = threading.Lock()
        self._docs: OrderedDict[str, tuple[Doc, str]] = OrderedDict()
        self._folds: OrderedDict[str, _Fold] = OrderedDict()
        self._cas: bool | None = None

    def __repr__(self) -> str:
        return f"ObjectStoreState({self._store.describe()!r})"

    def describe(self) -> str:
        return self._store.describe()

    def close(self) -> None:
        self._store.close()

    # -- small caches -------------------------------------------------------------------
    def _remember(self, cache: OrderedDict[str, Any], run_id: str, value: Any) -> None:
        with self._lock:
            cache[run_id] = value
            cache.move_to_end(run_id)
            while len(cache) > _CACHED_RUNS:
                cache.popitem(last=False)

    # -- runs ---------------------------------------------------------------------------
    def _fetch(self, run_id: str) -> tuple[Doc, str] | None:
        key = _run_key(run_id)
        got = self._store.get(key)
        if got is None:
            self._drop(run_id)  # deleted by another handle: what this one kept is stale
            return None
        doc = _parse(got[0], key)
        if not isinstance(doc, dict) or not isinstance(doc.get("run"), dict):
            raise StorageError(f"state object {key} is not a run document")
        self._remember(self._docs, run_id, (doc, got[1].etag))
        return doc, got[1].etag

    def create_run(self, run: RunRecord) -> None:
        check_segment(run.run_id, "run id")
        record = run.to_dict()
        index = objindex.entry_key(run.run_id, run.status, run.created_at, run.pipeline)
        doc = {"run": record, "index": index}
        body = dumps(doc, f"run {run.run_id}").encode()
        # The index entry first: a run document must never exist without one.
        self._store.put(index, b"")
        try:
            meta = self._store.put_if_absent(_run_key(run.run_id), body)
        except PreconditionFailedError:
            current = self._fetch(run.run_id)
            if current is not None and current[0].get("index") == index:
                return  # our own write had landed before a retried request saw it
            self._store.delete(index)
            if current is not None and current[0]["run"].get("status") == "queued":
                # Starting a queued run is creating it: keep its submission time and extra.
                queued = current[0]["run"]
                fields = {k: v for k, v in record.items() if k != "run_id"}
                fields["created_at"] = queued.get("created_at", run.created_at)
                fields["extra"] = {**(queued.get("extra") or {}), **run.extra}
                fields["source"] = run.source or queued.get("source") or {}
                self.update_run(run.run_id, **fields)
                return
            raise PreconditionFailedError(f"run {run.run_id} already exists") from None
        self._remember(self._docs, run.run_id, (doc, meta.etag))

    def update_run(self, run_id: str, **fields: Any) -> None:
        check_segment(run_id, "run id")
        check_run_update(fields)
        dumps(fields, f"run {run_id}")
        with self._lock:
            current = self._docs.get(run_id)
        for _ in range(_ROUNDS):
            if current is None:
                current = self._fetch(run_id)
                if current is None:
                    raise NotFoundError(f"run {run_id} not found")
            current = self._update(run_id, fields, *current)
            if current is None:
                return
        raise StorageError(f"run {run_id}: gave up after {_ROUNDS} conflicting updates")

    def _update(
        self, run_id: str, fields: dict[str, Any], doc: Doc, etag: str
    ) -> tuple[Doc, str] | None:
        """One compare-and-swap round; None when it landed, else the fresh document."""
        record = {**doc["run"], **fields}
        old_index = doc.get("index")
        moved = not isinstance(old_index, str) or any(
            record.get(f) != doc["run"].get(f) for f in _INDEXED
        )
        if moved or not isinstance(old_index, str):
            index = objindex.entry_key(
                run_id,
                str(record.get("status")),
                str(record.get("created_at")),
                str(record.get("pipeline")),
            )
        else:
            index = old_index
        new = {"run": record, "index": index}
        if moved:
            self._store.put(index, b"")
        try:
            meta = self._store.put_if_match(_run_key(run_id), dumps(new, "run").encode(), etag)
        except PreconditionFailedError:
            fresh = self._fetch(run_id)
            if moved and fresh is not None and fresh[0].get("index") == index:
                meta_etag = fresh[1]  # ours had landed (a retried request saw its own write)
            else:
                if moved:
                    self._store.delete(index)
                if fresh is None:
                    raise NotFoundError(f"run {run_id} not found") from None
                return fresh
        else:
            meta_etag = meta.etag
        self._remember(self._docs, run_id, (new, meta_etag))
        if moved and isinstance(old_index, str):
            self._store.delete(old_index)
        return None

    def get_run(self, run_id: str) -> RunRecord | None:
        check_segment(run_id, "run id")
        got = self._fetch(run_id)
        return None if got is None else RunRecord.from_dict(got[0]["run"])

    def heartbeat(self, run_id: str, at: str) -> None:
        self.update_run(run_id, heartbeat_at=at)

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        if limit < 1:
            raise UsageError(f"limit must be at least 1, got {limit}")
        start = objindex.after_run(check_segment(cursor, "cursor")) if cursor else None
        candidates = self._candidates(start, pipeline, status, since)
        runs: list[RunRecord] = []
        pending: list[str] = []
        more = False
        for run_id in candidates:
            if len(runs) + len(pending) >= limit:
                runs.extend(self._verified(pending, pipeline, status, since))
                pending = []
                if len(runs) >= limit:
                    # Judged by its index key alone: a crash can leave a stale key, in
                    # which case the next page is empty rather than a run missed here.
                    more = True
                    break
            pending.append(run_id)
        runs.extend(self._verified(pending, pipeline, status, since))
        runs = runs[:limit]
        return RunPage(runs=runs, next_cursor=runs[-1].run_id if more and runs else None)

    def _candidates(
        self, start: str | None, pipeline: str | None, status: str | None, since: str | None
    ) -> Iterator[str]:
        """Run ids whose index keys may match, newest first, each once (lazily listed)."""
        previous = None
        for meta in self._store.list(objindex.INDEX_PREFIX, start_after=start):
            entry = objindex.parse(meta.key)
            if entry is None or entry.run_id == previous:
                continue
            if entry.may_match(pipeline, status, since):
                previous = entry.run_id
                yield entry.run_id

    def _verified(
        self, run_ids: list[str], pipeline: str | None, status: str | None, since: str | None
    ) -> list[RunRecord]:
        out = []
        for got in fetch_all(self._fetch, run_ids):
            if got is None:
                continue  # an index entry whose run document was never written
            run = RunRecord.from_dict(got[0]["run"])
            if (
                (pipeline is None or run.pipeline == pipeline)
                and (status is None or run.status == status)
                and (since is None or run.created_at >= since)
            ):
                out.append(run)
        return out

    # -- plan ---------------------------------------------------------------------------
    def save_plan(self, run_id: str, plan: dict[str, Any]) -> None:
        check_segment(run_id, "run id")
        body = dumps(plan, f"plan of run {run_id}").encode()
        self._store.put(f"runs/{run_id}/plan.json", body)

    def get_plan(self, run_id: str) -> dict[str, Any] | None:
        check_segment(run_id, "run id")
        key = f"runs/{run_id}/plan.json"
        got = self._store.get(key)
        if got is None:
            return None
        plan = _parse(got[0], key)
        if not isinstance(plan, dict):
            raise StorageError(f"state object {key} is not a plan")
        return plan

    # -- nodes --------------------------------------------------------------------------
    def upsert_nodes(self, nodes: list[NodeRecord]) -> None:
        by_run: dict[str, list[dict[str, Any]]] = {}
        for node in nodes:
            check_segment(node.run_id, "run id")
            check_segment(node.node_id, "node id")
            by_run.setdefault(node.run_id, []).append(node.to_dict())
        for run_id, records in by_run.items():
            folder = f"runs/{run_id}/nodes/"
            what = f"nodes of run {run_id}"
            batch = self._logs.append(folder, records, count=1, token=new_token(), what=what)
            with self._lock:
                fold = self._folds.get(run_id)
                if fold is None and batch == 1:  # the run's first batch: this handle knows all
                    fold = _Fold()
                if fold is not None and fold.upto == batch - 1:
                    fold.apply(batch, records)
                    self._folds[run_id] = fold
            if batch % _CHECKPOINT_EVERY == 0:
                self._checkpoint(run_id)

    def _fold(self, run_id: str) -> _Fold:
        with self._lock:
            fold = self._folds.get(run_id)
        if fold is None:
            key = f"runs/{run_id}/nodes.json"
            got = self._store.get(key)
            raw = _parse(got[0], key) if got is not None else {}
            fold = _Fold(int(raw.get("upto", 0)), list(raw.get("nodes", [])))
            # The segment listing restarts above this fold, whatever this handle knew.
            self._logs.forget(f"runs/{run_id}/nodes/")
        for segment in self._logs.read(f"runs/{run_id}/nodes/", fold.upto, floor=fold.upto):
            if segment.first > fold.upto:
                fold.apply(segment.first, segment.records)
        self._remember(self._folds, run_id, fold)
        return fold

    def _checkpoint(self, run_id: str) -> None:
        fold = self._fold(run_id)
        doc = {"upto": fold.upto, "nodes": list(fold.nodes.values())}
        # A plain put: any fold of a prefix of the batches is a correct starting point.
        self._store.put(f"runs/{run_id}/nodes.json", dumps(doc, "nodes").encode())

    def list_nodes(self, run_id: str) -> list[NodeRecord]:
        check_segment(run_id, "run id")
        fold = self._fold(run_id)
        return [NodeRecord.from_dict(n) for n in fold.nodes.values()]

    # -- events -------------------------------------------------------------------------
    def append_events(self, run_id: str, events: list[NewEvent]) -> list[int]:
        return self.append_events_once(run_id, events, new_token())

    def append_events_once(
        self, run_id: str, events: list[NewEvent], token: str, seen_from: int | None = None
    ) -> list[int]:
        """``append_events`` that lands once per ``token``: when an attempt carrying it may
        have landed at seq ``seen_from`` or later (an outbox replay), that one is kept."""
        check_segment(run_id, "run id")
        if not events:
            return []
        records = [
            {"ts": e.ts, "kind": e.kind, "node_id": e.node_id, "data": e.data} for e in events
        ]
        first = self._logs.append(
            f"runs/{run_id}/events/",
            records,
            count=len(records),
            token=token,
            what=f"events of run {run_id}",
            seen_from=seen_from,
        )
        return list(range(first, first + len(records)))

    def next_event_seq(self, run_id: str) -> int | None:
        """The seq this handle expects the run's next event to get, without a request."""
        return self._logs.next_number(f"runs/{run_id}/events/")

    def list_events(self, run_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        check_segment(run_id, "run id")
        out: list[Event] = []
        for segment in self._logs.read(f"runs/{run_id}/events/", after_seq):
            for offset, rec in enumerate(segment.records):
                seq = segment.first + offset
                if seq <= after_seq:
                    continue
                if limit is not None and len(out) >= limit:
                    return out
                out.append(
                    Event(
                        run_id=run_id,
                        seq=seq,
                        ts=rec["ts"],
                        kind=rec["kind"],
                        node_id=rec.get("node_id"),
                        data=rec.get("data") or {},
                    )
                )
        return out

    # -- retention ----------------------------------------------------------------------
    def _drop(self, run_id: str) -> None:
        """Forget what this handle remembers of a run (its document, nodes, segments)."""
        with self._lock:
            self._docs.pop(run_id, None)
            self._folds.pop(run_id, None)
        for folder in (f"runs/{run_id}/events/", f"runs/{run_id}/nodes/"):
            self._logs.forget(folder)

    def delete_run(self, run_id: str) -> bool:
        """The run document first (readers then find no run), then its index entries, then
        the objects under ``runs/<id>/`` and its gates: a crash between two steps leaves
        only objects no reader reaches, and calling again removes them."""
        check_segment(run_id, "run id")
        got = self._fetch(run_id)
        if got is not None:
            run = RunRecord.from_dict(got[0]["run"])
            if run.status not in FINAL_RUN_STATUSES:
                raise not_final_error(run_id, run.status)
            self._store.delete(_run_key(run_id))
        self._drop(run_id)
        for prefix in (objindex.run_prefix(run_id), f"runs/{run_id}/", f"{GATES_PREFIX}{run_id}/"):
            self._store.delete_many([meta.key for meta in self._store.list(prefix)])
        return got is not None

    # -- coordination -------------------------------------------------------------------
    @property
    def gates(self) -> Gates | None:
        """Gates are documents resolved by compare-and-swap: None where the store ignores
        preconditions (two people could both resolve one), probed on first use."""
        return self._gates if self.conditional_writes() else None

    @property
    def groups(self) -> ConcurrencyGroups | None:
        """Like gates: CAS documents, None where the store ignores preconditions."""
        return self._groups if self.conditional_writes() else None

    def conditional_writes(self) -> bool:
        """Whether this store enforces preconditions (probed once per handle)."""
        if self._cas is None:
            self._cas = probe_conditional_writes(self._store)
            if not self._cas:
                warn_once(
                    self._store,
                    f"{self._store.describe()} ignores conditional writes; memoize cannot "
                    "elect a leader there, every runner computes (results are "
                    "content-addressed, nothing is corrupted)",
                )
        return self._cas


class _ObjectMemo(Memo):
    """Memo reservation by compare-and-swap documents; where the store ignores
    preconditions nothing is elected and every runner computes (it is the leader)."""

    def __init__(self, state: ObjectStoreState, docs: MemoDocs) -> None:
        self._state = state
        self._docs = docs

    def acquire(self, key: str, holder: str, lease_seconds: float) -> MemoClaim:
        check_key(key, "memo key")
        if not self._state.conditional_writes():
            return MemoClaim("leader", holder=holder, expires_at=time.time() + lease_seconds)
        return self._docs.acquire(key, holder, lease_seconds)

    def renew(self, key: str, holder: str, lease_seconds: float) -> bool:
        check_key(key, "memo key")
        if not self._state.conditional_writes():
            return True
        return self._docs.renew(key, holder, lease_seconds)

    def complete(self, key: str, holder: str, result: str) -> None:
        check_key(key, "memo key")
        if self._state.conditional_writes():
            self._docs.complete(key, holder, result)

    def release(self, key: str, holder: str) -> None:
        check_key(key, "memo key")
        if self._state.conditional_writes():
            self._docs.release(key, holder)

    def forget(self, key: str) -> None:
        check_key(key, "memo key")
        if self._state.conditional_writes():
            self._docs.forget(key)
