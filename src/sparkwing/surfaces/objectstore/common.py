"""Helpers every object-store adapter shares: key prefixing, retry settings, one-line errors
and atomic downloads into a local file."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sparkwing.errors import StorageError
from sparkwing.ids import check_key, check_prefix
from sparkwing.retry import RetryPolicy as Policy


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for transient failures (connection errors, 5xx, 429).

    ``timeout`` bounds the whole sequence of attempts of one operation, so an unreachable
    store surfaces as a StorageError after at most that long.
    """

    max_retries: int = 6
    initial_backoff: float = 0.1  # seconds
    max_backoff: float = 5.0
    timeout: float = 30.0  # seconds for all attempts of one operation
    connect_timeout: float = 5.0
    request_timeout: float = 120.0  # one request, body included (a 64 MiB part fits)

    def pauses(self) -> Iterator[int]:
        """Attempt numbers for a loop of our own (the cloud SDKs take the fields above
        instead), paced by the one retry policy of :mod:`sparkwing.retry`."""
        return Policy(
            deadline=self.timeout,
            initial=self.initial_backoff,
            maximum=self.max_backoff,
            attempts=self.max_retries + 1,
        ).pauses()


DEFAULT_RETRY = RetryPolicy()


def normalize_prefix(prefix: str | None) -> str:
    """``"a/b"``, ``"/a/b/"`` -> ``"a/b/"``; None or blank -> ``""``. Validated like a key."""
    stripped = (prefix or "").strip("/")
    if not stripped:
        return ""
    check_key(stripped, "store prefix")
    return stripped + "/"


def check_object_key(key: str) -> str:
    return check_key(key, "object key")


def check_list_prefix(prefix: str, start_after: str | None) -> None:
    check_prefix(prefix, "list prefix")
    if start_after is not None:
        check_prefix(start_after, "list start_after")


def listing_dir(prefix: str) -> str:
    """The folder part of a string prefix: ``"memo/a"`` -> ``"memo"``, ``"memo/"`` -> ``"memo"``.

    Stores that list by folder (obstore) list this folder and filter on the full prefix.
    """
    return prefix.rsplit("/", 1)[0] if "/" in prefix else ""


def describe_location(scheme: str, bucket: str, prefix: str) -> str:
    return f"{scheme}://{bucket}/{prefix}"


@dataclass(frozen=True)
class ErrorContext:
    """Names the store in every message: ``<role> store s3://bucket/prefix``."""

    location: str
    role: str = ""

    def error(self, action: str, key: str | None, reason: str) -> StorageError:
        who = f"{self.role} store {self.location}" if self.role else f"store {self.location}"
        what = f"{action} {key!r}" if key is not None else action
        return StorageError(f"{who}: cannot {what}: {one_line(reason)}")


def one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


_STATUS_RE = re.compile(r"status code: (\d{3})")
_CODE_RE = re.compile(r"<Code>([A-Za-z]+)</Code>")


def http_reason(message: str) -> tuple[int | None, str]:
    """The HTTP status and a short reason from a client's error text, without URLs or bodies
    (which may echo request details); unknown shapes give a generic reason."""
    status_match = _STATUS_RE.search(message)
    code_match = _CODE_RE.search(message)
    status = int(status_match.group(1)) if status_match else None
    if code_match:
        return status, f"HTTP {status} {code_match.group(1)}" if status else code_match.group(1)
    if status is not None:
        return status, f"HTTP {status}"
    lowered = message.lower()
    if "error sending request" in lowered or "connect" in lowered or "dns" in lowered:
        return None, "endpoint unreachable (connection failed after retries)"
    if "timed out" in lowered or "timeout" in lowered:
        return None, "request timed out after retries"
    return None, "request failed"


MISSING_BUCKET_CODES = ("NoSuchBucket", "ContainerNotFound", "ContainerBeingDeleted")


def tmp_beside(dest: Path) -> Path:
    return dest.parent / f".{dest.name[:64]}.sparkwing-tmp-{secrets.token_hex(6)}"


def write_atomically(dest: Path, fill: Callable[[BinaryIO], None]) -> None:
    """Create ``dest`` through a temp file in its folder: a failed or interrupted download
    never leaves a partial file under the final name."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_beside(dest)
    try:
        with tmp.open("wb") as fh:
            fill(fh)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def chunked(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
