"""What ``runs submit`` records as a queued run's source: a git repository and commit when
the code is on a remote exactly as it is here, else a snapshot of the tree uploaded to the
cache surface (once per content)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkwing.source import snapshot
from sparkwing.source.mirror import Mirrors, SourceError, redact_url

if TYPE_CHECKING:
    from sparkwing.conf.project import Project
    from sparkwing.surfaces.cache.base import Cache


@dataclass(frozen=True)
class Delivery:
    """The source to record, and one line saying what was sent (for the person submitting)."""

    source: dict[str, Any]
    note: str


def deliver(
    project_root: Path | None,
    *,
    repo: str | None,
    ref: str | None,
    cache: Callable[[], Cache] | None = None,
    mirrors: Mirrors | None = None,
) -> Delivery:
    """The source of a run of the project at ``project_root`` (None: no checkout here).
    ``repo``: take the code from that repository (``ref`` resolved through a mirror fetch);
    else the project's own checkout decides between its ``origin`` and a snapshot, which
    goes to the store ``cache`` opens."""
    top = _toplevel(project_root) if project_root is not None else None
    subdir = _subdir(project_root, top)
    if repo is not None:
        return _remote(repo, ref, subdir, mirrors or Mirrors())
    if project_root is None:
        raise SourceError("no project here and no --repo: nothing to submit")
    if top is None:
        return _snapshot(project_root, "", "not a git checkout", cache)
    origin = _git_out(top, "remote", "get-url", "origin")
    if ref is not None:
        return _pushed_ref(top, ref, origin, subdir)
    head = _git_out(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    why = None
    if origin is None:
        why = "no remote origin"
    elif head is None:
        why = "no commit yet"
    elif _git_out(top, "status", "--porcelain", "--untracked-files=normal"):
        why = "uncommitted changes"
    elif _unpushed(top, head):
        why = "commits not pushed to origin"
    if why is not None or origin is None or head is None:
        return _snapshot(top, subdir, why or "", cache)
    branch = _git_out(top, "symbolic-ref", "--quiet", "--short", "HEAD") or "HEAD"
    return _git_source(origin, branch, head, subdir)


def _git_source(url: str, ref: str, sha: str, subdir: str) -> Delivery:
    source: dict[str, Any] = {"kind": "git", "url": redact_url(url), "ref": ref, "sha": sha}
    if subdir:
        source["subdir"] = subdir
    return Delivery(source, f"git {redact_url(url)} {ref} at {sha[:12]}")


def _remote(url: str, ref: str | None, subdir: str, mirrors: Mirrors) -> Delivery:
    mirrors.fetch(url)
    if ref is None or ref == "HEAD":
        ref = mirrors.default_branch(url)
        if ref is None:
            raise SourceError(f"{redact_url(url)} names no default branch: give --ref")
    return _git_source(url, ref, mirrors.resolve(url, ref), subdir)


def _pushed_ref(top: Path, ref: str, origin: str | None, subdir: str) -> Delivery:
    """An explicit ``--ref`` in a checkout: that commit, which the workers must find on origin."""
    sha = _git_out(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if sha is None:
        raise SourceError(f"--ref {ref}: no such commit in {top}")
    if origin is None:
        raise SourceError(f"--ref {ref}: {top} has no remote origin to take it from (--repo URL)")
    if _unpushed(top, sha):
        raise SourceError(
            f"--ref {ref}: commit {sha[:12]} is not on origin; push it, or submit without "
            "--ref to send a snapshot of the tree"
        )
    return _git_source(origin, ref, sha, subdir)


def _snapshot(root: Path, subdir: str, why: str, cache: Callable[[], Cache] | None) -> Delivery:
    if cache is None:
        raise SourceError(f"{root}: {why}, and there is no cache to upload a snapshot to")
    store = cache()
    with tempfile.TemporaryDirectory(prefix="sparkwing-snapshot-") as tmp:
        packed = snapshot.pack(root, snapshot.tree_files(root), Path(tmp) / "src.tar.gz")
        uploaded = snapshot.upload(store, packed)
    source: dict[str, Any] = {"kind": "snapshot", "key": packed.key, "sha256": packed.sha256}
    if subdir:
        source["subdir"] = subdir
    done = f"uploaded to {store.describe()}" if uploaded else "already there"
    note = f"snapshot {packed.key[:16]} ({why}: {packed.files} files, {_size(packed.size)}), {done}"
    return Delivery(source, note)


def _size(n: int) -> str:
    from sparkwing.bundle.store import human_size

    return human_size(n)


def _unpushed(top: Path, sha: str) -> bool:
    """Whether ``sha`` has commits no remote-tracking branch of origin contains."""
    out = _git_out(top, "rev-list", "-n", "1", sha, "--not", "--remotes=origin")
    return bool(out)


def _toplevel(root: Path) -> Path | None:
    out = _git_out(root, "rev-parse", "--show-toplevel")
    return Path(out) if out else None


def _subdir(root: Path | None, top: Path | None) -> str:
    if root is None or top is None:
        return ""
    rel = root.resolve().relative_to(top.resolve()).as_posix()
    return "" if rel == "." else rel


def _git_out(cwd: Path, *args: str) -> str | None:
    """``git args`` in ``cwd``: its output stripped, or None when it fails."""
    if shutil.which("git") is None:
        return None
    proc = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def project_at(
    source: dict[str, Any], mirrors: Mirrors | None = None, *, url: str | None = None
) -> Project | None:
    """The project file of a git source as it is at the source's commit (read from the
    mirror of ``url``, default the source's own, which is recorded without credentials),
    or None when the commit has no ``.sparkwing/sparkwing.yaml``."""
    from sparkwing.conf.project import PROJECT_DIR, PROJECT_FILE, parse_project

    mirrors = mirrors or Mirrors()
    url, sha = url or str(source["url"]), str(source["sha"])
    rel = "/".join(p for p in (source.get("subdir"), PROJECT_DIR, PROJECT_FILE) if p)
    data = mirrors.show(url, sha, rel)
    if data is None:
        return None
    where = Path(f"{redact_url(url)}@{sha[:12]}") / rel
    return parse_project(data.decode("utf-8", "replace"), where)
