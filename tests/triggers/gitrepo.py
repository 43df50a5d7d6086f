"""A git repository for trigger tests: a bare upstream (``file://`` URL) and a working
clone to commit, branch, tag and push from, with the real ``git``."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.source.gitrepo import git

ZERO = "0" * 40


class Upstream:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.bare = root / "origin.git"
        git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        self.work = root / "work"
        git(root, "clone", "-q", str(self.bare), str(self.work))
        git(self.work, "checkout", "-q", "-b", "main")
        self.url = f"file://{self.bare}"

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        """Write (dedented) files, commit them; the new commit's sha."""
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
            git(self.work, "add", name)
        git(self.work, "commit", "-qm", message)
        return git(self.work, "rev-parse", "HEAD")

    def push(self, branch: str = "main") -> None:
        git(self.work, "push", "-q", "--force", "origin", f"HEAD:refs/heads/{branch}")

    def checkout(self, branch: str, new: bool = False) -> None:
        git(self.work, "checkout", "-q", *(["-b"] if new else []), branch)

    def tag(self, name: str, annotated: bool = True) -> str:
        """Tag HEAD and push the tag; the sha the tag ref points at (a tag object if annotated)."""
        git(self.work, "tag", *(["-a", "-m", name] if annotated else []), name)
        git(self.work, "push", "-q", "origin", f"refs/tags/{name}")
        return git(self.work, "rev-parse", f"refs/tags/{name}")

    def delete_branch(self, branch: str) -> None:
        git(self.work, "push", "-q", "origin", f":refs/heads/{branch}")
