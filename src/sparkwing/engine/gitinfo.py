"""The git facts of a run, from one ``git status`` call (no call at all outside a checkout).

Spawned with ``os.posix_spawnp`` and read from a pipe, so the engine's start-up does not pay
for importing ``subprocess``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sparkwing.sdk.context import Git


@dataclass
class GitProbe:
    """A ``git`` query started in the background: its process and output pipe."""

    pid: int
    fd: int


def start(root: Path) -> GitProbe | None:
    """Begin reading git state in the background while the engine does other work."""
    probe = root
    while not (probe / ".git").exists():
        if probe.parent == probe:
            return None
        probe = probe.parent
    read_fd, write_fd = os.pipe()
    devnull = os.open(os.devnull, os.O_RDWR)
    argv = ["git", "-C", str(root), "status", "--porcelain=v2", "--branch", "--untracked-files=no"]
    try:
        # posix_spawnp looks git up on PATH itself (shutil.which would import shutil).
        pid = os.posix_spawnp(
            "git",
            argv,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, write_fd, 1),
                (os.POSIX_SPAWN_DUP2, devnull, 2),
            ],
        )
    except OSError:  # no git on PATH
        os.close(read_fd)
        return None
    finally:
        os.close(write_fd)
        os.close(devnull)
    return GitProbe(pid, read_fd)


def finish(probe: GitProbe | None) -> Git:
    if probe is None:
        return Git()
    chunks = []
    with os.fdopen(probe.fd, "rb") as fh:
        chunks.append(fh.read())
    _, status = os.waitpid(probe.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return Git()
    return parse(b"".join(chunks).decode(errors="replace"))


def parse(text: str) -> Git:
    sha = branch = ""
    dirty = False
    for line in text.splitlines():
        if line.startswith("# branch.oid "):
            sha = line.split(" ", 2)[2]
            sha = "" if sha == "(initial)" else sha
        elif line.startswith("# branch.head "):
            branch = line.split(" ", 2)[2]
            branch = "" if branch == "(detached)" else branch
        elif line and not line.startswith("#"):
            dirty = True
    return Git(sha=sha, branch=branch, dirty=dirty)
