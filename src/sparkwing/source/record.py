"""A run's recorded source in one line, for people (``runs status``, ``runs get``)."""

from __future__ import annotations

import re
from typing import Any


def redact_url(url: str) -> str:
    """The URL without a password or token in it, for messages and records."""
    return re.sub(r"(?<=://)[^/@]*@", "", url)


def describe_source(source: dict[str, Any]) -> str:
    """``git URL REF at SHA``, ``snapshot src/<sha256>``, ``local ROOT``; for a run with no
    recorded source (started by `sparkwing run` in a checkout), ``local checkout``."""
    kind = source.get("kind")
    where = f" in {source['subdir']}/" if source.get("subdir") else ""
    if kind == "git":
        # Records hold redacted URLs already; a credential never reaches a terminal anyway.
        url = redact_url(str(source.get("url", "?")))
        sha = str(source.get("sha", ""))[:12]
        return f"git {url} {source.get('ref', '?')} at {sha}{where}"
    if kind == "snapshot":
        return f"snapshot {source.get('key', '?')}{where}"
    if kind == "local":
        return f"local {source.get('root', '?')}"
    return "local checkout" if not source else f"unknown source {kind!r}"
