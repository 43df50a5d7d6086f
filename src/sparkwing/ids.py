"""Validation of ids and key segments shared by every surface, and run id generation."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from sparkwing.errors import InvalidKeyError

_RUN_ID_RE = re.compile(r"^run-\d{8}-\d{6}-[0-9a-z]{4,}$")
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_run_id(now: datetime | None = None, seed: str | None = None) -> str:
    """``run-YYYYMMDD-HHMMSS-mmxxxx`` in UTC: ``mm`` is the millisecond in base 36, so lexical
    order is creation order to the millisecond; ``xxxx`` is random, so ids never collide.

    With ``seed`` (and ``now``), ``xxxx`` comes from the seed instead: the same event handled
    twice (a webhook redelivered after a crash) gives the same id, so it queues one run."""
    moment = now or datetime.now(UTC)
    ms = moment.microsecond // 1000
    if seed is None:
        # os.urandom rather than the secrets module: the same randomness, a cheaper import.
        raw = os.urandom(4)
    else:
        import hashlib

        raw = hashlib.sha256(seed.encode()).digest()[:6]
    suffix = "".join(_ALPHABET[b % 36] for b in raw)
    return f"run-{moment:%Y%m%d-%H%M%S}-{_ALPHABET[ms // 36]}{_ALPHABET[ms % 36]}{suffix}"


def is_run_id(value: str) -> bool:
    return bool(_RUN_ID_RE.match(value))


# What every valid segment matches, tried first: a run checks each of its job ids several
# times per job, and the regular expression costs a fraction of the loop below.
_PLAIN_SEGMENT = re.compile(r"[^\x00-\x1f\x7f/\\]{1,255}")


def check_segment(value: str, what: str = "key segment") -> str:
    """Reject what could escape a prefix or corrupt a path: ``..``, ``/``, ``\\``, NUL, controls."""
    if _PLAIN_SEGMENT.fullmatch(value) and value not in (".", ".."):
        return value
    if not value:
        raise InvalidKeyError(f"{what} must not be empty")
    if value in (".", "..") or "/" in value or "\\" in value:
        raise InvalidKeyError(f"{what} {value!r} must not contain '/', '\\\\' or be '.' / '..'")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidKeyError(f"{what} {value!r} must not contain NUL or control characters")
    if len(value) > 255:
        raise InvalidKeyError(f"{what} is longer than 255 characters")
    return value


def check_key(key: str, what: str = "key") -> str:
    """A slash-separated key whose every segment passes :func:`check_segment`."""
    if not key or key.startswith("/") or key.endswith("/"):
        raise InvalidKeyError(f"{what} {key!r} must be a relative path without a trailing '/'")
    for part in key.split("/"):
        check_segment(part, what)
    return key


def check_prefix(prefix: str, what: str = "prefix") -> str:
    """Like :func:`check_key` but allows the empty prefix and a trailing slash."""
    stripped = prefix.rstrip("/")
    if stripped:
        check_key(stripped, what)
    return prefix


LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:=-]{0,62}$"
_LABEL_RE = re.compile(LABEL_PATTERN)


def check_labels(labels: Iterable[str], what: str = "label") -> list[str]:
    """Runner labels (``linux``, ``gpu``, ``arch=arm64``): letters, digits and ``._:=-``,
    starting with a letter or digit, at most 63 characters; returned sorted, without repeats."""
    out = set()
    for label in labels:
        if not isinstance(label, str) or not _LABEL_RE.match(label):
            raise InvalidKeyError(
                f"{what} {label!r} must be letters, digits and . _ : = - (starting with a "
                "letter or digit, at most 63 characters)"
            )
        out.add(label)
    return sorted(out)
