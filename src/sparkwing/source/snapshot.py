"""Snapshots: a working tree's files (tracked plus untracked-but-not-ignored) packed as a
deterministic tar.gz, stored once per content on the cache surface at ``src/<sha256>``,
and unpacked on a worker with every member checked before a byte is written.

A run's snapshot source is recorded as ``{"kind": "snapshot", "key": "src/<sha256>",
"sha256": SHA256}``.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sparkwing.source.mirror import SourceError

if TYPE_CHECKING:
    from sparkwing.surfaces.cache.base import Cache

PREFIX = "src/"
# Every entry carries this time and no owner, so equal trees give byte-identical archives.
_MTIME = 315532800  # 1980-01-01
_SKIPPED_DIRS = frozenset({".git", "__pycache__"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


class Packed(NamedTuple):
    """An archive written to ``path``: its sha256, its size and how many files it holds."""

    path: Path
    sha256: str
    size: int
    files: int

    @property
    def key(self) -> str:
        return PREFIX + self.sha256


def tree_files(root: Path) -> list[str]:
    """The files of the tree at ``root`` (relative, ``/``-separated, sorted): git's tracked and
    untracked-but-not-ignored files in a checkout, else every file but git and Python caches."""
    if shutil.which("git") is not None and _in_checkout(root):
        proc = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "-z"],
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SourceError(f"git ls-files in {root} failed: {detail[-1] if detail else ''}")
        names = {n for n in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if n}
        # A tracked file deleted from the tree is not part of it.
        return sorted(n for n in names if os.path.lexists(root / n))
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        rel = Path(folder).relative_to(root)
        found += [(rel / f).as_posix() for f in files if not f.endswith(_SKIPPED_SUFFIXES)]
        # Symlinked folders are entries of their own, not walked into.
        found += [(rel / d).as_posix() for d in dirs if (Path(folder) / d).is_symlink()]
        dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink()]
    return sorted(found)


def _in_checkout(root: Path) -> bool:
    proc = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--show-prefix"],
        capture_output=True,
        text=True,
        check=False,
    )
    # Only the top of a checkout: listing from a subfolder would give paths of its own.
    return proc.returncode == 0 and proc.stdout.strip() == ""


def pack(root: Path, names: Iterable[str], dest: Path) -> Packed:
    """Write the files ``names`` of ``root`` to ``dest`` as a deterministic tar.gz: sorted,
    fixed times, no owners, mode 0755 or 0644; symlinks are kept as links."""
    import gzip

    count = 0
    with (
        dest.open("wb") as fh,
        gzip.GzipFile(filename="", mode="wb", fileobj=fh, compresslevel=6, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in sorted(set(names)):
            path = root / name
            info = tarfile.TarInfo(name)
            info.mtime = _MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                info.mode = 0o777
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                info.size = st.st_size
                info.mode = 0o755 if st.st_mode & 0o111 else 0o644
                with path.open("rb") as src:
                    tar.addfile(info, src)
            else:
                continue  # sockets, fifos: nothing a checkout could hold
            count += 1
    return Packed(dest, _sha256(dest), dest.stat().st_size, count)


def upload(cache: Cache, packed: Packed) -> bool:
    """Store ``packed`` at ``src/<sha256>`` unless it is there already; True if uploaded."""
    if cache.has(packed.key):
        return False
    cache.put_file(packed.key, packed.path)
    return True


def download(cache: Cache, key: str, sha256: str, dest: Path) -> None:
    """Fetch the snapshot ``key`` into ``dest`` and check it is the content it names."""
    if key != PREFIX + sha256 or len(sha256) != 64:
        raise SourceError(f"snapshot {key!r} does not name its content (sha256 {sha256!r})")
    if not cache.get_file(key, dest):
        raise SourceError(f"snapshot {key} is not in the cache ({cache.describe()})")
    actual = _sha256(dest)
    if actual != sha256:
        raise SourceError(f"snapshot {key} is damaged (its content hashes to {actual[:12]})")


def unpack(archive: Path, dest: Path) -> int:
    """Unpack ``archive`` into the new folder ``dest``; returns the number of files. Every
    member is checked first, so a hostile archive writes nothing: no absolute paths, no
    ``..``, no control characters, no hard links or devices, no symlink pointing outside
    ``dest`` or through another symlink."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members = tar.getmembers()
            _check_members(members)
            dest.mkdir(parents=True, exist_ok=False)
            for info in members:
                target = dest / info.name
                target.parent.mkdir(parents=True, exist_ok=True)
                if info.issym():
                    os.symlink(info.linkname, target)
                elif info.isdir():
                    target.mkdir(exist_ok=True)
                else:
                    src = tar.extractfile(info)
                    assert src is not None  # a regular file always has content
                    with src, target.open("wb") as out:
                        shutil.copyfileobj(src, out)
                    target.chmod(0o755 if info.mode & 0o111 else 0o644)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, SourceError):
            raise
        raise SourceError(f"snapshot {archive.name} is unreadable: {exc}") from None
    return sum(1 for m in members if not m.isdir())


def _check_members(members: list[tarfile.TarInfo]) -> None:
    links = {info.name for info in members if info.issym()}
    names: set[str] = set()
    for info in members:
        name = info.name
        if not _safe_relative(name):
            raise SourceError(f"unsafe path {name!r} in the snapshot; refusing it")
        if not (info.isreg() or info.isdir() or info.issym()):
            raise SourceError(f"{name!r} in the snapshot is a hard link or device; refusing it")
        parents = {"/".join(name.split("/")[:i]) for i in range(1, name.count("/") + 1)}
        if parents & links:
            raise SourceError(f"{name!r} in the snapshot lies behind a symlink; refusing it")
        if name in names:
            raise SourceError(f"{name!r} appears twice in the snapshot; refusing it")
        names.add(name)
        if info.issym() and not _link_stays_inside(name, info.linkname, links):
            raise SourceError(
                f"symlink {name!r} in the snapshot points outside it or through another "
                f"symlink ({info.linkname!r}); refusing it"
            )


def _link_stays_inside(name: str, target: str, links: set[str]) -> bool:
    """Whether the link ``name`` -> ``target`` resolves inside the tree, walked one part at
    a time as the kernel would, without passing through another link (whose own target
    could make a later ``..`` climb out). Ending on a link is fine: that one is checked
    on its own, so a chain of links stays inside."""
    if not target or target.startswith("/") or any(ord(c) < 32 for c in target):
        return False
    where = name.split("/")[:-1]
    parts = [p for p in target.split("/") if p not in ("", ".")]
    for i, part in enumerate(parts):
        if part == "..":
            if not where:
                return False
            where.pop()
            continue
        where.append(part)
        if i < len(parts) - 1 and "/".join(where) in links:
            return False
    return True


def _safe_relative(name: str) -> bool:
    if not name or name.startswith("/") or "\\" in name:
        return False
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return False
    return not any(p in ("", ".", "..") for p in name.split("/"))


def _sha256(path: Path) -> str:
    from sparkwing.surfaces.cache.base import sha256_file

    return sha256_file(path)
