"""How a log search matches a line: a plain substring unless a regular expression is asked
for, and then through RE2, whose matching time is linear, so no pattern can stall a reader
(a controller serving everyone's logs above all)."""

from __future__ import annotations

from collections.abc import Callable

from sparkwing.errors import UsageError

MAX_PATTERN = 4096


def line_matcher(pattern: str, regex: bool = False) -> Callable[[str], bool]:
    """Whether a line holds ``pattern`` (``regex``: matches it somewhere)."""
    if len(pattern) > MAX_PATTERN:
        raise UsageError(f"grep pattern is longer than {MAX_PATTERN} characters")
    if not regex:
        return lambda text: pattern in text
    try:
        import re2
    except ImportError:
        raise UsageError(
            "regular-expression log search needs google-re2 (pip install google-re2); "
            "without it, search for a plain substring"
        ) from None
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own line to stderr
    try:
        compiled = re2.compile(pattern, options=options)
    except re2.error as exc:
        why = exc.args[0] if exc.args else exc
        text = why.decode("utf-8", "replace") if isinstance(why, bytes) else str(why)
        raise UsageError(f"invalid grep pattern {pattern!r}: {text}") from None
    return lambda text: compiled.search(text) is not None
