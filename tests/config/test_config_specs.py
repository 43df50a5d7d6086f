"""Surface spec validation with SPEC section 3's exact texts, in both config files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sparkwing.conf.profiles import load_user_profiles, parse_user_profiles
from sparkwing.conf.project import Project
from sparkwing.errors import ConfigError
from sparkwing.surfaces import registry
from sparkwing.surfaces.spec import SurfaceSpec

Load = Callable[[str], Project]
LoadError = Callable[[str], str]
UserFile = Callable[[str], Path]

# The lists in the errors come from the registry; SPEC's own types lead them in its order
# (a backend added later is appended, see test_type_lists_keep_spec_order).
STATE_LIST = ", ".join(registry.types("state"))
CACHE_LIST = ", ".join(registry.types("cache"))
LOGS_LIST = ", ".join(registry.types("logs"))
SECRETS_LIST = ", ".join(registry.types("secrets"))
SPEC_TYPES = {
    "state": "sqlite, postgres, s3, gcs, azure-blob, controller, mysql",
    "cache": "filesystem, s3, gcs, azure-blob, controller",
    "logs": "filesystem, s3, gcs, azure-blob, controller, stdout",
    "secrets": "filesystem, dotenv, env, controller, none",
}


@pytest.mark.parametrize("surface", sorted(SPEC_TYPES))
def test_type_lists_keep_spec_order(surface: str) -> None:
    listed = ", ".join(registry.types(surface))
    assert listed == SPEC_TYPES[surface] or listed.startswith(SPEC_TYPES[surface] + ", ")


# (surface, spec as written after "<surface>:", expected message after "file:3: ")
SPEC_ERRORS = [
    ("state", "{}", "state backend: type is required"),
    ("state", "", "state backend: type is required"),
    ("logs", "{path: /x}", "logs backend: type is required"),
    ("secrets", "{type: ''}", "secrets backend: type is required"),
    ("state", "{type: s3}", "state backend type=s3 requires bucket"),
    ("cache", "{type: gcs, prefix: p}", "cache backend type=gcs requires bucket"),
    ("logs", "{type: azure-blob}", "logs backend type=azure-blob requires bucket"),
    ("cache", "{type: filesystem}", "cache backend type=filesystem requires path"),
    ("logs", "{type: filesystem, path: ''}", "logs backend type=filesystem requires path"),
    ("secrets", "{type: filesystem}", "secrets backend type=filesystem requires path"),
    ("secrets", "{type: dotenv}", "secrets backend type=dotenv requires path"),
    ("state", "{type: postgres}", "state backend type=postgres requires url or url_source"),
    ("state", "{type: mysql}", "state backend type=mysql requires url or url_source"),
    (
        "state",
        "{type: postgres, url: 'postgres://x', url_source: PG}",
        "state backend type=postgres accepts only one of url or url_source",
    ),
    (
        "state",
        "{type: mysql, url: 'mysql://x', url_source: 'env:DB'}",
        "state backend type=mysql accepts only one of url or url_source",
    ),
    (
        "state",
        "{type: redis}",
        f'state backend type "redis" is not recognized (expected one of: {STATE_LIST})',
    ),
    (
        "cache",
        "{type: sqlite}",
        f'cache backend type "sqlite" is not recognized (expected one of: {CACHE_LIST})',
    ),
    (
        "logs",
        "{type: postgres, url: x}",
        f'logs backend type "postgres" is not recognized (expected one of: {LOGS_LIST})',
    ),
    (
        "secrets",
        "{type: s3, bucket: b}",
        f'secrets backend type "s3" is not recognized (expected one of: {SECRETS_LIST})',
    ),
    (
        "cache",
        "{type: filesystem, path: /c, binaries: {type: s3}}",
        "cache.binaries backend type=s3 requires bucket",
    ),
    (
        "cache",
        "{type: filesystem, path: /c, binaries: {type: stdout}}",
        f'cache.binaries backend type "stdout" is not recognized (expected one of: {CACHE_LIST})',
    ),
    (
        "cache",
        "{type: filesystem, path: /c, binaries: {}}",
        "cache.binaries backend: type is required",
    ),
    (
        "state",
        "{type: controller}",
        "state backend type=controller requires url (or a controller: entry in the profile)",
    ),
    (
        "state",
        "{type: postgres, url_source: 'env:'}",
        'state backend: url_source "env:" names no environment variable',
    ),
    (
        "state",
        "{type: s3, bucket: 'a/b'}",
        "state backend: bucket 'a/b' must not contain '/', '\\\\' or be '.' / '..'",
    ),
    (
        "logs",
        "{type: s3, bucket: b, prefix: 'runs/../../etc'}",
        "logs backend: prefix '..' must not contain '/', '\\\\' or be '.' / '..'",
    ),
    (
        "logs",
        '{type: filesystem, path: "/tmp/a\\tb"}',
        "logs backend: path must not contain control characters",
    ),
]


@pytest.mark.parametrize(("surface", "spec", "message"), SPEC_ERRORS)
def test_project_spec_errors_use_spec_texts(
    load_error: LoadError, project_dir: Path, surface: str, spec: str, message: str
) -> None:
    file = project_dir.resolve() / ".sparkwing" / "sparkwing.yaml"
    text = f"profiles:\n  p:\n    {surface}: {spec}\n"
    assert load_error(text) == f"{file}:3: {message}"


@pytest.mark.parametrize(("surface", "spec", "message"), SPEC_ERRORS)
def test_user_file_spec_errors_are_errors_too(
    tmp_path: Path, surface: str, spec: str, message: str
) -> None:
    file = tmp_path / "profiles.yaml"
    with pytest.raises(ConfigError) as info:
        parse_user_profiles(f"profiles:\n  p:\n    {surface}: {spec}\n", file)
    assert str(info.value) == f"{file}:3: {message}"


def test_error_line_is_the_surface_key_in_block_style(
    load_error: LoadError, project_dir: Path
) -> None:
    file = project_dir.resolve() / ".sparkwing" / "sparkwing.yaml"
    text = "profiles:\n  ok:\n    state: {type: sqlite}\n  bad:\n    logs:\n      type: s3\n"
    assert load_error(text) == f"{file}:5: logs backend type=s3 requires bucket"


VALID_SPECS = [
    ("state", "{type: sqlite}", SurfaceSpec(type="sqlite")),
    ("state", "{type: sqlite, path: ~/db.sqlite}", SurfaceSpec(type="sqlite", path="~/db.sqlite")),
    # mysql is recognized at load; opening it is what reports "not implemented".
    (
        "state",
        "{type: mysql, url_source: MYSQL_DSN}",
        SurfaceSpec(type="mysql", url_source="MYSQL_DSN"),
    ),
    (
        "state",
        "{type: postgres, url_source: 'env:PG'}",
        SurfaceSpec(type="postgres", url_source="env:PG"),
    ),
    ("state", "{type: gcs, bucket: b}", SurfaceSpec(type="gcs", bucket="b")),
    ("logs", "{type: stdout}", SurfaceSpec(type="stdout")),
    # YAML reads a bare ~ as null; as a path it means the home directory.
    ("cache", "{type: filesystem, path: ~}", SurfaceSpec(type="filesystem", path="~")),
    ("logs", "{type: s3, bucket: b, prefix: ''}", SurfaceSpec(type="s3", bucket="b")),
    ("secrets", "{type: env, prefix: SW_}", SurfaceSpec(type="env", prefix="SW_")),
    ("secrets", "{type: none}", SurfaceSpec(type="none")),
    (
        "secrets",
        "{type: filesystem, path: ~/.sw/secrets.env}",
        SurfaceSpec(type="filesystem", path="~/.sw/secrets.env"),
    ),
    (
        "state",
        "{type: controller, url: 'https://c', token_env: SW_TOKEN}",
        SurfaceSpec(type="controller", url="https://c", token_env="SW_TOKEN"),
    ),
    (
        "cache",
        "{type: s3, bucket: c, binaries: {type: filesystem, path: /bins}}",
        SurfaceSpec(type="s3", bucket="c", binaries=SurfaceSpec(type="filesystem", path="/bins")),
    ),
]


@pytest.mark.parametrize(("surface", "spec", "expected"), VALID_SPECS)
def test_valid_specs_load_as_written(
    load: Load, surface: str, spec: str, expected: SurfaceSpec
) -> None:
    profile = load(f"profiles:\n  p:\n    {surface}: {spec}\n").profiles["p"]
    assert getattr(profile, surface) == expected
    assert profile.declared_surfaces() == [surface]


def test_controller_spec_takes_url_and_token_from_the_profile(load: Load) -> None:
    profile = load(
        "profiles:\n  p:\n    controller: {url: 'https://c', token: swu_1}\n"
        "    logs: {type: controller}\n    state: {type: sqlite}\n"
    ).profiles["p"]
    assert profile.logs == SurfaceSpec(type="controller", url="https://c", token="swu_1")
    # The controller also stands in for every surface the profile leaves out.
    assert profile.declared("cache") == SurfaceSpec(
        type="controller", url="https://c", token="swu_1"
    )
    assert profile.declared("state") == SurfaceSpec(type="sqlite")


# --- the user profiles file ------------------------------------------------------------------


def test_missing_user_file_is_empty(tmp_path: Path) -> None:
    user = load_user_profiles(tmp_path / "absent.yaml")
    assert (user.profiles, user.warnings) == ({}, [])


def test_default_path_follows_sparkwing_profiles(user_file: UserFile) -> None:
    file = user_file("profiles:\n  laptop:\n    state: {type: sqlite}\n")
    user = load_user_profiles()
    assert user.file == file and list(user.profiles) == ["laptop"]
    assert user.profiles["laptop"].file == file


def test_default_path_follows_xdg_then_home(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "sparkwing").mkdir(parents=True)
    (xdg / "sparkwing" / "profiles.yaml").write_text("profiles: {a: {}}\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    assert list(load_user_profiles().profiles) == ["a"]
    monkeypatch.delenv("XDG_CONFIG_HOME")
    home_file = isolated_env / ".config" / "sparkwing" / "profiles.yaml"
    home_file.parent.mkdir(parents=True)
    home_file.write_text("profiles: {b: {}}\n")
    assert list(load_user_profiles().profiles) == ["b"]


def test_unknown_keys_in_user_file_are_warnings(user_file: UserFile) -> None:
    file = user_file(
        "profiles:\n"
        "  laptop:\n"
        "    state: {type: sqlite, colour: blue}\n"
        "    shiny: true\n"
        "    controller: {url: 'https://c', tokn: x}\n"
        "editor: vim\n"
    )
    user = load_user_profiles()
    assert user.warnings == [
        f'{file}:3: unknown key "colour" in profile "laptop" state (expected one of: '
        "type, path, bucket, prefix, url, url_source, token, token_env)",
        f'{file}:4: unknown key "shiny" in profile "laptop" '
        "(expected one of: controller, state, cache, logs, secrets, notify)",
        f'{file}:5: unknown key "tokn" in profile "laptop" controller '
        "(expected one of: url, token, token_env)",
        f'{file}:6: unknown key "editor" in the top level (expected one of: profiles)',
    ]
    laptop = user.profiles["laptop"]
    assert laptop.state == SurfaceSpec(type="sqlite")
    assert laptop.controller is not None and laptop.controller.url == "https://c"


def test_malformed_user_file_is_an_error(user_file: UserFile) -> None:
    file = user_file("profiles: [\n")
    with pytest.raises(ConfigError) as info:
        load_user_profiles()
    assert str(info.value).startswith(f"{file}:2:1: invalid YAML: ")
