"""Replaces every known secret value, and the encodings of it a job is likely to print
(JSON-escaped, URL-encoded, base64, hex), with ``***`` in text and in JSON-like structures."""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

from sparkwing.sdk.inputs import MASK  # also what a secret input shows and is recorded as

# Shorter values are not masked: masking "a" would make every log unreadable without
# protecting anything.
MIN_VALUE_LENGTH = 3
# Encoded forms are only masked from this length on: a short run of base64 or hex digits
# occurs by chance in ordinary output (ids, hashes, numbers) and masking it would mangle logs.
MIN_DERIVED_LENGTH = 8


def _base64_inner(raw: bytes, offset: int, alphabet: bytes | None) -> str:
    """The part of the base64 encoding of ``raw`` that stays the same wherever ``raw`` starts
    at byte ``offset`` (mod 3) of a longer stream: the characters whose six bits all come from
    ``raw`` (the first and last one or two depend on the neighbouring bytes)."""
    import base64  # only once a value is masked

    encoded = base64.b64encode(bytes(offset) + raw, altchars=alphabet).decode()
    first = -(-offset * 8 // 6)  # ceil
    last = (offset + len(raw)) * 8 // 6
    return encoded[first:last]


def encoded_forms(value: str) -> set[str]:
    """The forms of ``value`` other than itself that are masked too."""
    import binascii

    raw = value.encode()
    forms = {
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        urllib.parse.quote(value),
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        binascii.hexlify(raw).decode(),
        binascii.hexlify(raw).decode().upper(),
    }
    for offset in range(3):
        for alphabet in (None, b"-_"):
            forms.add(_base64_inner(raw, offset, alphabet))
    forms.discard(value)
    return {f for f in forms if len(f) >= MIN_DERIVED_LENGTH}


def _alternation(words: set[str]) -> str:
    """A regex matching any of ``words``, longest match first, written as a trie
    (``ab(?:c|d)``) so the engine tries one branch per character instead of every word."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_regex(trie)


def _trie_regex(node: dict[str, Any]) -> str:
    branches = []
    for char in sorted(k for k in node if k):
        chain, child = [char], node[char]
        # Follow single-child runs iteratively: a long secret is one branch, not deep nesting.
        while len(child) == 1 and "" not in child:
            ((char, child),) = child.items()
            chain.append(char)
        branches.append(re.escape("".join(chain)) + _trie_regex(child))
    if not branches:
        return ""
    body = "|".join(branches)
    if "" in node:
        return f"(?:{body})?"
    return body if len(branches) == 1 else f"(?:{body})"


class Masker:
    """Holds the secret values registered so far and one compiled pattern over all of them
    and their encoded forms, rebuilt only when a new value arrives."""

    def __init__(self, values: list[str] | None = None) -> None:
        self._values: set[str] = set()
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        if values:
            self.add(values)

    @property
    def values(self) -> list[str]:
        return sorted(self._values)

    def add(self, values: list[str]) -> bool:
        """Register values; True if any was new. Values shorter than ``MIN_VALUE_LENGTH``
        are ignored."""
        new = {v for v in values if len(v) >= MIN_VALUE_LENGTH and v not in self._values}
        if not new:
            return False
        self._values |= new
        for value in new:
            self._forms.add(value)
            self._forms |= encoded_forms(value)
        # The trie's optional tails are greedy, so the longest form matching at a position
        # wins: a secret containing a shorter one is masked whole.
        self._pattern = re.compile(_alternation(self._forms))
        return True

    def text(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def data(self, value: Any) -> Any:
        """Mask every string inside a JSON-like value (keys included)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value
