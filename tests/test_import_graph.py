"""The layering of ``src/sparkwing``, read from its source with ``ast``: no import cycle among
its modules, surfaces never reach into the engine or the CLI, the engine never into the CLI,
and the CLI neither forks, nor starts processes itself, nor holds SQL."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

# SQL as this code base writes it: keywords in capitals (prose says "select it with ...").
SQL = re.compile(r"\b(SELECT\s|INSERT\s+INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b)")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``name`` (at ``path``) imports anywhere in its body,
    relative imports resolved; ``from package import module`` counts as the module."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            # The deepest known module the import names (``a.b.c`` -> ``a.b`` if c is a name).
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path, top: str) -> dict[str, set[str]]:
    paths = {module_name(root, p): p for p in sorted((root / top).rglob("*.py"))}
    known = set(paths)
    return {name: imports_of(name, path, known) for name, path in paths.items()}


def find_cycle(
    graph: dict[str, set[str]], allowed: set[tuple[str, str]] | None = None
) -> list[str]:
    """One import cycle (as ``[a, b, ..., a]``) that uses none of the ``allowed`` edges, or
    ``[]``. Iterative depth-first search."""
    graph = {m: {t for t in ts if (m, t) not in (allowed or set())} for m, ts in graph.items()}
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        stack: list[tuple[str, Iterable[str]]] = [(start, iter(sorted(graph[start])))]
        on_path = [start]
        while stack:
            node, children = stack[-1]
            child = next(iter(children), None)
            if child is None:
                stack.pop()
                on_path.pop()
                done.add(node)
                continue
            if child in on_path:
                return [*on_path[on_path.index(child) :], child]
            if child not in done and child in graph:
                stack.append((child, iter(sorted(graph[child]))))
                on_path.append(child)
    return []


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    graph = import_graph(SRC, "sparkwing")
    # The package's lazy re-exports (PEP 562 __getattr__) are the public SDK, not a layer.
    graph["sparkwing"] = set()
    return graph


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    cycle = find_cycle(graph)
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def _offenders(graph: dict[str, set[str]], layer: str, banned: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if name.startswith(layer)
        for target in targets
        if target.startswith(banned)
    )


def test_surfaces_import_no_engine_or_cli(graph: dict[str, set[str]]) -> None:
    banned = ("sparkwing.engine", "sparkwing.cli")
    assert _offenders(graph, "sparkwing.surfaces", banned) == []


def test_engine_imports_no_cli(graph: dict[str, set[str]]) -> None:
    assert _offenders(graph, "sparkwing.engine", ("sparkwing.cli",)) == []


def process_and_sql_uses(path: Path) -> list[str]:
    """``os.fork``, ``Popen`` and SQL statements in string literals, with their lines."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("fork", "Popen"):
            found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and any(
            a.name in ("fork", "Popen") for a in node.names
        ):
            found.append((node.lineno, "imports fork/Popen"))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and SQL.search(node.value)
        ):
            found.append((node.lineno, f"SQL {node.value[:40]!r}"))
    return [f"{path.name}:{line}: {what}" for line, what in sorted(found)]


def test_cli_neither_forks_nor_starts_processes_nor_holds_sql() -> None:
    found = [
        u
        for p in sorted((SRC / "sparkwing" / "cli").rglob("*.py"))
        for u in process_and_sql_uses(p)
    ]
    assert found == []


# -- the checker itself -----------------------------------------------------------------


def _package(tmp_path: Path, files: dict[str, str]) -> dict[str, set[str]]:
    for rel, text in files.items():
        path = tmp_path / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return import_graph(tmp_path, "pkg")


def test_checker_finds_a_cycle_through_a_function_level_relative_import(
    tmp_path: Path,
) -> None:
    graph = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from pkg import b\n",
            "sub/__init__.py": "",
            "b.py": "def f():\n    from .sub import c\n",
            "sub/c.py": "import pkg.a\n",
        },
    )
    assert graph["pkg.b"] == {"pkg.sub", "pkg.sub.c"}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]
    # The same cycle, allowed by one of its edges, is not reported; the graph has no other.
    assert find_cycle(graph, {("pkg.b", "pkg.sub.c")}) == []


def test_checker_passes_an_acyclic_package_and_sees_layer_breaks(tmp_path: Path) -> None:
    graph = _package(
        tmp_path,
        {
            "__init__.py": "",
            "cli/__init__.py": "",
            "cli/x.py": "from ..engine import y\n",
            "engine/__init__.py": "",
            "engine/y.py": "from pkg.cli.x import thing\n",
        },
    )
    assert find_cycle(graph) == ["pkg.cli.x", "pkg.engine.y", "pkg.cli.x"]
    assert _offenders(graph, "pkg.engine", ("pkg.cli",)) == ["pkg.engine.y imports pkg.cli.x"]


def test_checker_sees_forks_popen_and_sql(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        "import os, subprocess\n"
        "def f(db):\n"
        "    os.fork()\n"
        "    subprocess.Popen(['x'])\n"
        "    db.execute('SELECT * FROM runs')\n"
        "    db.execute('DELETE FROM runs')\n"
        "    print('Update the profile, then run it')\n"
    )
    found = process_and_sql_uses(path)
    assert [f.split(": ", 1)[1][:8] for f in found] == [".fork", ".Popen", "SQL 'SEL", "SQL 'DEL"]
