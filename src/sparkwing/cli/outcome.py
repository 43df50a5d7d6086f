"""The CLI's error contract without click: ``error: <one line>`` on stderr (one JSON
object under ``-o json``), the exit code each kind of failure gets, never a traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from sparkwing.errors import SparkwingError


def wants_json(args: list[str]) -> bool:
    """Whether the command line asks for ``-o json``. Read from the arguments themselves,
    since an error can end the command before (or after) click has parsed its options."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in ("-o", "--output") and i + 1 < len(args):
            if args[i + 1] == "json":
                return True
        elif arg in ("-ojson", "--output=json"):
            return True
    return False


def echo_err(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def report_error(message: str, exit_code: int, as_json: bool) -> int:
    sys.stdout.flush()
    if as_json:
        echo_err(json.dumps({"error": message, "exit": exit_code}, ensure_ascii=False))
    else:
        echo_err(f"error: {message}")
    return exit_code


def os_error_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot use {exc.filename}: {reason}" if exc.filename else reason


def guarded(args: list[str], command: Callable[[], int]) -> int:
    """``command()``'s exit code, with the failures a user can cause turned into one line."""
    as_json = wants_json(args)
    try:
        return command()
    except SparkwingError as exc:
        return report_error(str(exc), exc.exit_code, as_json)
    except KeyboardInterrupt:
        return report_error("interrupted", 130, as_json)
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error worth a traceback.
        return 0
    except OSError as exc:
        # A location that cannot be created or written (a read-only HOME, a path under a
        # file): the user's to fix, so one line naming it.
        return report_error(os_error_message(exc), 2, as_json)
