"""How warnings that libraries log (``logging.getLogger("sparkwing....")``) reach a person:
one handler on the ``sparkwing`` logger, installed by the CLI (and a runner started as a new
interpreter), renders them as ``warning: ...`` lines on stderr, as JSON objects under
``-o json``, or not at all under ``-o quiet``."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable

Mode = Callable[[], str]


def _human() -> str:
    return "human"


class StderrDiagnostics(logging.Handler):
    """Writes each record to the stderr of the moment; ``mode()`` says how (``human``,
    ``json`` or ``quiet``) and is asked per record, since the output option of the command
    being run is only known once its arguments are parsed."""

    def __init__(self, mode: Mode = _human) -> None:
        super().__init__(logging.WARNING)
        self.mode = mode

    def emit(self, record: logging.LogRecord) -> None:
        try:
            mode = self.mode()
            if mode == "quiet":
                return
            message = record.getMessage()
            level = record.levelname.lower()
            if mode == "json":
                line = json.dumps({"level": level, "message": message}, ensure_ascii=False)
            else:
                line = f"{level}: {message}"
            sys.stdout.flush()  # keep what was printed before the warning before it
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def install(mode: Mode = _human) -> StderrDiagnostics:
    """Put one handler on the ``sparkwing`` logger (replacing an earlier one of these)."""
    logger = logging.getLogger("sparkwing")
    for old in [h for h in logger.handlers if isinstance(h, StderrDiagnostics)]:
        logger.removeHandler(old)
    handler = StderrDiagnostics(mode)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)
    return handler
