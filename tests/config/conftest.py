"""Fixtures for config tests: an isolated environment and project-writing helpers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sparkwing.conf.project import Project, find_project
from sparkwing.errors import ConfigError


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every location sparkwing reads at tmp_path so real user files are never read."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name in ("SPARKWING_HOME", "SPARKWING_PROFILES", "SPARKWING_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """The folder a project lives in (its ``.sparkwing/`` is created on demand)."""
    root = tmp_path / "repo"
    root.mkdir()
    return root


@pytest.fixture
def write_project(project_dir: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        folder = project_dir / ".sparkwing"
        folder.mkdir(exist_ok=True)
        file = folder / "sparkwing.yaml"
        file.write_text(text, encoding="utf-8")
        return file

    return write


@pytest.fixture
def load(write_project: Callable[[str], Path], project_dir: Path) -> Callable[[str], Project]:
    def load_text(text: str) -> Project:
        write_project(text)
        project = find_project(project_dir)
        assert project is not None
        return project

    return load_text


@pytest.fixture
def load_error(load: Callable[[str], Project], project_dir: Path) -> Callable[[str], str]:
    """The one-line ConfigError message a project text produces (fails if it loads)."""

    def error(text: str) -> str:
        with pytest.raises(ConfigError) as info:
            load(text)
        message = str(info.value)
        assert "\n" not in message
        return message

    return error


@pytest.fixture
def user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """Write the user profiles file and point SPARKWING_PROFILES at it."""

    def write(text: str) -> Path:
        file = tmp_path / "user-profiles.yaml"
        file.write_text(text, encoding="utf-8")
        monkeypatch.setenv("SPARKWING_PROFILES", str(file))
        return file

    return write
