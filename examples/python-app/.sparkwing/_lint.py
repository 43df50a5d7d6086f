"""A small stdlib-only linter: syntax for a target Python version and basic layout rules.

Nothing to install, so the example runs on a fresh machine; a real project would call ruff.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

MAX_LINE = 100


def problems(path: Path, target: tuple[int, int]) -> Iterator[str]:
    """``path:line: message`` for everything wrong with one file."""
    text = path.read_text(encoding="utf-8")
    try:
        ast.parse(text, filename=str(path), feature_version=target)
    except SyntaxError as exc:
        yield f"{path}:{exc.lineno}: not valid Python {target[0]}.{target[1]}: {exc.msg}"
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > MAX_LINE:
            yield f"{path}:{number}: line longer than {MAX_LINE} characters ({len(line)})"
        if line != line.rstrip():
            yield f"{path}:{number}: trailing whitespace"
        if "\t" in line:
            yield f"{path}:{number}: tab character"
    if text and not text.endswith("\n"):
        yield f"{path}: no newline at end of file"


def python_files(root: Path, folders: list[str]) -> list[Path]:
    return sorted(p for folder in folders for p in (root / folder).rglob("*.py"))
