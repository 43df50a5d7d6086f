"""Append-only numbered logs on an object store: each append is one new immutable NDJSON
object ``<folder><first:012d>.ndjson`` created with put-if-absent, so numbering is
gap-free across processes and a long log costs one request per append.

An object's first line is a header ``{"first", "count", "token"}``; the records follow. The
key depends on ``first`` only, so two writers reaching the same number race on one key and
exactly one wins; the loser reads the winner's header and moves past it. The token tells
a writer that an object it finds was its own earlier attempt (a retried request that had
landed), so nothing is appended twice.
"""

from __future__ import annotations

import bisect
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from sparkwing.errors import PreconditionFailedError, StorageError
from sparkwing.surfaces.objectstore.base import ObjectStore

T = TypeVar("T")
R = TypeVar("R")

_DIGITS = 12
_SUFFIX = ".ndjson"
_FETCH_THREADS = 8
_CACHED_LOGS = 64  # logs whose segment lists a handle keeps in memory
_ROUNDS = 1000  # lost races before an append gives up (each loss means another writer won)


def new_token() -> str:
    return os.urandom(8).hex()


def dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise StorageError(f"{what} is not JSON-serializable: {err}") from None


def fetch_all(fn: Callable[[T], R], items: list[T]) -> list[R]:
    """``[fn(i) for i in items]``, a few at a time when there are several (each is a request)."""
    if len(items) < 3:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(min(_FETCH_THREADS, len(items))) as pool:
        return list(pool.map(fn, items))


@dataclass(frozen=True)
class Segment:
    first: int
    count: int
    token: str
    records: list[dict[str, Any]]


def _encode(first: int, token: str, records: list[dict[str, Any]], count: int, what: str) -> bytes:
    head = dumps({"first": first, "count": count, "token": token}, what)
    return ("\n".join([head, *(dumps(r, what) for r in records)]) + "\n").encode()


def _decode(data: bytes, key: str) -> Segment:
    try:
        lines = data.decode().splitlines()
        head = json.loads(lines[0])
        records = [json.loads(line) for line in lines[1:] if line]
        return Segment(int(head["first"]), int(head["count"]), str(head["token"]), records)
    except (ValueError, KeyError, IndexError, TypeError):
        raise StorageError(f"state object {key} is not a valid segment") from None


class _Known:
    """What a handle knows of one log: segment starts (sorted) and decoded segments."""

    def __init__(self) -> None:
        self.firsts: list[int] = []
        self.segments: dict[int, Segment] = {}
        self.listed = False  # the folder was listed at least once
        self.base = 0  # numbers up to here are taken (the log was listed from above them)

    def add(self, first: int, segment: Segment | None = None) -> None:
        if first not in self.segments and (not self.firsts or first > self.firsts[-1]):
            self.firsts.append(first)
        elif first not in self.firsts:
            bisect.insort(self.firsts, first)
        if segment is not None:
            self.segments[first] = segment

    def next_number(self) -> int | None:
        """The number after the last known segment, when that segment has been read."""
        if not self.firsts:
            return self.base + 1 if self.listed else None
        last = self.segments.get(self.firsts[-1])
        return None if last is None else last.first + last.count


