"""The bundle key: stable for equal inputs, changed by any source or requirement change,
unchanged by gitignored files and Python's caches (with and without git)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from sparkwing.bundle.key import compare, compute_key
from tests.bundle.conftest import Folder

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def test_equal_inputs_give_equal_keys_wherever_the_project_is(
    folder: Folder, tmp_path: Path
) -> None:
    first = folder.key()
    assert folder.key().key == first.key
    assert folder.key(fresh_memo=True).key == first.key
    copy = tmp_path / "elsewhere" / ".sparkwing"
    shutil.copytree(folder.root, copy)
    assert compute_key(copy, {}).key == first.key
    assert [c.name for c in first.components] == [
        "python",
        "platform",
        "sparkwing",
        "sources",
        "requirements",
    ]
    assert len(first.key) == 64


def _rename(f: Folder) -> None:
    (f.root / "helpers" / "util.py").rename(f.root / "helpers" / "util2.py")


MUTATIONS: dict[str, Callable[[Folder], object]] = {
    "edit": lambda f: f.write("ci.py", "import sparkwing as sw  # edited\n"),
    "add": lambda f: f.write("extra.py", "Y = 2\n"),
    "add nested": lambda f: f.write("helpers/deep/more.txt", "data\n"),
    "remove": lambda f: (f.root / "helpers" / "util.py").unlink(),
    "rename": _rename,
    "chmod +x": lambda f: (f.root / "ci.py").chmod(0o755),
    "add a .gitignore": lambda f: f.write(".gitignore", "*.log\n"),
    "requirement": lambda f: f.write("requirements.txt", "six==1.16.0\n"),
}


@pytest.mark.parametrize("change", sorted(MUTATIONS))
def test_any_change_under_sparkwing_changes_the_key(folder: Folder, change: str) -> None:
    before = folder.key().key
    MUTATIONS[change](folder)
    after = folder.key()
    assert after.key != before
    assert folder.key(fresh_memo=True).key == after.key  # the memo agrees with a full scan


def test_a_requirement_change_shows_as_requirements_only(folder: Folder) -> None:
    folder.write("requirements.txt", "six==1.16.0\n")
    pinned = folder.key()
    folder.write("requirements.txt", "# pinned for the release tools\nsix==1.16.0\n\n")
    assert folder.key().key == pinned.key  # comments and blank lines are not requirements
    folder.write("requirements.txt", "six==1.17.0\n")
    bumped = folder.key()
    assert bumped.key != pinned.key
    last = {"components": [c.to_dict() for c in pinned.components], "files": pinned.files}
    status, files = compare(bumped, last)
    assert status == {
        "python": "same",
        "platform": "same",
        "sparkwing": "same",
        "sources": "same",
        "requirements": "changed",
    }
    assert bumped.requirements.lines == ("six==1.17.0",)
    assert files == {"added": [], "removed": [], "modified": []}


def test_pyproject_dependencies_and_lock_files_are_requirements(folder: Folder) -> None:
    folder.write("pyproject.toml", '[project]\nname = "p"\ndependencies = ["six>=1.16"]\n')
    loose = folder.key()
    assert loose.requirements.source == "pyproject.toml"
    assert loose.requirements.lines == ("six>=1.16",)
    folder.write("pyproject.toml", '[project]\nname = "p"\ndependencies = ["six>=1.17"]\n')
    assert folder.key().key != loose.key
    # A lock, when present, is what the bundle installs and what the key covers.
    folder.write("requirements.lock", "six==1.17.0\n")
    locked = folder.key()
    assert locked.requirements.source == "requirements.lock"
    assert locked.requirements.lines == ("six==1.17.0",)
    folder.write("requirements.lock", "six==1.16.0\n")
    assert folder.key().key != locked.key


def _ignored_changes(f: Folder) -> None:
    """Everything here is ignored or a cache: none of it may change the key."""
    f.write("build.log", "log 1\n")  # *.log
    f.write("out/result.txt", "generated\n")  # out/
    f.write("notes.tmp", "scratch\n")  # ignored by the project root's .gitignore
    f.write("__pycache__/ci.cpython-311.pyc", "bytecode")
    f.write("helpers/__pycache__/util.cpython-311.pyc", "bytecode")
    f.write("stray.pyc", "bytecode")


def _touch_ignored(f: Folder) -> None:
    for rel in ("build.log", "out/result.txt", "notes.tmp"):
        path = f.root / rel
        path.write_text(path.read_text() + "more\n")
        os.utime(path, ns=(1, 1))
    f.write("out/new/deeper.txt", "new file in an ignored folder\n")


@pytest.mark.parametrize("with_git", [False, pytest.param(True, marks=needs_git)])
def test_ignored_files_and_caches_do_not_change_the_key(folder: Folder, with_git: bool) -> None:
    folder.write(".gitignore", "*.log\nout/\n")
    (folder.project / ".gitignore").write_text("*.tmp\n")
    if with_git:
        folder.git("init", "-q")
        folder.git("add", ".")
        folder.git("commit", "-q", "-m", "init")
    base = folder.key()
    _ignored_changes(folder)
    assert folder.key().key == base.key
    _touch_ignored(folder)
    assert folder.key().key == base.key
    assert folder.key(fresh_memo=True).key == base.key
    assert "build.log" not in base.files and ".gitignore" in base.files


@pytest.mark.parametrize("with_git", [False, pytest.param(True, marks=needs_git)])
def test_a_folder_no_longer_ignored_comes_back_into_the_key(folder: Folder, with_git: bool) -> None:
    (folder.project / ".gitignore").write_text(".sparkwing/gen/\n")
    if with_git:
        folder.git("init", "-q")
    folder.write("gen/made.py", "Z = 3\n")
    ignored = folder.key()
    assert "gen/made.py" not in ignored.files
    folder.write("gen/more.py", "W = 4\n")  # inside a skipped folder: still ignored
    assert folder.key().key == ignored.key
    (folder.project / ".gitignore").write_text("")
    back = folder.key()
    assert {"gen/made.py", "gen/more.py"} <= set(back.files)
    assert back.key != ignored.key


@needs_git
def test_a_tracked_file_counts_even_if_a_pattern_matches_it(folder: Folder) -> None:
    folder.write(".gitignore", "*.cfg\n")
    folder.write("pinned.cfg", "a = 1\n")
    folder.git("init", "-q")
    folder.git("add", "-f", ".sparkwing/pinned.cfg")
    tracked = folder.key()
    assert "pinned.cfg" in tracked.files
    folder.write("pinned.cfg", "a = 2\n")
    assert folder.key().key != tracked.key


def test_the_memo_skips_reading_files_whose_size_and_mtime_are_unchanged(folder: Folder) -> None:
    path = folder.root / "ci.py"
    os.utime(path, ns=(10**18, 10**18))  # old enough to be memoized
    first = folder.key()
    st = path.stat()
    path.write_text("import sparkwing as XX\n")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    # Same (size, mtime_ns): the memo's hash is used, as git's index would; a full scan reads.
    assert folder.key().key == first.key
    assert folder.key(fresh_memo=True).key != first.key
    assert set(folder.memo["files"]) == {"ci.py"}
