"""Glob patterns for branch, tag and path filters: ``*`` and ``?`` stay within one ``/``
segment, ``**`` crosses segments, and a leading ``!`` excludes what earlier patterns took."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence


@functools.lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regex of one pattern (without its ``!``); ``src/**`` also matches ``src`` itself
    and ``**/x`` matches ``x`` at the top."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def matches(patterns: Sequence[str], value: str) -> bool:
    """Whether ``value`` passes the list: the last pattern that matches it decides (a ``!``
    pattern excludes). A list of only ``!`` patterns starts from "everything"."""
    included = all(p.startswith("!") for p in patterns)
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        if compile_glob(body).fullmatch(value):
            included = not negated
    return included


def any_matches(patterns: Sequence[str], values: Sequence[str]) -> bool:
    """Whether at least one of ``values`` passes :func:`matches`."""
    return any(matches(patterns, v) for v in values)
