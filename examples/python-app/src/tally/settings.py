"""Optional settings from a ``tally.toml`` file (stopwords, default count)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the `tomli` pin in requirements.lock covers older interpreters
    import tomli as tomllib


@dataclass
class Settings:
    top: int = 10
    stopwords: list[str] = field(default_factory=list)


def load(path: Path) -> Settings:
    """Read ``path``; a missing file gives the defaults."""
    if not path.exists():
        return Settings()
    data = tomllib.loads(path.read_text(encoding="utf-8")).get("tally", {})
    top = data.get("top", 10)
    stopwords = data.get("stopwords", [])
    if not isinstance(top, int) or top < 0:
        raise ValueError(f"{path}: tally.top must be a non-negative integer")
    if not isinstance(stopwords, list) or not all(isinstance(w, str) for w in stopwords):
        raise ValueError(f"{path}: tally.stopwords must be a list of strings")
    return Settings(top=top, stopwords=stopwords)
