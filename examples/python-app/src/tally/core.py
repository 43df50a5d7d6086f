"""Word counting, independent of files and the command line."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def words(text: str) -> list[str]:
    """The words of ``text``, lower-cased; digits and punctuation are separators."""
    return [match.group(0).lower() for match in WORD.finditer(text)]


def count(texts: Iterable[str], stopwords: Iterable[str] = ()) -> Counter[str]:
    """How often each word occurs across ``texts``, leaving out ``stopwords``."""
    skip = {word.lower() for word in stopwords}
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word for word in words(text) if word not in skip)
    return counts


def top(counts: Counter[str], n: int) -> list[tuple[str, int]]:
    """The ``n`` most frequent words; ties are broken alphabetically so output is stable."""
    if n < 0:
        raise ValueError("n must not be negative")
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
