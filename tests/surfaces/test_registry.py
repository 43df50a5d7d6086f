"""The backend registry is the one list of types: every entry opens, and the loader, the
JSON Schemas and the factory all take their types and required fields from it."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import sparkwing
from sparkwing.conf.project import parse_project
from sparkwing.conf.schema import schema
from sparkwing.errors import ConfigError
from sparkwing.surfaces import registry
from sparkwing.surfaces.open import open_cache, open_logs, open_secrets, open_state
from sparkwing.surfaces.spec import SurfaceSpec

FILE = Path("/repo/.sparkwing/sparkwing.yaml")
SRC = Path(sparkwing.__file__).parent
IMPLEMENTED = [b for b in registry.backends() if b.implemented]


@pytest.mark.parametrize("entry", IMPLEMENTED, ids=lambda b: f"{b.surface}-{b.type}")
def test_every_opener_imports(entry: registry.Backend) -> None:
    opener = entry.load()
    assert callable(opener)
    # State openers also take the profile's secret store; the others only the spec.
    params = list(inspect.signature(opener).parameters)
    assert params[: 2 if entry.surface == "state" else 1] == (
        ["spec", "secrets"] if entry.surface == "state" else ["spec"]
    )


@pytest.mark.parametrize("dotted", sorted(registry.OBJECT_STORES.values()))
def test_every_object_store_adapter_imports(dotted: str) -> None:
    assert callable(registry.load(dotted + ".from_env"))


def test_the_registry_is_a_leaf() -> None:
    tree = ast.parse(Path(registry.__file__).read_text(encoding="utf-8"))
    imported = [
        node.module or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0
    ] + [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    assert [m for m in imported if m.startswith("sparkwing")] == []


def test_importing_the_loader_opens_no_backend() -> None:
    # The loader used to import the factory (and through it conf.resolve): a cycle.
    code = (
        "import sys, sparkwing.conf.specs, sparkwing.conf.schema; "
        "print(sorted(m for m in sys.modules if m.startswith('sparkwing.surfaces.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = out.stdout
    assert "sparkwing.surfaces.open'" not in loaded and "sparkwing.surfaces.openers" not in loaded
    assert "sparkwing.surfaces.state." not in loaded and "sparkwing.surfaces.cache." not in loaded


def test_no_other_module_lists_the_object_stores() -> None:
    listing = [
        path.relative_to(SRC).as_posix()
        for path in sorted(SRC.rglob("*.py"))
        if all(f'"{name}"' in path.read_text(encoding="utf-8") for name in registry.OBJECT_STORES)
    ]
    assert listing == ["surfaces/registry.py"]


@pytest.mark.parametrize("which", ["project", "user"])
def test_schema_types_come_from_the_registry(which: str) -> None:
    defs = schema(which)["$defs"]
    for surface in (*registry.SURFACES, "cache.binaries"):
        assert defs[surface]["properties"]["type"]["enum"] == list(registry.types(surface))


def test_schema_required_fields_come_from_the_registry() -> None:
    defs = schema("project")["$defs"]
    for surface in registry.SURFACES:
        rules = defs[surface].get("allOf", [])
        for entry in registry.backends(surface):
            if entry.has("controller"):
                continue
            mine = [r["then"] for r in rules if entry.type in r["if"]["properties"]["type"]["enum"]]
            wanted = [{"required": list(entry.required)}] if entry.required else []
            wanted += [{"oneOf": [{"required": [n]} for n in g]} for g in entry.one_of]
            assert mine == wanted, (surface, entry.type)


def _load_error(surface: str, body: str) -> str:
    with pytest.raises(ConfigError) as err:
        parse_project(f"profiles:\n  p:\n    {surface}: {{{body}}}\n", FILE)
    return str(err.value)


@pytest.mark.parametrize(
    "entry",
    [b for b in IMPLEMENTED if b.required and not b.has("controller")],
    ids=lambda b: f"{b.surface}-{b.type}",
)
def test_missing_required_field_error_is_derived_from_the_registry(
    entry: registry.Backend,
) -> None:
    message = _load_error(entry.surface, f"type: {entry.type}")
    missing = entry.missing({"type": entry.type})
    assert missing == f" type={entry.type} requires {entry.required[0]}"
    assert message == f"{FILE}:3: {entry.surface} backend{missing}"


def test_spec_texts_for_exclusive_groups_stay_as_written() -> None:
    assert _load_error("state", "type: postgres") == (
        f"{FILE}:3: state backend type=postgres requires url or url_source"
    )
    assert _load_error("state", "type: postgres, url: x, url_source: y") == (
        f"{FILE}:3: state backend type=postgres accepts only one of url or url_source"
    )
    assert _load_error("cache", "type: controller") == (
        f"{FILE}:3: cache backend type=controller requires url (or a controller: entry in the "
        "profile)"
    )
    expected = ", ".join(registry.types("logs"))
    assert _load_error("logs", "type: sqlite") == (
        f'{FILE}:3: logs backend type "sqlite" is not recognized (expected one of: {expected})'
    )


def test_recognized_but_not_implemented() -> None:
    mysql = registry.backend("state", "mysql")
    assert mysql is not None and not mysql.implemented
    with pytest.raises(ConfigError) as err:
        open_state(SurfaceSpec(type="mysql", url="mysql://x"))
    assert str(err.value) == (
        'state backend type "mysql" is recognized but not implemented in this build'
    )
    for opener, surface in ((open_cache, "cache"), (open_logs, "logs"), (open_secrets, "secrets")):
        with pytest.raises(ConfigError, match=f'^{surface} backend type "nope" is recognized'):
            opener(SurfaceSpec(type="nope"))


def test_capabilities_are_known_names() -> None:
    for entry in registry.backends():
        assert entry.supports <= set(registry.CAPABILITIES), entry
    with pytest.raises(ValueError):
        registry.supports("state", "sqlite", "teleport")
    assert registry.supports("state", "s3", "probed")
    assert not registry.supports("state", "nope", "gates")
    # Whose url is a DSN (redacted wherever a spec is shown), whatever the surface.
    assert registry.types_with("dsn") == {"postgres", "mysql"}
    assert SurfaceSpec(type="postgres", url="postgres://u:pw@h/db").describe() == (
        "postgres:<redacted>"
    )
    with pytest.raises(ValueError):
        registry.types_with("teleport")
