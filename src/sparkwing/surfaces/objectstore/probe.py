"""The one-time probe that tells whether an object store enforces conditional writes.

Some S3-compatible endpoints accept ``If-None-Match`` / ``If-Match`` and ignore them; on
such a store compare-and-swap elects nobody, so callers must know before relying on it.
The answer is kept per store handle for the life of the process.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable

from sparkwing import _log
from sparkwing.errors import NotSupportedError, PreconditionFailedError
from sparkwing.surfaces.objectstore.base import ObjectStore

PROBE_PREFIX = "coord/probe/"

log = _log.get(__name__)

_lock = threading.Lock()
_answers: weakref.WeakKeyDictionary[ObjectStore, bool] = weakref.WeakKeyDictionary()
_warned: set[str] = set()


def _refused(write: Callable[[], object]) -> bool:
    try:
        write()
    except PreconditionFailedError:
        return True
    return False


def _probe(store: ObjectStore) -> bool:
    # A random key: concurrent probes (eight runners starting at once) never interfere.
    key = f"{PROBE_PREFIX}{os.urandom(8).hex()}"
    try:
        first = store.put_if_absent(key, b"first")
        try:
            absent_enforced = _refused(lambda: store.put_if_absent(key, b"second"))
            # A real stale etag (some stores parse them): the one the first write got.
            store.put(key, b"third")
            match_enforced = _refused(lambda: store.put_if_match(key, b"fourth", first.etag))
        finally:
            store.delete(key)
    except NotSupportedError:
        return False
    return absent_enforced and match_enforced


def probe_conditional_writes(store: ObjectStore, *, refresh: bool = False) -> bool:
    """True when ``store`` refuses a losing put-if-absent and a stale put-if-match.

    Costs five requests the first time per store handle, none afterwards.
    StorageError (unreachable) propagates and nothing is remembered.
    """
    with _lock:
        known = None if refresh else _answers.get(store)
    if known is not None:
        return known
    answer = _probe(store)
    with _lock:
        _answers[store] = answer
    return answer


def warn_once(store: ObjectStore, message: str) -> None:
    """Log ``message`` as a warning once per store location and process."""
    location = store.describe()
    with _lock:
        if location in _warned:
            return
        _warned.add(location)
    log.warning("%s", message)
