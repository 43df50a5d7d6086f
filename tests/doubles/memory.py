"""An in-process object store for fault tests: it can ignore preconditions (like an
S3-compatible endpoint that does not enforce them) or fail every request (an outage).

Never a stand-in for the real-server conformance runs.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from sparkwing.errors import PreconditionFailedError
from sparkwing.surfaces.objectstore.base import ObjectMeta, ObjectStore
from sparkwing.surfaces.objectstore.common import (
    ErrorContext,
    check_list_prefix,
    check_object_key,
    write_atomically,
)


class MemoryObjectStore(ObjectStore):
    """Objects in a dict, keys kept sorted; thread-safe.

    ``ignore_preconditions``: put_if_absent / put_if_match always write (and succeed).
    ``fail_requests``: every operation raises StorageError, as an unreachable store does.
    Both are plain attributes a test may flip at any time.
    """

    def __init__(
        self,
        name: str = "memory",
        *,
        ignore_preconditions: bool = False,
        fail_requests: bool = False,
    ) -> None:
        self.name = name
        self.ignore_preconditions = ignore_preconditions
        self.fail_requests = fail_requests
        self.requests = 0  # operations attempted, failed ones included
        self._objects: dict[str, tuple[bytes, ObjectMeta]] = {}
        self._keys: list[str] = []
        self._version = 0
        self._lock = threading.Lock()
        self._errors = ErrorContext(f"memory://{name}/")

    def _enter(self, action: str, key: str | None) -> None:
        self.requests += 1
        if self.fail_requests:
            raise self._errors.error(action, key, "endpoint unreachable (simulated outage)")

    def _store(self, key: str, data: bytes) -> ObjectMeta:
        self._version += 1
        meta = ObjectMeta(key=key, size=len(data), etag=f'"{self._version}"', modified=time.time())
        if key not in self._objects:
            bisect.insort(self._keys, key)
        self._objects[key] = (bytes(data), meta)
        return meta

    # -- reads -----------------------------------------------------------------------
    def get(self, key: str) -> tuple[bytes, ObjectMeta] | None:
        check_object_key(key)
        with self._lock:
            self._enter("read", key)
            return self._objects.get(key)

    def get_range(self, key: str, start: int, end: int | None = None) -> bytes | None:
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range [{start}, {end})")
        got = self.get(key)
        return None if got is None else got[0][start:end]

    def head(self, key: str) -> ObjectMeta | None:
        got = self.get(key)
        return None if got is None else got[1]

    def get_file(self, key: str, dest: Path) -> ObjectMeta | None:
        got = self.get(key)
        if got is None:
            return None
        data, meta = got

        def fill(fh: BinaryIO) -> None:
            fh.write(data)

        write_atomically(Path(dest), fill)
        return meta

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectMeta]:
        check_list_prefix(prefix, start_after)
        with self._lock:
            self._enter("list", prefix or "/")
            start = bisect.bisect_left(self._keys, prefix)
            if start_after is not None:
                start = max(start, bisect.bisect_right(self._keys, start_after))
            found = []
            for key in self._keys[start:]:
                if not key.startswith(prefix):
                    break
                found.append(self._objects[key][1])
        return iter(found)

    # -- writes ----------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> ObjectMeta:
        check_object_key(key)
        with self._lock:
            self._enter("write", key)
            return self._store(key, data)

    def put_file(self, key: str, src: Path) -> ObjectMeta:
        check_object_key(key)
        return self.put(key, Path(src).read_bytes())

    def put_if_absent(self, key: str, data: bytes) -> ObjectMeta:
        check_object_key(key)
        with self._lock:
            self._enter("create", key)
            if key in self._objects and not self.ignore_preconditions:
                raise PreconditionFailedError(f"object {key!r} already exists")
            return self._store(key, data)

    def put_if_match(self, key: str, data: bytes, etag: str) -> ObjectMeta:
        check_object_key(key)
        with self._lock:
            self._enter("replace", key)
            current = self._objects.get(key)
            matches = current is not None and current[1].etag == etag
            if not matches and not self.ignore_preconditions:
                raise PreconditionFailedError(f"object {key!r} changed or does not exist")
            return self._store(key, data)

    def delete(self, key: str) -> bool:
        check_object_key(key)
        with self._lock:
            self._enter("delete", key)
            if self._objects.pop(key, None) is None:
                return False
            self._keys.remove(key)
            return True

    def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.delete(key)

    def describe(self) -> str:
        return f"memory://{self.name}/"
