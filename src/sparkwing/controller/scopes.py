"""Token scopes: what each allows, and parsing a ``--scope a,b`` list.

``runs.approve`` (resolving approvals and pauses) and ``runs.delete`` (pruning history) are
deliberately not implied by ``runs.write``: a runner's own token must not be able to approve
the gate its run waits at, nor erase the record of what it did. ``runs.trigger`` only lets a
CI system announce a push (the generic webhook).
"""

from __future__ import annotations

from sparkwing.errors import UsageError

ADMIN = "admin"
SCOPES: tuple[str, ...] = (
    "runs.read",
    "runs.write",
    "runs.approve",
    "runs.trigger",
    "runs.delete",
    "logs.read",
    "logs.write",
    "cache.read",
    "cache.write",
    "secrets.read",
    "secrets.write",
    ADMIN,
)


def parse_scopes(text: str) -> tuple[str, ...]:
    """``runs.read,logs.write`` -> sorted unique scopes; an unknown one is a UsageError."""
    found = sorted({part.strip() for part in text.split(",") if part.strip()})
    if not found:
        raise UsageError(f"give at least one scope (one of: {', '.join(SCOPES)})")
    unknown = [s for s in found if s not in SCOPES]
    if unknown:
        raise UsageError(f"unknown scope {unknown[0]!r} (expected one of: {', '.join(SCOPES)})")
    return tuple(found)


def allows(granted: tuple[str, ...] | list[str], needed: str) -> bool:
    """Whether ``granted`` covers ``needed``; admin covers everything."""
    return ADMIN in granted or needed in granted