class SegmentLogs:
    """Every numbered log of one store; thread-safe, one instance per state handle."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._known: OrderedDict[str, _Known] = OrderedDict()

    def key(self, folder: str, first: int) -> str:
        return f"{folder}{first:0{_DIGITS}d}{_SUFFIX}"

    def _number(self, folder: str, key: str) -> int | None:
        name = key[len(folder) :]
        digits = name[: -len(_SUFFIX)]
        if not name.endswith(_SUFFIX) or len(digits) != _DIGITS or not digits.isdigit():
            return None
        return int(digits)

    def _state(self, folder: str) -> _Known:
        with self._lock:
            known = self._known.get(folder)
            if known is None:
                known = self._known[folder] = _Known()
                while len(self._known) > _CACHED_LOGS:
                    self._known.popitem(last=False)
            self._known.move_to_end(folder)
            return known

    # -- reading ------------------------------------------------------------------------
    def _read(self, folder: str, first: int) -> Segment | None:
        key = self.key(folder, first)
        got = self._store.get(key)
        if got is None:
            return None
        segment = _decode(got[0], key)
        if segment.first != first:
            raise StorageError(f"state object {key} claims to start at {segment.first}")
        return segment

    def refresh(self, folder: str, floor: int = 0) -> _Known:
        """List segments added since this handle last looked (one LIST when none are).

        ``floor``: the caller never needs segments numbered up to it and knows the one
        numbered ``floor`` holds a single number, so a first listing may start above it.
        """
        known = self._state(folder)
        with self._lock:
            if known.firsts:
                after: str | None = self.key(folder, known.firsts[-1])
            elif floor > known.base and not known.listed:
                known.base = floor
                after = self.key(folder, floor)
            else:
                after = self.key(folder, known.base) if known.base else None
        found = []
        for meta in self._store.list(folder, start_after=after):
            number = self._number(folder, meta.key)
            if number is not None:
                found.append(number)
        with self._lock:
            for number in found:
                known.add(number)
            known.listed = True
        return known

    def _load(self, folder: str, known: _Known, firsts: list[int]) -> None:
        with self._lock:
            missing = [f for f in firsts if f not in known.segments]
        loaded = fetch_all(lambda f: (f, self._read(folder, f)), missing)
        with self._lock:
            for first, segment in loaded:
                if segment is not None:
                    known.add(first, segment)

    def read(self, folder: str, after: int = 0, floor: int = 0) -> Iterator[Segment]:
        """Segments that may hold numbers above ``after``, in order, fetched a batch at a time
        (``floor`` as for :meth:`refresh`)."""
        known = self.refresh(folder, floor)
        with self._lock:
            firsts = list(known.firsts)
        # A segment is needed unless the next one starts at or below ``after`` + 1.
        wanted = [
            f for i, f in enumerate(firsts) if i + 1 == len(firsts) or firsts[i + 1] > after + 1
        ]
        step = _FETCH_THREADS * 2
        for start in range(0, len(wanted), step):
            batch = wanted[start : start + step]
            self._load(folder, known, batch)
            for first in batch:
                with self._lock:
                    segment = known.segments.get(first)
                if segment is not None:
                    yield segment

    # -- appending ----------------------------------------------------------------------
    def _discover(self, folder: str) -> int:
        known = self.refresh(folder)
        while True:
            with self._lock:
                number = known.next_number()
                last = known.firsts[-1] if known.firsts else None
            if number is not None:
                return number
            assert last is not None
            self._load(folder, known, [last])
            with self._lock:
                if last not in known.segments:  # listed but gone: never happens, do not spin
                    raise StorageError(f"state object {self.key(folder, last)} vanished")

    def next_number(self, folder: str) -> int | None:
        """The number this handle would try next, without a request (None: unknown)."""
        with self._lock:
            known = self._known.get(folder)
            return None if known is None else known.next_number()

    def append(
        self,
        folder: str,
        records: list[dict[str, Any]],
        *,
        count: int,
        token: str,
        what: str,
        seen_from: int | None = None,
    ) -> int:
        """Append one segment of ``count`` numbers; returns its first number.

        ``seen_from``: an earlier attempt with this token may have landed at this number
        or later (an outbox replay); look there first and return that attempt's number.
        """
        if seen_from is not None:
            found = self.find_token(folder, token, seen_from)
            if found is not None:
                return found
        known = self._state(folder)
        number = self.next_number(folder) or self._discover(folder)
        for _ in range(_ROUNDS):
            key = self.key(folder, number)
            body = _encode(number, token, records, count, what)
            try:
                self._store.put_if_absent(key, body)
            except PreconditionFailedError:
                winner = self._read(folder, number)
                if winner is None:
                    continue  # refused, yet absent: a store mid-delete; try the number again
                with self._lock:
                    known.add(number, winner)
                if winner.token == token:
                    return number  # our own earlier attempt had landed
                number = self._discover(folder)
                continue
            with self._lock:
                known.add(number, Segment(number, count, token, records))
            return number
        raise StorageError(f"{what}: gave up after {_ROUNDS} conflicting appends")

    def find_token(self, folder: str, token: str, start: int) -> int | None:
        """The first number of the segment carrying ``token`` at ``start`` or later."""
        known = self.refresh(folder)
        with self._lock:
            firsts = [f for f in known.firsts if f >= start]
        self._load(folder, known, firsts)
        with self._lock:
            for first in firsts:
                segment = known.segments.get(first)
                if segment is not None and segment.token == token:
                    return first
        return None

    def forget(self, folder: str) -> None:
        with self._lock:
            self._known.pop(folder, None)
