"""Replaces every known secret value with ``***`` in text and in JSON-like structures."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"


class Masker:
    def __init__(self, values: list[str] | None = None) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        if values:
            self.add(values)

    @property
    def values(self) -> list[str]:
        return sorted(self._values)

    def add(self, values: list[str]) -> bool:
        """Register values; True if any was new. Very short values are ignored (masking 'a'
        would make every log unreadable without protecting anything)."""
        new = {v for v in values if len(v) >= 3 and v not in self._values}
        if not new:
            return False
        self._values |= new
        # Longest first so a secret containing another is masked whole.
        ordered = sorted(self._values, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
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
