"""A pipeline's third-party requirements: from a lock file when there is one
(``requirements.lock``, ``pylock.toml``, ``uv.lock``), else ``requirements.txt``, else the
``[project] dependencies`` of ``.sparkwing/pyproject.toml``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sparkwing.errors import ConfigError

# Looked up in this order; the first present wins. Lock files first: a lock is honoured.
SOURCES: tuple[str, ...] = (
    "requirements.lock",
    "pylock.toml",
    "uv.lock",
    "requirements.txt",
    "pyproject.toml",
)


class Requirements:
    """``lines`` are what the key covers: requirement lines without comments or blank lines
    (for ``uv.lock``, the file's digest, since uv reads it whole)."""

    __slots__ = ("lines", "source")

    def __init__(self, source: str | None, lines: tuple[str, ...] = ()) -> None:
        self.source = source  # one of SOURCES, or None when the pipeline has no requirements
        self.lines = lines

    def __repr__(self) -> str:
        return f"Requirements({self.source!r}, {self.lines!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Requirements) and (self.source, self.lines) == (
            other.source,
            other.lines,
        )

    def __hash__(self) -> int:
        return hash((self.source, self.lines))

    def __bool__(self) -> bool:
        return bool(self.lines)

    @property
    def digest(self) -> str:
        text = f"{self.source or 'none'}\n" + "\n".join(self.lines)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def count(self) -> int:
        if self.source == "uv.lock":
            return 1
        return sum(1 for line in self.lines if not line.startswith("-"))

    def describe(self) -> str:
        if not self:
            return "none"
        if self.source == "uv.lock":
            return "uv.lock"
        return f"{self.count} from {self.source}"


def requirement_lines(text: str) -> tuple[str, ...]:
    """Lines of a pip requirements file, continuations joined, comments and blanks dropped."""
    out: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = pending + raw
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.lstrip().startswith("#"):
            continue
        if " #" in line or "\t#" in line:
            line = line[: min(i for i in (line.find(" #"), line.find("\t#")) if i >= 0)]
        line = " ".join(line.split())
        if line:
            out.append(line)
    if pending.strip():
        out.append(" ".join(pending.split()))
    return tuple(out)


def _toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None


def _pylock_lines(path: Path) -> tuple[str, ...]:
    """``name==version ; marker`` for every package of a PEP 751 lock (installed with --no-deps)."""
    packages = _toml(path).get("packages")
    if not isinstance(packages, list):
        raise ConfigError(f"{path}: expected [[packages]] entries")
    lines = []
    for item in packages:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ConfigError(f"{path}: every [[packages]] entry needs a name")
        line = item["name"]
        if isinstance(item.get("version"), str):
            line += f"=={item['version']}"
        if isinstance(item.get("marker"), str):
            line += f" ; {item['marker']}"
        lines.append(line)
    return tuple(sorted(lines))


def _pyproject_lines(path: Path) -> tuple[str, ...]:
    project = _toml(path).get("project")
    deps = project.get("dependencies") if isinstance(project, dict) else None
    if deps is None:
        return ()
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ConfigError(f"{path}: [project] dependencies must be a list of strings")
    return tuple(" ".join(d.split()) for d in deps if d.strip())


def detect(sparkwing_dir: Path, present: dict[str, str]) -> Requirements:
    """The requirements of the pipeline in ``sparkwing_dir``; ``present`` maps the top-level
    files that exist (relative path) to their sha256, as the source scan found them."""
    for name in SOURCES:
        if name not in present:
            continue
        path = sparkwing_dir / name
        if name == "uv.lock":
            return Requirements(name, (f"sha256:{present[name]}",))
        if name == "pylock.toml":
            return Requirements(name, _pylock_lines(path))
        if name == "pyproject.toml":
            lines = _pyproject_lines(path)
            if lines:
                return Requirements(name, lines)
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read it: {exc}") from None
        return Requirements(name, requirement_lines(text))
    return Requirements(None)
