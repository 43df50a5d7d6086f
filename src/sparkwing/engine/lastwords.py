"""What the pipeline's own code is doing in the runner process, in a file beside the run's
result, so a process that code ends outright (``os._exit``) can be blamed on it."""

from __future__ import annotations

import contextlib
import os

from sparkwing import _log
from sparkwing.engine.runspec import RunSpec

log = _log.get("sparkwing.engine")

LAST_WORDS_SUFFIX = ".doing"


def note_last_words(spec: RunSpec, what: str | None) -> None:
    """In the runner: say what the pipeline's own code is doing while it runs in this
    process (None once it is done)."""
    if not spec.result_path:
        return
    path = spec.result_path + LAST_WORDS_SUFFIX
    try:
        if what is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        else:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(what)
    except OSError as exc:
        log.debug("could not note what the runner is doing: %s", exc)


def read_last_words(result_path: str) -> str | None:
    """In the supervisor: what the runner last noted, or None."""
    try:
        with open(result_path + LAST_WORDS_SUFFIX, encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        return None
