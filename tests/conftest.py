"""Shared fixtures: ``project`` writes a throwaway project's ``.sparkwing/`` files and ``cli``
runs the real ``sparkwing`` console script in it, with HOME and every sparkwing location
pointed into the test's temporary folder so no real user file is read or written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.engine.swtest import Proj

# Variables that would make a test read or write outside its temporary folder.
_SCRUBBED = (
    "SPARKWING_PROFILE",
    "SPARKWING_PROFILES",
    "SPARKWING_HOME",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    # The suite may itself run inside these CIs: runs under test get plain output unless a
    # test sets them.
    "GITHUB_ACTIONS",
    "GITHUB_RUN_ID",
    "GITHUB_STEP_SUMMARY",
    "BUILDKITE",
)


def sparkwing_command() -> list[str]:
    """The console script installed beside this interpreter (what a user runs), else the
    module entry point of the same installation."""
    script = Path(sys.executable).parent / "sparkwing"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "sparkwing.cli.main"]


class CliResult(NamedTuple):
    """What one CLI invocation did; unpacks as ``code, out, err``."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as one JSON document."""
        return json.loads(self.stdout)

    def ndjson(self) -> list[Any]:
        """stdout parsed as JSON lines (how list commands print with ``-o json``)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


class ProjectFiles:
    """A project folder under the test's tmp_path; ``write`` puts files in ``.sparkwing/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / ".sparkwing"

    def write(self, name: str, text: str) -> Path:
        """Write ``.sparkwing/<name>`` (dedented, so indented triple-quoted code works)."""
        return self._write(self.dir / name, text)

    def yaml(self, text: str) -> Path:
        """Write ``.sparkwing/sparkwing.yaml``."""
        return self.write("sparkwing.yaml", text)

    def file(self, relpath: str, text: str) -> Path:
        """Write a file relative to the project root (sources the pipeline works on)."""
        return self._write(self.root / relpath, text)

    def copy_from(self, source: Path) -> None:
        """Copy a whole project (for example one of examples/) into this folder."""
        shutil.copytree(
            source,
            self.root,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "dist", "build"),
        )

    @staticmethod
    def _write(path: Path, text: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path


class Cli:
    """Runs ``sparkwing`` as a subprocess in ``cwd`` with an isolated environment.

    ``cli("run", "ci")`` returns a :class:`CliResult`; it never raises on a non-zero exit.
    """

    def __init__(self, cwd: Path, base: Path) -> None:
        self.cwd = cwd
        self.home = base / "home"
        self.sparkwing_home = base / "sparkwing-home"
        self.config_dir = self.home / ".config" / "sparkwing"
        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _SCRUBBED and not k.startswith("SPARKWING_")
        }
        env.update(
            {
                "HOME": str(self.home),
                "SPARKWING_HOME": str(self.sparkwing_home),
                "XDG_CONFIG_HOME": str(self.home / ".config"),
                "PYTHONDONTWRITEBYTECODE": "1",
                "NO_COLOR": "1",
            }
        )
        self.env: dict[str, str] = env

    def __call__(
        self,
        *args: str,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 120,
    ) -> CliResult:
        proc = subprocess.run(
            [*sparkwing_command(), *args],
            cwd=cwd or self.cwd,
            env={**self.env, **(env or {})},
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    def write_secrets(self, values: Mapping[str, str]) -> Path:
        """Write the default masked secrets file (``secrets.env``)."""
        return self._dotenv("secrets.env", values)

    def write_config(self, values: Mapping[str, str]) -> Path:
        """Write the default plain config file (``config.env``)."""
        return self._dotenv("config.env", values)

    def _dotenv(self, name: str, values: Mapping[str, str]) -> Path:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        path = self.config_dir / name
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
        path.chmod(0o600)
        return path


@pytest.fixture
def project(tmp_path: Path) -> ProjectFiles:
    """An empty project folder (``project.root``) whose ``.sparkwing/`` files tests write."""
    root = tmp_path / "project"
    root.mkdir()
    return ProjectFiles(root)


@pytest.fixture
def cli(project: ProjectFiles, tmp_path: Path) -> Cli:
    """The real CLI, run in ``project.root`` with a temporary HOME / SPARKWING_HOME /
    XDG_CONFIG_HOME (see ``cli.home``, ``cli.sparkwing_home``, ``cli.config_dir``)."""
    return Cli(project.root, tmp_path)


@pytest.fixture
def proj(tmp_path: Path) -> Iterator[Proj]:
    """A temp project with its own HOME and SPARKWING_HOME, driven through the real CLI;
    runs a test started and left running are ended afterwards."""
    project = Proj(tmp_path)
    yield project
    project.close()
