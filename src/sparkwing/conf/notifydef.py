"""One ``notify:`` entry of a profile, as parsed (kept apart so resolution can carry it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NotifyDef:
    """Where a finished run is POSTed (``url``, or ``url_source``: ``env:VAR`` or a secret
    NAME, for a URL that holds a token), and for which final statuses (``on``)."""

    on: tuple[str, ...]
    url: str | None = None
    url_source: str | None = None
