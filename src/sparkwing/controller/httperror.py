"""The controller's own HTTP answers (401, 403, 409, 413 ...), apart from the stores' errors.

A leaf module, so that helpers such as the run-owner checks can raise it without importing
the endpoint machinery (which imports the backend that holds them).
"""

from __future__ import annotations


class HttpError(Exception):
    """An answer that is not a store's error (401, 403, 413): status, type and message."""

    def __init__(self, status: int, kind: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.extra = extra
