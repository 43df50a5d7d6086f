"""The git facts of a run, from one ``git status`` call (no call at all outside a checkout)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sparkwing.sdk.context import Git


def start(root: Path) -> subprocess.Popen[bytes] | None:
    """Begin reading git state in the background while the engine does other work."""
    probe = root
    while not (probe / ".git").exists():
        if probe.parent == probe:
            return None
        probe = probe.parent
    try:
        return subprocess.Popen(
            [
                "git",
                "-C",
                str(root),
                "status",
                "--porcelain=v2",
                "--branch",
                "--untracked-files=no",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
    except OSError:
        return None


def finish(proc: subprocess.Popen[bytes] | None) -> Git:
    if proc is None:
        return Git()
    out, _ = proc.communicate()
    if proc.returncode != 0:
        return Git()
    sha = branch = ""
    dirty = False
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("# branch.oid "):
            sha = line.split(" ", 2)[2]
            sha = "" if sha == "(initial)" else sha
        elif line.startswith("# branch.head "):
            branch = line.split(" ", 2)[2]
            branch = "" if branch == "(detached)" else branch
        elif line and not line.startswith("#"):
            dirty = True
    return Git(sha=sha, branch=branch, dirty=dirty)
