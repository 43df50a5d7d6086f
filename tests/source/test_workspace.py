"""Run workspaces: locked while a worker uses one, removed after, kept on request, and
cleaned by the next worker when the one using it died."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sparkwing.source import snapshot
from sparkwing.source.mirror import SourceError
from sparkwing.source.workspace import Workspaces, prepare
from sparkwing.surfaces.cache.filesystem import FilesystemCache


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARKWING_HOME", str(tmp_path / "swhome"))


def test_a_held_workspace_survives_cleaning_and_goes_when_released(tmp_path: Path) -> None:
    spaces = Workspaces(tmp_path / "work")
    held = spaces.hold("run-1", {})
    held.path.mkdir()
    (held.path / "f").write_text("x")
    assert Workspaces(tmp_path / "work").clean_stale() == []  # another worker: in use
    assert held.path.exists()
    spaces.release(held, keep=False)
    assert not held.path.exists() and not held.lock.exists()


def test_a_kept_workspace_stays_and_a_dead_workers_is_removed(tmp_path: Path) -> None:
    spaces = Workspaces(tmp_path / "work")
    kept = spaces.hold("run-kept", {})
    kept.path.mkdir()
    spaces.release(kept, keep=True)
    # A worker process that holds a workspace and is killed: the kernel drops its lock.
    code = (
        "import os, signal, sys; from pathlib import Path;"
        "from sparkwing.source.workspace import Workspaces;"
        f"h = Workspaces(Path({str(tmp_path / 'work')!r})).hold('run-dead', {{}});"
        "h.path.mkdir(); os.kill(os.getpid(), signal.SIGKILL)"
    )
    subprocess.run([sys.executable, "-c", code], check=False)
    dead = tmp_path / "work" / "run-dead"
    assert dead.is_dir()
    assert spaces.clean_stale() == [dead]
    assert not dead.exists() and not (tmp_path / "work" / "run-dead.lock").exists()
    assert kept.path.is_dir()


def test_prepare_unpacks_a_snapshot_and_needs_a_project_in_it(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "app" / ".sparkwing").mkdir(parents=True)
    (tree / "app" / ".sparkwing" / "p.py").write_text("")
    packed = snapshot.pack(tree, snapshot.tree_files(tree), tmp_path / "s.tar.gz")
    cache = FilesystemCache(tmp_path / "cache")
    snapshot.upload(cache, packed)
    source = {"kind": "snapshot", "key": packed.key, "sha256": packed.sha256, "subdir": "app"}
    root = prepare(source, cache, tmp_path / "work" / "r1")
    assert root == tmp_path / "work" / "r1" / "app"
    assert (root / ".sparkwing" / "p.py").exists()
    with pytest.raises(SourceError, match=r"has no \.sparkwing/ folder"):
        prepare({**source, "subdir": ""}, cache, tmp_path / "work" / "r2")
    with pytest.raises(SourceError, match="unknown source kind"):
        prepare({"kind": "ftp"}, cache, tmp_path / "work" / "r3")
    with pytest.raises(SourceError, match="needs a cache"):
        prepare(source, None, tmp_path / "work" / "r4")
