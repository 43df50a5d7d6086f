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
# The generated __init__ is annotated with the fields' own annotations, as without the cache.
assert NodeRecord.__init__.__annotations__["run_id"] == "str", NodeRecord.__init__.__annotations__
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


OTHERS = """
import sys
from sparkwing import _gencache
_gencache.install()
import dataclasses, typing
assert "inspect" not in sys.modules, "dataclasses alone must not import inspect yet"


@dataclasses.dataclass
class Point:
    x: int
    y: "list[str]"


# A user's class without a docstring: its signature comes from the real inspect, imported now.
assert Point.__doc__ == "Point(x: int, y: 'list[str]')", Point.__doc__
assert typing.get_type_hints(Point.__init__) == {"x": int, "y": list[str], "return": type(None)}
import inspect
assert type(inspect) is type(sys), "every other importer gets the real module"
assert dataclasses.inspect is inspect
print("ok")
"""


def test_other_packages_dataclasses_keep_real_annotations_and_docstrings(tmp_path: Path) -> None:
    env = {**os.environ, "SPARKWING_TEST_GENCACHE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", OTHERS], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
