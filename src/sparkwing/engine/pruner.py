"""Pruning runs by a retention policy, with their logs, their memo entries and the artifacts
no kept run references, journaled so that an interrupted prune is finished later
(``doctor --fix``, the controller's next round).

Order, so a crash at any point leaves nothing a reader would take for good data: the
journal (what is about to go) is written first; then each run's state (the run record goes
first, see ``StateStore.delete_run``), then its logs and memo entries; then the artifacts,
each manifest before its blobs. Finishing a journal repeats every step (each is idempotent)
and checks artifact references again against the runs kept by then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sparkwing import _log
from sparkwing.engine import memo
from sparkwing.engine.prunejournal import Journal, pending_journals
from sparkwing.engine.retention import Policy, Result, all_runs, select
from sparkwing.errors import PreconditionFailedError
from sparkwing.surfaces.cache.base import BLOB_PREFIX, MANIFEST_PREFIX, MEMO_PREFIX, Cache
from sparkwing.surfaces.logs.base import LogStore
from sparkwing.surfaces.spec import SurfaceSpec
from sparkwing.surfaces.state.base import RunRecord, StateStore

log = _log.get("sparkwing.retention")

# Work of this many units or more (runs scanned, runs deleted, objects) reports progress,
# every this many units and at its end.
PROGRESS_EVERY = 100
Progress = Callable[[str, int, int], None]  # (what, done, total)
LogsFor = Callable[[RunRecord], LogStore]


def _tick(progress: Progress | None, what: str, done: int, total: int) -> None:
    if progress is None or total < PROGRESS_EVERY:
        return
    if done % PROGRESS_EVERY == 0 or done == total:
        progress(what, done, total)


# -- artifact references ------------------------------------------------------------------
def _manifest_entries(cache: Cache, digest: str) -> list[tuple[str, int]] | None:
    """(blob digest, size) of a manifest; None when it is absent or unreadable."""
    from sparkwing.surfaces.cache.content import load_manifest

    try:
        entries = load_manifest(cache, digest)
    except Exception as exc:  # a digest that is not one: nothing to follow
        log.warning("manifest %s unreadable while pruning: %s", digest, exc)
        return None
    return None if entries is None else [(e.digest, e.size) for e in entries]


@dataclass
class _Refs:
    manifests: set[str] = field(default_factory=set)
    blobs: set[str] = field(default_factory=set)


def referenced(
    state: StateStore,
    cache: Cache,
    kept: Iterable[RunRecord],
    gone: set[str],
    progress: Progress | None = None,
) -> _Refs:
    """The manifests and blobs the ``kept`` runs' jobs and the memo entries of runs not in
    ``gone`` point at: what a prune must leave in the cache."""
    refs = _Refs()
    kept = list(kept)
    for i, run in enumerate(kept, start=1):
        for node in state.list_nodes(run.run_id):
            if node.artifacts:
                refs.manifests.add(node.artifacts)
        _tick(progress, "checked references of kept runs", i, len(kept))
    # A memo entry is reused by later runs (of any state sharing this cache): its
    # artifacts stay while it does.
    for info in cache.list(MEMO_PREFIX):
        doc = memo.read(cache, info.key.removeprefix(MEMO_PREFIX))
        if doc and doc.get("run_id") not in gone and isinstance(doc.get("artifacts"), str):
            refs.manifests.add(doc["artifacts"])
    for digest in refs.manifests:
        for blob, _size in _manifest_entries(cache, digest) or []:
            refs.blobs.add(blob)
    return refs


# -- pruning ----------------------------------------------------------------------------------
class RecordedLogs:
    """``logs_for`` that finds each run's logs where its record says they went (its
    ``surfaces["logs"]``), else where ``spec_for(run)`` puts them; one store per location."""

    def __init__(self, spec_for: Callable[[RunRecord], SurfaceSpec]) -> None:
        self._spec_for = spec_for
        self._opened: dict[str, LogStore] = {}

    def __call__(self, run: RunRecord) -> LogStore:
        from sparkwing.surfaces.open import open_logs
        from sparkwing.surfaces.spec import SurfaceSpec

        recorded = run.surfaces.get("logs") if isinstance(run.surfaces, dict) else None
        # A controller location needs the current profile's url and token, which records omit.
        if isinstance(recorded, dict) and recorded.get("type") not in (None, "controller"):
            spec = SurfaceSpec.from_record(recorded)
        else:
            spec = self._spec_for(run)
        where = spec.describe()
        if where not in self._opened:
            self._opened[where] = open_logs(spec)
        return self._opened[where]

    def close(self) -> None:
        while self._opened:
            self._opened.popitem()[1].close()


class Pruner:
    """Prunes runs of one state store, with the logs and cache their records point at."""

    def __init__(
        self,
        state: StateStore,
        cache: Cache,
        logs_for: LogsFor,
        progress: Progress | None = None,
    ) -> None:
        self.state = state
        self.cache = cache
        self.logs_for = logs_for
        self.progress = progress
        self._started = False  # whether the journal being carried out deleted anything yet

    def _report(self, what: str, done: int, total: int) -> None:
        _tick(self.progress, what, done, total)

    def prune(
        self, policy: Policy, *, dry_run: bool = False, now: datetime | None = None
    ) -> Result:
        """Finish interrupted prunes of this store, then apply ``policy``."""
        if not dry_run:
            self.finish_interrupted()
        runs = list(all_runs(self.state))
        doomed, kept = select(runs, policy, now or datetime.now(UTC))
        result = Result(runs=doomed, kept=len(kept), dry_run=dry_run)
        if not doomed:
            return result
        gone = {r.run_id for r in doomed}
        manifests: set[str] = set()
        memo_keys: list[str] = []
        for i, run in enumerate(doomed, start=1):
            for node in self.state.list_nodes(run.run_id):
                if node.artifacts:
                    manifests.add(node.artifacts)
                if node.memo_key and node.status != "cached":
                    doc = memo.read(self.cache, node.memo_key)
                    # Only the entry this run computed; a later run may have replaced it.
                    if doc is None or doc.get("run_id") in gone:
                        memo_keys.append(node.memo_key)
            self._report("read jobs of runs to prune", i, len(doomed))
        # Only a run with artifacts makes the (long) reference scan worth it.
        refs = (
            referenced(self.state, self.cache, kept, gone, self.progress) if manifests else _Refs()
        )
        dead_manifests = sorted(manifests - refs.manifests)
        blobs: dict[str, int] = {}
        for digest in dead_manifests:
            for blob, size in _manifest_entries(self.cache, digest) or []:
                if blob not in refs.blobs:
                    blobs[blob] = size
        result.memo = len(set(memo_keys))
        result.manifests = len(dead_manifests)
        result.blobs = len(blobs)
        result.artifact_bytes = sum(blobs.values())
        if dry_run:
            return result
        journal = Journal(
            state=self.state.describe(),
            runs=[
                {"run_id": r.run_id, "pipeline": r.pipeline, "surfaces": r.surfaces} for r in doomed
            ],
            memo=sorted(set(memo_keys)),
            manifests=dead_manifests,
            blobs=sorted(blobs),
        )
        journal.write()
        try:
            result.skipped = self._carry_out(journal, recheck=False)
        except BaseException:
            if not self._started:
                # Refused before anything went (a token without runs.delete, say): nothing
                # to finish, and a later prune must not carry out this policy after all.
                journal.remove()
            raise
        if result.skipped:
            result.runs = [r for r in doomed if r.run_id not in set(result.skipped)]
        log.info(
            "pruned %d run(s) (%s): %d memo entries, %d manifests, %d blobs (%d bytes)",
            len(result.runs),
            policy.describe(),
            result.memo,
            result.manifests,
            result.blobs,
            result.artifact_bytes,
        )
        return result

    def finish_interrupted(self) -> int:
        """Complete every prune of this store that stopped halfway; how many there were."""
        journals = pending_journals(self.state)
        for journal in journals:
            log.info("finishing an interrupted prune of %d run(s)", len(journal.runs))
            self._carry_out(journal, recheck=True)
        return len(journals)

    def _carry_out(self, journal: Journal, *, recheck: bool) -> list[str]:
        """Every deletion of ``journal``, in the safe order; the run ids left alone."""
        skipped: list[str] = []
        self._started = False
        total = len(journal.runs)
        for i, entry in enumerate(journal.runs, start=1):
            run = RunRecord(
                run_id=str(entry["run_id"]),
                pipeline=str(entry.get("pipeline", "")),
                surfaces=dict(entry.get("surfaces") or {}),
            )
            try:
                self.state.delete_run(run.run_id)
            except PreconditionFailedError as exc:
                log.warning("not pruning %s: %s", run.run_id, exc)
                skipped.append(run.run_id)
                continue
            self._started = True
            self.logs_for(run).delete_run(run.run_id)
            self._report("deleted runs", i, total)
        for key in journal.memo:
            self.cache.delete(MEMO_PREFIX + key)
            self.state.memo.forget(key)
        manifests, blobs = set(journal.manifests), set(journal.blobs)
        if (recheck or skipped) and (manifests or blobs):
            # Runs may have started using these since the journal was written.
            gone = {str(e["run_id"]) for e in journal.runs} - set(skipped)
            kept = [r for r in all_runs(self.state) if r.run_id not in gone]
            refs = referenced(self.state, self.cache, kept, gone)
            manifests -= refs.manifests
            blobs -= refs.blobs
        # Manifests before blobs: a manifest never names a blob that is already gone.
        keys = [MANIFEST_PREFIX + d for d in sorted(manifests)]
        keys += [BLOB_PREFIX + d for d in sorted(blobs)]
        for i, key in enumerate(keys, start=1):
            self.cache.delete(key)
            self._report("deleted artifact objects", i, len(keys))
        journal.remove()
        return skipped
