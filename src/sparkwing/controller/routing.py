"""How operation paths meet Starlette's router without letting a bad id slip past
validation: parameters match any text, and are then re-cut from the path as it was sent."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from sparkwing.errors import UsageError

if TYPE_CHECKING:
    from starlette.requests import Request

CONVERTOR = "swany"
_PARAM = re.compile(r"\{(\w+)\}")


def route_path(path: str) -> str:
    """The Starlette path of an operation path (``/v1/runs/{run_id}``): every parameter
    matches any text, slashes and control characters included, so a bad id reaches
    validation (400) instead of missing the route (404)."""
    from starlette.convertors import CONVERTOR_TYPES, PathConvertor, register_url_convertor

    class AnyText(PathConvertor):
        regex = r"[\s\S]*"  # Starlette's own ``path`` is ``.*``, which stops at a newline

    if CONVERTOR not in CONVERTOR_TYPES:
        register_url_convertor(CONVERTOR, AnyText())
    return _PARAM.sub(r"{\1:" + CONVERTOR + "}", path)


@functools.lru_cache(maxsize=256)
def _raw_pattern(path: str, slashed: frozenset[str]) -> re.Pattern[str]:
    parts = _PARAM.split(path)  # literal text and parameter names, alternating
    pattern = "".join(
        re.escape(part)
        if i % 2 == 0
        else (f"(?P<{part}>.*)" if part in slashed else f"(?P<{part}>[^/]*)")
        for i, part in enumerate(parts)
    )
    return re.compile(f"^{pattern}$")


def path_params(path: str, slashed: frozenset[str], request: Request) -> dict[str, str]:
    """The parameters of operation ``path`` cut from the path as sent, then decoded: the
    router sees the decoded path, where an id holding an encoded '/' (``a%2Fb``) looks like
    two segments. ``slashed`` names the parameters that are slash-separated keys."""
    raw = request.scope.get("raw_path")
    if not isinstance(raw, bytes):
        return {k: str(v) for k, v in request.path_params.items()}
    match = _raw_pattern(path, slashed).match(raw.decode("latin-1"))
    if match is None:
        raise UsageError("an id in the path holds an encoded '/' or does not fit the route")
    return {k: _decoded(k, v) for k, v in match.groupdict().items()}


def _decoded(name: str, raw: str) -> str:
    """``raw`` percent-decoded; an escape that is not UTF-8 (``%ff``) is refused rather than
    turned into U+FFFD, which would make different keys the same."""
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise UsageError(f"{name} holds a percent-escape that is not UTF-8") from None
