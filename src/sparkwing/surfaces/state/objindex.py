"""The run index of object-store state: one small key per run under ``index/`` whose lexical
order is newest run first, carrying the filterable fields so listing reads no run documents
it does not return.

Key: ``index/<inverted run id>~/<status>.<created_at>.<pipeline>.<epoch>``. The inverted id is
the run id's UTF-8 bytes complemented (255 - b) in hex, then ``~``: that sorts after every hex
digit, so a run id that is a prefix of another still sorts after it (it is the older one).
Fields are base64url without padding (``~`` when too long to keep in a key, meaning "read
the run to know"); ``epoch`` is random per write, so a key is never recreated once deleted.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

INDEX_PREFIX = "index/"
_UNKNOWN = "~"
_MAX_META = 200  # key segments stay under the 255 characters check_segment allows


@dataclass(frozen=True)
class IndexEntry:
    key: str
    run_id: str
    status: str | None  # None: not in the key, read the run
    created_at: str | None
    pipeline: str | None

    def may_match(self, pipeline: str | None, status: str | None, since: str | None) -> bool:
        """False only when the key proves the run does not match the filters."""
        if pipeline is not None and self.pipeline is not None and self.pipeline != pipeline:
            return False
        if status is not None and self.status is not None and self.status != status:
            return False
        return not (since is not None and self.created_at is not None and self.created_at < since)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str | None:
    if text == _UNKNOWN:
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def inverted(run_id: str) -> str:
    return bytes(255 - b for b in run_id.encode()).hex() + "~"


def run_prefix(run_id: str) -> str:
    """Every index key of ``run_id`` starts with this."""
    return f"{INDEX_PREFIX}{inverted(run_id)}/"


def after_run(run_id: str) -> str:
    """A ``start_after`` that skips ``run_id``'s keys and every newer run's."""
    # "0" sorts after "/", and only "/" ever follows the "~" of an inverted id.
    return f"{INDEX_PREFIX}{inverted(run_id)}0"


def entry_key(run_id: str, status: str, created_at: str, pipeline: str) -> str:
    fields = [_b64(status), _b64(created_at), _b64(pipeline)]
    for i in (2, 1, 0):  # drop the longest-lived fields last: pipeline first, then time
        if sum(map(len, fields)) <= _MAX_META:
            break
        fields[i] = _UNKNOWN
    epoch = os.urandom(4).hex()
    return run_prefix(run_id) + ".".join([*fields, epoch])


def parse(key: str) -> IndexEntry | None:
    """The entry a listed key stands for; None for a key this layout did not write."""
    if not key.startswith(INDEX_PREFIX):
        return None
    inv, sep, meta = key[len(INDEX_PREFIX) :].partition("~/")
    parts = meta.split(".")
    if not sep or len(parts) != 4:
        return None
    try:
        run_id = bytes(255 - b for b in bytes.fromhex(inv)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    status, created_at, pipeline = (_unb64(p) for p in parts[:3])
    return IndexEntry(key, run_id, status, created_at, pipeline)
