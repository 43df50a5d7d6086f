"""Memoized results as documents in the cache surface (``memo/<key>``), with a ttl."""

from __future__ import annotations

import json
import time
from typing import Any

from sparkwing.engine.clock import now_iso
from sparkwing.surfaces.cache.base import Cache


def full_key(pipeline: str, job_id: str, user_key: Any) -> str:
    """Scope a user's key to its pipeline and job, so two jobs never share a result."""
    raw = json.dumps([pipeline, job_id, user_key], sort_keys=True, default=str)
    import hashlib  # loads OpenSSL: only once something is hashed

    return hashlib.sha256(raw.encode()).hexdigest()


def read(cache: Cache, key: str) -> dict[str, Any] | None:
    """The stored document, expired or not; None when absent or unreadable."""
    raw = cache.get(f"memo/{key}")
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def load(cache: Cache, key: str) -> dict[str, Any] | None:
    """The stored result, or None when absent, unreadable or expired."""
    doc = read(cache, key)
    if doc is None:
        return None
    expires = doc.get("expires_at")
    if isinstance(expires, int | float) and expires < time.time():
        return None
    return doc


def store(cache: Cache, key: str, doc: dict[str, Any], ttl: float | None) -> None:
    body = {
        **doc,
        "key": key,
        "created_at": now_iso(),
        "expires_at": time.time() + ttl if ttl else None,
    }
    cache.put(f"memo/{key}", json.dumps(body, sort_keys=True).encode())
