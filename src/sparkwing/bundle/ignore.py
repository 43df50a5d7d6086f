"""Which files under ``.sparkwing/`` are gitignored: git's own answer (``git check-ignore``) in a
checkout, else a small ``.gitignore`` reader (``!``, ``/`` anchoring, ``**``, trailing ``/``)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

# Never part of a bundle, whatever the ignore files say: caches Python and git write.
SKIPPED_DIRS = frozenset({"__pycache__", ".git"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")


# NamedTuples rather than dataclasses here and in the other modules `sparkwing run` loads:
# they cost a tenth of the import time, and this runs before every pipeline.
class Ignored(NamedTuple):
    """Paths relative to ``.sparkwing/`` (with ``/``): ignored files, and ignored folders
    whose whole content is ignored (so a later walk may skip them)."""

    files: frozenset[str] = frozenset()
    dirs: frozenset[str] = frozenset()

    def covers(self, rel: str) -> bool:
        if rel in self.files or rel in self.dirs:
            return True
        parts = rel.split("/")
        return any("/".join(parts[:i]) in self.dirs for i in range(1, len(parts)))


def find_git_root(start: Path) -> Path | None:
    probe = start
    while True:
        if (probe / ".git").exists():
            return probe
        if probe.parent == probe:
            return None
        probe = probe.parent


def git_dir(root: Path) -> Path:
    """The repository's git folder (``.git`` itself, or where a worktree's ``.git`` file points)."""
    dot_git = root / ".git"
    if dot_git.is_file():
        try:
            text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return dot_git
        if text.startswith("gitdir:"):
            target = Path(text[len("gitdir:") :].strip())
            return target if target.is_absolute() else root / target
    return dot_git


def signature_files(sparkwing_dir: Path, git_root: Path | None) -> list[Path]:
    """Files outside the walk whose change can change what is ignored."""
    top = git_root or sparkwing_dir.parent
    found = []
    folder = sparkwing_dir.parent
    while True:
        found.append(folder / ".gitignore")
        if folder == top or folder.parent == folder:
            break
        folder = folder.parent
    if git_root is not None:
        gdir = git_dir(git_root)
        # The index changes when a file is added with -f (tracked files are never ignored).
        found += [gdir / "info" / "exclude", gdir / "index"]
        config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        found += [config / "git" / "ignore", Path.home() / ".gitconfig"]
    return found


def _split(files: Sequence[str], dirs: Sequence[str], ignored: set[str]) -> Ignored:
    """Ignored folders can be skipped only when every file below them is ignored too."""
    kept_dirs: set[str] = set()
    for d in sorted(dirs, key=lambda p: p.count("/")):
        if d not in ignored or any(d.startswith(k + "/") for k in kept_dirs):
            continue
        prefix = d + "/"
        if all(f in ignored for f in files if f.startswith(prefix)):
            kept_dirs.add(d)
    skipped = Ignored(frozenset(), frozenset(kept_dirs))
    # Files below a skipped folder are not listed one by one (think of a virtualenv).
    return Ignored(
        frozenset(f for f in files if f in ignored and not skipped.covers(f)), skipped.dirs
    )


def git_ignored(
    git_root: Path, sparkwing_dir: Path, files: Sequence[str], dirs: Sequence[str]
) -> Ignored | None:
    """Ask git which of these paths (relative to ``sparkwing_dir``) are ignored; None if git
    cannot answer or ignores ``.sparkwing/`` as a whole (then git is no guide)."""
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None:
        return None
    paths = [".", *dirs, *files]
    try:
        proc = subprocess.run(
            [git, "check-ignore", "-z", "--stdin"],
            input="\0".join(paths).encode() + b"\0",
            cwd=sparkwing_dir,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode not in (0, 1):  # 1: nothing is ignored
        return None
    reported = {p for p in proc.stdout.decode(errors="surrogateescape").split("\0") if p}
    if "." in reported:
        return None
    return _split(files, dirs, reported)


# -- the .gitignore reader for folders outside git -------------------------------------
class _Rule(NamedTuple):
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _class(pattern: str, i: int) -> tuple[str, int] | None:
    """The regex of a ``[...]`` class starting at ``i`` and the index after it."""
    j = i + 1
    if j < len(pattern) and pattern[j] in "!^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    end = pattern.find("]", j)
    if end < 0:
        return None
    body = pattern[i + 1 : end].replace("\\", "\\\\")
    if body[:1] in ("!", "^"):
        body = "^" + body[1:]
    return f"[{body}]", end + 1


def translate(pattern: str) -> str:
    """A gitignore pattern (no ``!``, no trailing ``/``) as a regex for the path relative to
    the ignore file's folder."""
    anchored = "/" in pattern
    pattern = pattern.removeprefix("/")
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern.startswith("**/", i) and (i == 0 or pattern[i - 1] == "/"):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == n:
            out.append("/.*")
            i += 3
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (found := _class(pattern, i)) is not None:
            out.append(found[0])
            i = found[1]
        elif pattern[i] == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    body = "".join(out)
    return body if anchored else "(?:.*/)?" + body


def parse_rules(text: str) -> list[_Rule]:
    rules = []
    for raw in text.splitlines():
        line = raw.rstrip() if not raw.endswith("\\ ") else raw
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate or line.startswith(("\\!", "\\#")):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        try:
            regex = re.compile(translate(line))
        except re.error:
            continue  # git skips a pattern it cannot read; so do we
        rules.append(_Rule(regex, negate, dir_only))
    return rules


def _layers(sparkwing_dir: Path, dirs: Iterable[str]) -> list[tuple[str, list[_Rule]]]:
    """(base relative to the project root, rules) from the project root's ``.gitignore``
    and every ``.gitignore`` inside ``.sparkwing/``, outermost first."""
    name = sparkwing_dir.name
    layers = []
    for base, folder in [("", sparkwing_dir.parent), (name, sparkwing_dir)] + [
        (f"{name}/{d}", sparkwing_dir / d) for d in sorted(dirs, key=lambda p: p.count("/"))
    ]:
        try:
            text = (folder / ".gitignore").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        layers.append((base, parse_rules(text)))
    return layers


def _matches(path: str, is_dir: bool, layers: list[tuple[str, list[_Rule]]]) -> bool:
    result = False
    for base, rules in layers:
        if base and not path.startswith(base + "/"):
            continue
        sub = path[len(base) + 1 :] if base else path
        for rule in rules:
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.fullmatch(sub):
                result = not rule.negate
    return result


def lite_ignored(sparkwing_dir: Path, files: Sequence[str], dirs: Sequence[str]) -> Ignored:
    """What the ``.gitignore`` files would ignore, read without git (a folder outside a
    checkout): a file below an ignored folder is ignored, as in git."""
    layers = _layers(sparkwing_dir, dirs)
    if not layers:
        return Ignored()
    name = sparkwing_dir.name
    ignored: set[str] = set()
    for d in sorted(dirs, key=lambda p: p.count("/")):
        parent = d.rsplit("/", 1)[0] if "/" in d else None
        if (parent is not None and parent in ignored) or _matches(f"{name}/{d}", True, layers):
            ignored.add(d)
    for f in files:
        parent = f.rsplit("/", 1)[0] if "/" in f else None
        if (parent is not None and parent in ignored) or _matches(f"{name}/{f}", False, layers):
            ignored.add(f)
    return _split(files, dirs, ignored)
