"""Where schedulers read the time: the system clock, or, for tests only, a file holding an
ISO time named by ``SPARKWING_TEST_CLOCK_FILE`` (so a test can move time while scheduler
processes run). The variable's name says it is not for production."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from sparkwing import _log
from sparkwing.errors import ConfigError

TEST_CLOCK_ENV = "SPARKWING_TEST_CLOCK_FILE"
Clock = Callable[[], datetime]
log = _log.get("sparkwing.triggers")


def system_clock() -> datetime:
    return datetime.now(UTC)


def file_clock(path: Path) -> Clock:
    """A clock reading ``path`` (an ISO-8601 time with a zone) at every call."""

    def now() -> datetime:
        text = path.read_text(encoding="utf-8").strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{TEST_CLOCK_ENV} file {path}: not an ISO time: {text!r}") from None
        if moment.tzinfo is None:
            raise ConfigError(f"{TEST_CLOCK_ENV} file {path}: the time needs a zone (Z)")
        return moment.astimezone(UTC)

    return now


def clock_from_env(env: Mapping[str, str]) -> Clock:
    """The system clock, unless the test-only variable names a clock file."""
    name = env.get(TEST_CLOCK_ENV)
    if not name:
        return system_clock
    log.warning("schedules read the time from the test clock file %s (%s)", name, TEST_CLOCK_ENV)
    return file_clock(Path(name))
