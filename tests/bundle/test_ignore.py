"""The .gitignore reader used outside git checkouts agrees with git itself on the patterns
people write, and git's own answer is what a checkout uses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sparkwing.bundle.ignore import git_ignored, lite_ignored, translate

FILES = [
    "ci.py",
    "build.log",
    "logs/today.log",
    "out/a.txt",
    "out/sub/b.txt",
    "docs/out/c.txt",
    "keep/important.log",
    "data/raw.csv",
    "data/clean.csv",
    "deep/a/b/c/secret.key",
    "tmp1.txt",
    "tmpA.txt",
    "x/generated.py",
    "x/y/generated.py",
    "literal#hash.txt",
    "space .txt",
]
SPARKWING_IGNORE = """\
# comment
*.log
!keep/important.log
/out/
data/raw.csv
**/secret.key
tmp[0-9].txt
x/**/generated.py
\\#not-a-comment
"""
ROOT_IGNORE = "space .txt\n.sparkwing/docs/\n"


def _make(root: Path) -> tuple[list[str], list[str]]:
    sw = root / ".sparkwing"
    for rel in FILES:
        path = sw / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
    (sw / ".gitignore").write_text(SPARKWING_IGNORE)
    (root / ".gitignore").write_text(ROOT_IGNORE)
    files = sorted([*FILES, ".gitignore"])
    dirs = sorted({"/".join(f.split("/")[:i]) for f in files for i in range(1, f.count("/") + 1)})
    return files, dirs


def test_lite_reader_matches_what_it_should(tmp_path: Path) -> None:
    files, dirs = _make(tmp_path)
    found = lite_ignored(tmp_path / ".sparkwing", files, dirs)
    ignored = {f for f in files if found.covers(f)}
    assert ignored == {
        "build.log",
        "logs/today.log",
        "out/a.txt",
        "out/sub/b.txt",
        "docs/out/c.txt",
        "data/raw.csv",
        "deep/a/b/c/secret.key",
        "tmp1.txt",
        "x/generated.py",
        "x/y/generated.py",
        "space .txt",
    }
    # Folders whose whole content is ignored by a folder pattern can be skipped by later walks.
    assert {"out", "docs"} <= found.dirs
    assert "keep" not in found.dirs and "data" not in found.dirs


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_lite_reader_agrees_with_git(tmp_path: Path) -> None:
    files, dirs = _make(tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    sw = tmp_path / ".sparkwing"
    by_git = git_ignored(tmp_path, sw, files, dirs)
    assert by_git is not None
    lite = lite_ignored(sw, files, dirs)
    assert {f for f in files if by_git.covers(f)} == {f for f in files if lite.covers(f)}
    assert by_git.dirs == lite.dirs


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_is_no_guide_when_it_ignores_the_whole_folder(tmp_path: Path) -> None:
    files, dirs = _make(tmp_path)
    (tmp_path / ".gitignore").write_text(".sparkwing/\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    assert git_ignored(tmp_path, tmp_path / ".sparkwing", files, dirs) is None


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.py", "a.py", True),
        ("*.py", "deep/a.py", True),
        ("/a.py", "deep/a.py", False),
        ("a/*.py", "a/b/c.py", False),
        ("a/**/c.py", "a/c.py", True),
        ("a/**/c.py", "a/b/b/c.py", True),
        ("a/**", "a/b/c", True),
        ("?.txt", "ab.txt", False),
        ("[!a].txt", "b.txt", True),
        ("[!a].txt", "a.txt", False),
    ],
)
def test_translate(pattern: str, path: str, matches: bool) -> None:
    import re

    assert bool(re.fullmatch(translate(pattern), path)) is matches
