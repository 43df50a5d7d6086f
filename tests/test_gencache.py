"""The cache of the code dataclasses generate: classes built from it behave as ones built
without it, a damaged file is ignored, nothing is written where .pyc files would not be,
and other packages' dataclasses are compiled as usual."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sparkwing import _gencache

PROBE = """
import sys
from sparkwing import _gencache
_gencache.install()
from sparkwing.surfaces.state.base import NodeRecord
import dataclasses
a = NodeRecord(run_id="r", node_id="n", needs=["x"])
b = dataclasses.replace(a, status="success")
assert a != b and b.status == "success" and a.status == "pending", (a, b)
assert dataclasses.asdict(b)["needs"] == ["x"]
print(repr(a).split("(")[0], len(_gencache._codes), _gencache._dirty)
"""


def _probe(cache_dir: Path, *, bytecode: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPARKWING_TEST_GENCACHE_DIR": str(cache_dir)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=False
    )


def test_a_second_process_builds_the_same_classes_from_the_cache(tmp_path: Path) -> None:
    first = _probe(tmp_path)
    assert first.returncode == 0, first.stderr
    files = list(tmp_path.glob("dataclasses.*.marshal"))
    assert len(files) == 1, "the first process saved what it compiled"
    second = _probe(tmp_path)
    assert second.returncode == 0, second.stderr
    name, entries, dirty = second.stdout.split()
    assert name == "NodeRecord" and int(entries) > 0
    assert dirty == "False", "everything the second process needed came from the file"


def test_a_damaged_file_is_ignored_and_replaced(tmp_path: Path) -> None:
    assert _probe(tmp_path).returncode == 0
    (path,) = tmp_path.glob("dataclasses.*.marshal")
    path.write_bytes(path.read_bytes()[:100])  # truncated, as a crash could never leave it
    again = _probe(tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split()[2] == "True", "nothing usable was read: compiled afresh"
    assert path.stat().st_size > 100, "and written whole again"


def test_nothing_is_written_under_pythondontwritebytecode(tmp_path: Path) -> None:
    probe = _probe(tmp_path, bytecode=False)
    assert probe.returncode == 0, probe.stderr
    assert not list(tmp_path.iterdir())


def test_other_packages_dataclasses_are_compiled_as_usual(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_gencache, "_codes", {})
    source = "def f():\n return 1\n"
    namespace: dict[str, object] = {}
    _gencache._exec(source, {"__name__": "someone_else"}, namespace)
    assert callable(namespace["f"]) and _gencache._codes == {}
    _gencache._exec(source, {"__name__": "sparkwing.x"}, namespace)
    assert source in _gencache._codes
