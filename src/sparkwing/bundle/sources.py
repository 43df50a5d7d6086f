"""The files of ``.sparkwing/`` that belong in a bundle, with their content hashes.

Both the ignore check and the hashes are memoized in the project's memo (by file listing and
by ``(size, mtime_ns)``), so an unchanged project costs one directory walk and no reads.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path
from typing import Any, NamedTuple

from sparkwing.bundle import ignore

# A file modified this recently may still change within the same mtime tick: not memoized.
_RACY_NS = 2_000_000_000


class SourceFile(NamedTuple):
    rel: str  # relative to .sparkwing/, with '/'
    path: Path
    size: int
    sha256: str
    executable: bool


class _Walk(NamedTuple):
    files: dict[str, os.stat_result]
    dirs: list[str]


def _walk(root: Path, skip: frozenset[str]) -> _Walk:
    out = _Walk({}, [])
    stack = [("", str(root))]
    while stack:
        rel_dir, folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            rel = f"{rel_dir}{entry.name}"
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in ignore.SKIPPED_DIRS and rel not in skip:
                        out.dirs.append(rel)
                        stack.append((rel + "/", entry.path))
                    continue
                if entry.name.endswith(ignore.SKIPPED_SUFFIXES):
                    continue
                st = entry.stat()  # follows a symlinked file to its content
            except OSError:
                continue  # vanished or a dangling link
            if stat.S_ISREG(st.st_mode):
                out.files[rel] = st
    return out


def _stat_sig(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _signature(walk: _Walk, extra: list[Path], covered: ignore.Ignored) -> str:
    h = hashlib.sha256()
    for rel in sorted(walk.files):
        if covered.covers(rel) and rel not in covered.files:
            continue  # below a skipped folder: the next walk will not see it
        h.update(rel.encode(errors="surrogateescape") + b"\0")
        if rel.endswith(".gitignore"):
            h.update(f"{walk.files[rel].st_size}:{walk.files[rel].st_mtime_ns}\0".encode())
    for path in extra:
        h.update(f"{path}={_stat_sig(path)}\0".encode())
    return h.hexdigest()


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def scan(sparkwing_dir: Path, memo: dict[str, Any]) -> list[SourceFile]:
    """Every non-ignored file, sorted by path; updates ``memo['ignore']`` and ``memo['files']``."""
    git_root = ignore.find_git_root(sparkwing_dir)
    extra = ignore.signature_files(sparkwing_dir, git_root)
    cached = memo.get("ignore") or {}
    covered = ignore.Ignored(
        frozenset(cached.get("files") or ()), frozenset(cached.get("dirs") or ())
    )
    walk = _walk(sparkwing_dir, covered.dirs)
    if cached.get("sig") != _signature(walk, extra, covered):
        walk = _walk(sparkwing_dir, frozenset())
        files, dirs = sorted(walk.files), sorted(walk.dirs)
        found = None
        if git_root is not None:
            found = ignore.git_ignored(git_root, sparkwing_dir, files, dirs)
        covered = found if found is not None else ignore.lite_ignored(sparkwing_dir, files, dirs)
        memo["ignore"] = {
            "sig": _signature(walk, extra, covered),
            "files": sorted(covered.files),
            "dirs": sorted(covered.dirs),
        }
    known: dict[str, list[Any]] = memo.get("files") or {}
    fresh: dict[str, list[Any]] = {}
    racy = time.time_ns() - _RACY_NS
    out = []
    for rel in sorted(walk.files):
        if covered.covers(rel):
            continue
        st = walk.files[rel]
        path = sparkwing_dir / rel
        entry = known.get(rel)
        if entry and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
            digest = str(entry[2])
        else:
            digest = _file_sha(path)
        if st.st_mtime_ns < racy:
            fresh[rel] = [st.st_size, st.st_mtime_ns, digest]
        out.append(SourceFile(rel, path, st.st_size, digest, bool(st.st_mode & 0o111)))
    memo["files"] = fresh
    return out
