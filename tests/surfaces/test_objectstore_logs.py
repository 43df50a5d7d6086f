"""ObjectStoreLogs beyond the conformance suite: chunking into a bounded number of
objects, the time-bounded background upload that lets another reader follow a silent job,
the chunk layout, and what happens when uploads fail."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from sparkwing.errors import StorageError
from sparkwing.surfaces.logs.base import LogQuery, LogRecord
from sparkwing.surfaces.logs.filesystem import encode_records
from sparkwing.surfaces.logs.objectstore import FLUSH_BYTES, ObjectStoreLogs, encode_ndjson
from sparkwing.surfaces.objectstore.base import ObjectStore
from tests.doubles.counting import CountingObjectStore
from tests.doubles.memory import MemoryObjectStore

from ..objectstores import KINDS, bucket_store, make_store

RUN = "run-20260301-120000-abcd"


def records(n: int, start: int = 0) -> list[LogRecord]:
    return [
        LogRecord(ts=f"2026-03-01T12:00:{i % 60:02d}Z", msg=f"line {i} compiling module_{i % 97}")
        for i in range(start, start + n)
    ]


def chunk_keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [meta.key for meta in store.list(prefix)]


def make_store_like(store: ObjectStore) -> ObjectStore:
    """A second adapter on the same bucket and prefix, as another process would open."""
    scheme = store.describe().split("://", 1)[0]
    kind = {"s3": "s3", "gcs": "gcs", "azure-blob": "azure"}[scheme]
    return make_store(kind, getattr(store, "bucket", ""), "team/logs")


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest) -> Iterator[ObjectStore]:
    with bucket_store(str(request.param), "team/logs") as opened:
        yield opened


def test_200k_lines_make_a_bounded_number_of_objects(store: ObjectStore) -> None:
    counting = CountingObjectStore(store)
    logs = ObjectStoreLogs(counting)
    batch = 1000  # the engine appends what arrived since its last loop turn
    for start in range(0, 200_000, batch):
        logs.append(RUN, "build", records(batch, start))
    logs.flush()
    keys = chunk_keys(store, f"{RUN}/build/")
    total = sum(meta.size for meta in store.list(f"{RUN}/build/"))
    # Never one object per line or per batch: about one per 256 KiB (twice that leaves room
    # for time-bound uploads on a slow machine), far fewer than the 200 batches.
    assert 1 <= len(keys) <= 2 * (total // FLUSH_BYTES) + 2 < 200
    assert counting.counts["put"] == len(keys)
    assert keys == [f"{RUN}/build/{i:08d}.ndjson" for i in range(len(keys))]
    got = logs.read(RUN, "build")
    assert len(got) == 200_000
    assert got[:2] == records(2) and got[-2:] == records(2, start=199_998)
    assert logs.read(RUN, "build", LogQuery(tail=2)) == records(2, start=199_998)
    logs.close()


def test_follow_from_another_reader_sees_a_silent_jobs_lines(store: ObjectStore) -> None:
    """The writer appends and then says nothing (no flush): the time bound alone must put
    the lines where a follower on another machine (its own adapter) can see them."""
    writer = ObjectStoreLogs(store, flush_seconds=0.5)
    reader = ObjectStoreLogs(make_store_like(store))
    done = threading.Event()
    seen: list[str] = []
    got_three = threading.Event()

    def follow() -> None:
        for rec in reader.follow(RUN, "deploy", done.is_set, poll_interval=0.05):
            seen.append(rec.msg)
            if len(seen) == 3:
                got_three.set()

    thread = threading.Thread(target=follow)
    thread.start()
    try:
        writer.append(RUN, "deploy", records(3))
        # Generous: the bound is 0.5 s plus one poll; a slow machine must not fail here.
        assert got_three.wait(30), "lines never reached the follower without a flush"
        writer.append(RUN, "deploy", records(2, start=3))
        writer.flush()
    finally:
        done.set()
        thread.join(30)
    assert seen == [f"line {i} compiling module_{i}" for i in range(5)]
    writer.close()


def test_chunks_continue_across_writers(store: ObjectStore) -> None:
    first = ObjectStoreLogs(store)
    first.append(RUN, "test", records(2))
    first.close()
    second = ObjectStoreLogs(make_store_like(store))  # the next attempt, another process
    second.append(RUN, "test", records(2, start=2))
    second.flush()
    assert chunk_keys(store, f"{RUN}/test/") == [
        f"{RUN}/test/00000000.ndjson",
        f"{RUN}/test/00000001.ndjson",
    ]
    assert [r.msg.split()[1] for r in second.read(RUN, "test")] == ["0", "1", "2", "3"]
    second.close()


# -- in-process fakes: sizes, failures ---------------------------------------------------
def test_large_appends_split_at_line_boundaries() -> None:
    store = MemoryObjectStore()
    logs = ObjectStoreLogs(store, max_object_bytes=4096)
    batch = records(500)
    logs.append(RUN, "build", batch)
    logs.flush()
    sizes = [meta.size for meta in store.list(f"{RUN}/build/")]
    assert len(sizes) > 1
    assert all(size <= 4096 for size in sizes)
    for meta in store.list(f"{RUN}/build/"):
        got = store.get(meta.key)
        assert got is not None and got[0].endswith(b"\n")
    assert logs.read(RUN, "build") == batch


def test_lines_after_an_idle_spell_still_go_up_on_time() -> None:
    store = MemoryObjectStore()
    logs = ObjectStoreLogs(store, flush_seconds=0.1)
    logs.append(RUN, "build", records(1))
    logs.flush()  # the worker is now idle, waiting for work without a deadline
    logs.append(RUN, "build", records(1, start=1))  # and then nothing: a silent job
    deadline = time.monotonic() + 30  # normally one flush interval
    while len(list(store.list(f"{RUN}/build/"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(list(store.list(f"{RUN}/build/"))) == 2, "never uploaded without a flush"
    assert logs.read(RUN, "build") == records(2)
    logs.close()


def test_streams_interleaved_keep_their_order() -> None:
    logs = ObjectStoreLogs(MemoryObjectStore(), flush_bytes=512)
    for start in range(0, 300, 10):
        for node in ("a", "b", "c"):
            logs.append(RUN, node, records(10, start))
    logs.flush()
    for node in ("a", "b", "c"):
        assert logs.read(RUN, node) == records(300)
    assert logs.nodes(RUN) == ["a", "b", "c"]


def test_failed_upload_is_a_clear_error_and_loses_nothing() -> None:
    store = MemoryObjectStore()
    logs = ObjectStoreLogs(store)
    logs.append(RUN, "build", records(3))
    logs.flush()
    store.fail_requests = True
    logs.append(RUN, "build", records(2, start=3))
    with pytest.raises(StorageError) as info:
        logs.flush()
    message = str(info.value)
    assert f"log stream {RUN}/build could not be uploaded" in message
    assert "memory://" in message and "\n" not in message
    with pytest.raises(StorageError):
        logs.append(RUN, "build", records(1, start=5))  # the failure is not forgotten
    store.fail_requests = False
    assert len(logs.read(RUN, "build")) == 3  # what landed is whole; nothing half-written
    logs.flush()  # the buffered chunk goes up once the store is back
    logs.append(RUN, "build", records(1, start=5))
    logs.flush()
    assert logs.read(RUN, "build") == records(6)
    logs.close()


def test_delete_run_drops_unsent_records() -> None:
    store = MemoryObjectStore()
    logs = ObjectStoreLogs(store, flush_seconds=3600)
    logs.append(RUN, "build", records(2))
    logs.append("run-keep", "build", records(1))
    logs.delete_run(RUN)
    logs.flush()
    assert chunk_keys(store) == ["run-keep/build/00000000.ndjson"]
    logs.append(RUN, "build", records(1, start=7))
    logs.flush()
    assert [r.msg for r in logs.read(RUN, "build")] == ["line 7 compiling module_7"]


def test_unrelated_objects_under_the_prefix_are_ignored() -> None:
    store = MemoryObjectStore()
    logs = ObjectStoreLogs(store)
    logs.append(RUN, "build", records(1))
    logs.flush()
    store.put(f"{RUN}/build/notes.txt", b"not a chunk")
    store.put(f"{RUN}/build/sub/00000009.ndjson", b'{"ts":"t","msg":"nested"}\n')
    store.put(f"{RUN}/stray.ndjson", b"{}")
    assert [r.msg for r in logs.read(RUN, "build")] == ["line 0 compiling module_0"]
    assert logs.nodes(RUN) == ["build"]


@pytest.mark.parametrize(
    "msg",
    ["plain", "héllo ✓ 日本語 🚀", 'q"uote \\ back', "multi\nline\r\n", "\x00\x1b[31m\x7f", ""],
)
def test_fast_encoder_matches_the_shared_one(msg: str) -> None:
    recs = [LogRecord(ts="2026-03-01T12:00:00Z", msg=msg, stream="stderr")]
    assert encode_ndjson(recs) == encode_records(recs)
