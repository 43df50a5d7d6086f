"""The stat-keyed cache of parsed config files: an unchanged file is not parsed again, any
change is seen, and values holding credentials are never kept."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sparkwing.conf.model import ControllerDef
from sparkwing.conf.parsecache import cached_parse
from sparkwing.conf.profiles import load_user_profiles
from sparkwing.conf.project import find_project


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "swhome"
    monkeypatch.setenv("SPARKWING_HOME", str(home))
    return home


class Counting:
    """A parser returning ``value`` that counts its calls."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.calls = 0

    def parse(self, file: Path) -> object:
        self.calls += 1
        return self.value


def settled(path: Path, text: str) -> Path:
    """Write ``text`` and date the file back past the racy window (as an old file)."""
    path.write_text(text)
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def test_an_unchanged_file_is_parsed_once(tmp_path: Path) -> None:
    file = settled(tmp_path / "a.yaml", "x: 1\n")
    parse = Counting({"x": 1})
    assert cached_parse(file, parse.parse) == {"x": 1}
    assert cached_parse(file, parse.parse) == {"x": 1}
    assert parse.calls == 1


def test_a_change_of_the_same_size_and_age_is_seen(tmp_path: Path) -> None:
    file = settled(tmp_path / "a.yaml", "x: 1\n")
    cached_parse(file, Counting("first").parse)
    st = os.stat(file)
    file.write_text("x: 2\n")  # same size; put the old timestamps back
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns))
    # The change time still moved (it cannot be set back), so the file is parsed again.
    assert cached_parse(file, Counting("second").parse) == "second"


def test_a_file_changed_just_now_is_not_kept(tmp_path: Path) -> None:
    file = tmp_path / "a.yaml"
    file.write_text("x: 1\n")
    parse = Counting("value")
    cached_parse(file, parse.parse)
    cached_parse(file, parse.parse)
    assert parse.calls == 2


def test_values_with_credentials_are_not_kept(tmp_path: Path, _home: Path) -> None:
    file = settled(tmp_path / "profiles.yaml", "x: 1\n")
    controller = ControllerDef(url="https://user:pw@ci.example", token="tok-Secret-991")
    parse = Counting({"ci": controller})
    cached_parse(file, parse.parse)
    cached_parse(file, parse.parse)
    assert parse.calls == 2
    kept = [p for p in _home.rglob("*") if p.is_file()]
    assert not any(b"tok-Secret-991" in p.read_bytes() for p in kept)


def test_an_unreadable_cache_entry_means_parsing_again(tmp_path: Path, _home: Path) -> None:
    file = settled(tmp_path / "a.yaml", "x: 1\n")
    cached_parse(file, Counting("first").parse)
    [entry] = [p for p in _home.rglob("*.pickle")]
    assert oct(entry.stat().st_mode & 0o777) == "0o600"
    entry.write_bytes(b"not a pickle")
    parse = Counting("again")
    assert cached_parse(file, parse.parse) == "again"
    assert parse.calls == 1


def test_a_project_file_edited_between_commands_is_read_anew(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / ".sparkwing").mkdir(parents=True)
    project_file = root / ".sparkwing" / "sparkwing.yaml"
    settled(project_file, "pipelines:\n  - name: one\n    entrypoint: a.py:one\n")
    first = find_project(root)
    again = find_project(root)
    assert first is not None and again == first
    settled(project_file, "pipelines:\n  - name: two\n    entrypoint: a.py:two\n")
    edited = find_project(root)
    assert edited is not None and [p.name for p in edited.pipelines] == ["two"]


def test_user_profiles_keep_their_warnings_when_read_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profiles = settled(
        tmp_path / "profiles.yaml",
        "profiles:\n  dev:\n    state: {type: sqlite, path: /tmp/x.db}\n    colour: blue\n",
    )
    monkeypatch.setenv("SPARKWING_PROFILES", str(profiles))
    first = load_user_profiles()
    again = load_user_profiles()
    assert first.warnings and again.warnings == first.warnings
    assert again.profiles["dev"].state == first.profiles["dev"].state
