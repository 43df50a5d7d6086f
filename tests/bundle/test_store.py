"""The local bundle cache: look-up order, hit counts, LRU pruning with a size cap, and bundles
in use surviving a prune."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sparkwing.bundle.resolve import Bundle, open_bundle
from sparkwing.bundle.store import LocalStore
from sparkwing.surfaces.spec import SurfaceSpec


def _bundle(project: Path, store: LocalStore, cache: Path, text: str) -> Bundle:
    (project / ".sparkwing").mkdir(parents=True, exist_ok=True)
    (project / ".sparkwing" / "p.py").write_text(text)
    spec = SurfaceSpec(type="filesystem", path=str(cache))
    messages: list[str] = []
    with open_bundle(project / ".sparkwing", spec, store=store, warn=messages.append) as bundle:
        pass
    assert messages == []
    return bundle


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "bundles")


def test_look_up_order_is_local_then_shared_then_build(tmp_path: Path, store: LocalStore) -> None:
    cache = tmp_path / "cache"
    built = _bundle(tmp_path / "p", store, cache, "A = 1\n")
    assert built.source == "built" and not built.isolated and built.sources_dir is None
    assert _bundle(tmp_path / "p", store, cache, "A = 1\n").source == "local"
    other = LocalStore(tmp_path / "other-machine")
    assert _bundle(tmp_path / "p", other, cache, "A = 1\n").source == "remote"
    assert [e.hits for e in store.entries()] == [1]
    assert [e.source for e in other.entries()] == ["remote"]


def test_prune_removes_least_recently_used_first_down_to_the_cap(
    tmp_path: Path, store: LocalStore
) -> None:
    cache = tmp_path / "cache"
    keys = [_bundle(tmp_path / f"p{i}", store, cache, f"A = {i}\n" * 50).key for i in range(3)]
    # Make the use order explicit: keys[1] oldest, then keys[2], keys[0] most recent.
    for key, age in zip(keys, (10.0, 1000.0, 100.0), strict=True):
        when = time.time() - age
        os.utime(store.hits_path(key), (when, when))
    sizes = {e.key: e.size for e in store.entries()}
    removed, busy = store.prune(max_bytes=sizes[keys[0]])
    assert [e.key for e in removed] == [keys[1], keys[2]]
    assert busy == []
    assert [e.key for e in store.entries()] == [keys[0]]
    assert (cache / "bin" / keys[1]).is_file()  # the shared store is never pruned

    removed, _ = store.prune(older_than=3600.0)
    assert removed == []
    removed, _ = store.prune(older_than=1.0)
    assert [e.key for e in removed] == [keys[0]]


def test_a_bundle_in_use_survives_prune(tmp_path: Path, store: LocalStore) -> None:
    key = _bundle(tmp_path / "p", store, tmp_path / "cache", "A = 1\n").key
    with store.locked(key, "use", shared=True):
        removed, busy = store.prune(max_bytes=0)
    assert removed == [] and [e.key for e in busy] == [key]
    assert store.object_path(key).is_file()
    removed, busy = store.prune(max_bytes=0)
    assert [e.key for e in removed] == [key] and busy == []
    assert not store.object_path(key).exists()
