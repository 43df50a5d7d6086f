"""The in-process fault-test store: its precondition and outage switches, and request
counting."""

from __future__ import annotations

import pytest

from sparkwing.errors import PreconditionFailedError, StorageError
from tests.doubles.counting import CountingObjectStore
from tests.doubles.memory import MemoryObjectStore


def test_enforces_preconditions_by_default() -> None:
    store = MemoryObjectStore()
    first = store.put_if_absent("k", b"1")
    with pytest.raises(PreconditionFailedError):
        store.put_if_absent("k", b"2")
    second = store.put_if_match("k", b"3", first.etag)
    with pytest.raises(PreconditionFailedError):
        store.put_if_match("k", b"4", first.etag)
    got = store.get("k")
    assert got is not None and got == (b"3", second)


def test_ignoring_preconditions_lets_every_writer_win() -> None:
    store = MemoryObjectStore(ignore_preconditions=True)
    first = store.put_if_absent("k", b"1")
    store.put_if_absent("k", b"2")  # accepted, like an endpoint that drops If-None-Match
    store.put_if_match("k", b"3", first.etag)  # stale, accepted anyway
    store.put_if_match("ghost", b"4", "nonsense")
    assert store.get_range("k", 0) == b"3"
    assert store.get_range("ghost", 0) == b"4"


def test_failing_requests_is_an_outage_until_switched_back() -> None:
    store = MemoryObjectStore("outage")
    store.put("a", b"1")
    store.fail_requests = True
    for call in (lambda: store.get("a"), lambda: store.put("b", b"2"), lambda: list(store.list())):
        with pytest.raises(StorageError, match=r"^store memory://outage/: cannot .*unreachable"):
            call()
    store.fail_requests = False
    assert [m.key for m in store.list()] == ["a"]


def test_listing_order_prefix_and_start_after() -> None:
    store = MemoryObjectStore()
    for key in ("b/2", "a", "b/1", "b/10", "c"):
        store.put(key, b"")
    assert [m.key for m in store.list("b/")] == ["b/1", "b/10", "b/2"]
    assert [m.key for m in store.list("", start_after="b/10")] == ["b/2", "c"]


def test_counting_store_counts_requests_and_list_pages() -> None:
    store = CountingObjectStore(MemoryObjectStore())
    for i in range(2500):
        store.put(f"k/{i:05d}", b"")
    assert store.counts["put"] == 2500
    store.reset()
    assert len(list(store.list("k/"))) == 2500
    assert store.get("k/00001") is not None
    assert store.head("missing") is None
    assert dict(store.counts) == {"list": 3, "get": 1, "head": 1}
    assert store.total == 5
