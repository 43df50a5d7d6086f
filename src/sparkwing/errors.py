"""The exception hierarchy users can cause: each carries a one-line message and an exit code.

The CLI prints ``error: <message>`` and exits with ``exit_code``; nothing here should ever
surface as a traceback.
"""

from __future__ import annotations


class SparkwingError(Exception):
    """Base of every error a user can cause; ``str(err)`` is a single line."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        # Keep messages on one line whatever the caller passed: the CLI contract is one line.
        super().__init__(" ".join(message.split("\n")).strip())


class UsageError(SparkwingError):
    """Bad flags, unknown pipeline, bad input values: exit 2."""

    exit_code = 2


class ConfigError(SparkwingError):
    """Invalid configuration file or profile: exit 2. The message names the file."""

    exit_code = 2


class PlanError(SparkwingError):
    """The pipeline's plan is invalid (cycle, duplicate id, unknown dependency): exit 2."""

    exit_code = 2


class PlanPurityError(SparkwingError):
    """A side-effecting helper was called inside ``plan()``."""

    exit_code = 2


class StorageError(SparkwingError):
    """A surface could not be reached or returned something unusable."""

    exit_code = 2


class NotFoundError(StorageError):
    """The requested record or object does not exist."""


class PreconditionFailedError(StorageError):
    """A conditional write lost: the object exists or its etag changed."""


class GateResolvedError(PreconditionFailedError):
    """An approval or pause was already resolved by someone else (first one wins)."""


class NotSupportedError(StorageError):
    """The backend does not support this operation (for example reading stdout logs)."""


class SchemaVersionError(StorageError):
    """The database was written by a newer sparkwing than this one."""


class InvalidKeyError(UsageError):
    """A key or id segment contains ``..``, ``/``, NUL or control characters."""


class CommandError(SparkwingError):
    """A shell command run by ``ctx.sh`` / ``ctx.exec`` exited non-zero."""

    def __init__(self, message: str, returncode: int, output: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.output = output
