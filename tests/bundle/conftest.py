"""Fixtures for the bundle tests: a ``.sparkwing/`` folder to key, and an installer that records
every call (a uv-shaped command in front of the real pip) so a test can prove none ran."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sparkwing.bundle.key import BundleKey, compute_key

FAKE_UV = """\
#!{python}
# `uv pip install ...` in front of the real pip: records each call, then installs for real.
import os
import subprocess
import sys

with open(os.environ["SPARKWING_TEST_INSTALL_LOG"], "a", encoding="utf-8") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if args[:2] != ["pip", "install"]:
    sys.exit("fake uv: only `uv pip install` is supported, got " + " ".join(args))
rest, skip = [], False
for arg in args[2:]:
    if skip:
        skip = False
    elif arg == "--python":
        skip = True
    else:
        rest.append(arg)
sys.exit(subprocess.call(
    [sys.executable, "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
     "--no-compile", *rest]
))
"""


@pytest.fixture(scope="session")
def download_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pip/uv download cache for the whole session, so each install is local after the
    first."""
    return tmp_path_factory.mktemp("installer-cache")


@pytest.fixture
def recording_installer(tmp_path: Path, download_cache: Path) -> dict[str, str]:
    """Environment for the CLI: a recording `uv` first on PATH, its log file, the shared
    download cache. Read the calls with :func:`installer_calls`."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    uv = bin_dir / "uv"
    uv.write_text(FAKE_UV.format(python=sys.executable), encoding="utf-8")
    uv.chmod(0o755)
    log = tmp_path / "installer-calls.log"
    log.touch()
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "SPARKWING_TEST_INSTALL_LOG": str(log),
        "SPARKWING_INSTALLER": "uv",
        "PIP_CACHE_DIR": str(download_cache / "pip"),
        "UV_CACHE_DIR": str(download_cache / "uv"),
    }


def installer_calls(env: dict[str, str]) -> list[str]:
    return Path(env["SPARKWING_TEST_INSTALL_LOG"]).read_text(encoding="utf-8").splitlines()


class Folder:
    """A ``.sparkwing/`` folder (``root``) to compute keys of; ``memo`` persists between calls
    like the local bundle cache's project memo does."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.root = project / ".sparkwing"
        self.root.mkdir(parents=True, exist_ok=True)
        self.memo: dict[str, Any] = {}

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def key(self, *, fresh_memo: bool = False) -> BundleKey:
        return compute_key(self.root, {} if fresh_memo else self.memo)

    def git(self, *args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=self.project,
            check=True,
            capture_output=True,
        )


@pytest.fixture
def folder(tmp_path: Path) -> Folder:
    f = Folder(tmp_path / "project")
    f.write("ci.py", "import sparkwing as sw\n")
    f.write("helpers/util.py", "X = 1\n")
    return f
