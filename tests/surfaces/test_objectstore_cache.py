"""ObjectStoreCache beyond the conformance suite: it keeps to the cache prefixes of a
bucket it shares with state and logs, skips uploading blobs that exist, and the factory
opens it (and the object-store logs) from a profile spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkwing.surfaces.cache.base import BLOB_PREFIX
from sparkwing.surfaces.cache.content import store_blob_bytes, store_blob_file, upload_outputs
from sparkwing.surfaces.cache.objectstore import ObjectStoreCache
from sparkwing.surfaces.logs.base import LogRecord
from sparkwing.surfaces.logs.objectstore import ObjectStoreLogs
from sparkwing.surfaces.open import open_cache, open_logs
from sparkwing.surfaces.spec import SurfaceSpec
from tests.doubles.counting import CountingObjectStore
from tests.doubles.memory import MemoryObjectStore

from ..objectstores import (
    KINDS,
    SPEC_TYPES,
    create_bucket,
    emulator_env,
    make_store,
    new_bucket_name,
)


def test_cache_never_touches_other_objects_under_its_prefix() -> None:
    store = MemoryObjectStore()
    foreign = ["runs/run-1/events.ndjson", "run-1/build/00000000.ndjson", "memox/y", "binx"]
    for key in foreign:
        store.put(key, b"not the cache's")
    cache = ObjectStoreCache(store)
    cache.put("memo/a", b"1")
    cache.put("bin/b", b"2")
    digest = store_blob_bytes(cache, b"blob")
    assert [info.key for info in cache.list("")] == [BLOB_PREFIX + digest, "bin/b", "memo/a"]
    assert [info.key for info in cache.list("mem")] == ["memo/a"]
    for info in list(cache.list("")):
        assert cache.delete(info.key)
    assert [meta.key for meta in store.list()] == sorted(foreign)


def test_existing_blobs_are_not_uploaded_again(tmp_path: Path) -> None:
    counting = CountingObjectStore(MemoryObjectStore())
    cache = ObjectStoreCache(counting)
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "app.whl").write_bytes(b"wheel" * 1000)
    (tmp_path / "dist" / "README").write_bytes(b"readme")
    first = upload_outputs(cache, tmp_path, ["dist/**"])
    puts_first = counting.counts["put"]
    assert puts_first == 3  # two blobs and the manifest
    assert upload_outputs(cache, tmp_path, ["dist/**"]) == first
    assert counting.counts["put"] == puts_first
    assert store_blob_file(cache, tmp_path / "dist" / "README") == store_blob_bytes(
        cache, b"readme"
    )
    assert counting.counts["put"] == puts_first


def test_stat_and_etags_come_from_the_store() -> None:
    cache = ObjectStoreCache(MemoryObjectStore())
    etag = cache.put_if_absent("memo/doc", b"v1")
    info = cache.stat("memo/doc")
    assert info is not None and info.etag == etag and info.size == 2
    assert cache.get_with_etag("memo/doc") == (b"v1", etag)
    assert cache.describe() == "cache memory://memory/"


@pytest.mark.parametrize("kind", KINDS)
def test_factory_opens_cache_and_logs_on_each_cloud(
    kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bucket = new_bucket_name()
    create_bucket(kind, bucket)
    for name, value in emulator_env(kind).items():
        monkeypatch.setenv(name, value)
    spec = SurfaceSpec(type=SPEC_TYPES[kind], bucket=bucket, prefix="team")
    cache = open_cache(spec)
    logs = open_logs(spec)
    assert isinstance(cache, ObjectStoreCache)
    assert isinstance(logs, ObjectStoreLogs)
    src = tmp_path / "f.bin"
    src.write_bytes(b"artifact")
    digest = store_blob_file(cache, src)
    logs.append("run-1", "build", [LogRecord(ts="t", msg="hello")])
    logs.close()
    cache.close()
    raw = make_store(kind, bucket)
    assert sorted(meta.key for meta in raw.list()) == [
        f"team/{BLOB_PREFIX}{digest}",
        "team/run-1/build/00000000.ndjson",
    ]
    raw.close()
