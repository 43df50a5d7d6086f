"""${RUN_ID} / ${PIPELINE_NAME} / ${PROFILE}: per-surface rules at load, substitution at run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sparkwing.conf.interpolate import interpolate_spec
from sparkwing.conf.project import Project
from sparkwing.conf.resolve import builtin_spec
from sparkwing.errors import ConfigError, InvalidKeyError
from sparkwing.surfaces.spec import SurfaceSpec

Load = Callable[[str], Project]
LoadError = Callable[[str], str]

STATE_WHY = "is not allowed in state specs (history must stay listable)"
CACHE_WHY = "is not allowed in cache specs (it would defeat content addressing)"
SECRETS_WHY = "is not allowed in secrets specs (secrets are shared by every pipeline and run)"
EXPECTED_VARS = "expected one of: ${RUN_ID}, ${PIPELINE_NAME}, ${PROFILE}; write $$ for a literal $"

REFUSED = [
    (
        "state",
        "{type: s3, bucket: b, prefix: '${RUN_ID}/'}",
        f"state backend: ${{RUN_ID}} {STATE_WHY}",
    ),
    (
        "state",
        "{type: s3, bucket: b, prefix: 'x/${PIPELINE_NAME}'}",
        f"state backend: ${{PIPELINE_NAME}} {STATE_WHY}",
    ),
    (
        "state",
        "{type: sqlite, path: '~/${PROFILE}.db'}",
        f"state backend: ${{PROFILE}} {STATE_WHY}",
    ),
    (
        "cache",
        "{type: s3, bucket: b, prefix: '${RUN_ID}'}",
        f"cache backend: ${{RUN_ID}} {CACHE_WHY}",
    ),
    (
        "cache",
        "{type: filesystem, path: '/c/${RUN_ID}'}",
        f"cache backend: ${{RUN_ID}} {CACHE_WHY}",
    ),
    (
        "cache",
        "{type: filesystem, path: /c, binaries: {type: s3, bucket: b, prefix: '${RUN_ID}/'}}",
        f"cache.binaries backend: ${{RUN_ID}} {CACHE_WHY}",
    ),
    (
        "secrets",
        "{type: filesystem, path: '/s/${RUN_ID}.env'}",
        f"secrets backend: ${{RUN_ID}} {SECRETS_WHY}",
    ),
    (
        "secrets",
        "{type: filesystem, path: '/s/${PIPELINE_NAME}.env'}",
        f"secrets backend: ${{PIPELINE_NAME}} {SECRETS_WHY}",
    ),
    (
        "logs",
        "{type: s3, bucket: b, prefix: '${FOO}/'}",
        f"logs backend: prefix: unknown variable ${{FOO}} ({EXPECTED_VARS})",
    ),
    (
        "cache",
        "{type: filesystem, path: '/c/${run_id}'}",
        f"cache backend: path: unknown variable ${{run_id}} ({EXPECTED_VARS})",
    ),
    (
        "logs",
        "{type: filesystem, path: '/l/${RUN_ID'}",
        'logs backend: path: unterminated "${"',
    ),
    (
        "logs",
        "{type: filesystem, path: '/l/$HOME'}",
        'logs backend: path: "$" must start ${NAME} (write $$ for a literal $)',
    ),
    (
        "state",
        "{type: s3, bucket: b, prefix: 'cost$'}",
        'state backend: prefix: "$" must start ${NAME} (write $$ for a literal $)',
    ),
]


@pytest.mark.parametrize(("surface", "spec", "message"), REFUSED)
def test_load_refuses_variables_a_surface_may_not_use(
    load_error: LoadError, project_dir: Path, surface: str, spec: str, message: str
) -> None:
    file = project_dir.resolve() / ".sparkwing" / "sparkwing.yaml"
    assert load_error(f"profiles:\n  p:\n    {surface}: {spec}\n") == f"{file}:3: {message}"


def test_error_line_is_the_value_line(load_error: LoadError, project_dir: Path) -> None:
    file = project_dir.resolve() / ".sparkwing" / "sparkwing.yaml"
    text = (
        "profiles:\n  p:\n    state:\n      type: s3\n      bucket: b\n      prefix: '${RUN_ID}'\n"
    )
    assert load_error(text) == f"{file}:6: state backend: ${{RUN_ID}} {STATE_WHY}"


ALLOWED = [
    ("logs", "{type: s3, bucket: b, prefix: '${PROFILE}/${PIPELINE_NAME}/${RUN_ID}/'}"),
    ("logs", "{type: filesystem, path: '~/logs/${RUN_ID}'}"),
    ("cache", "{type: s3, bucket: b, prefix: '${PROFILE}/${PIPELINE_NAME}/'}"),
    (
        "cache",
        "{type: filesystem, path: /c, binaries: {type: s3, bucket: b, prefix: '${PIPELINE_NAME}'}}",
    ),
    ("secrets", "{type: filesystem, path: '~/.sw/${PROFILE}.env'}"),
    ("state", "{type: s3, bucket: b, prefix: 'price$$/state'}"),
]


@pytest.mark.parametrize(("surface", "spec"), ALLOWED)
def test_load_accepts_allowed_variables_and_escapes(load: Load, surface: str, spec: str) -> None:
    profile = load(f"profiles:\n  p:\n    {surface}: {spec}\n").profiles["p"]
    # Loading keeps the template; substitution happens when a run starts.
    assert "$" in repr(getattr(profile, surface))


def test_interpolate_substitutes_prefix_and_path() -> None:
    spec = SurfaceSpec(type="s3", bucket="b", prefix="${PROFILE}/${PIPELINE_NAME}/${RUN_ID}/$$x")
    out = interpolate_spec(spec, run_id="run-1", pipeline="build", profile="ci")
    assert out == SurfaceSpec(type="s3", bucket="b", prefix="ci/build/run-1/$x")


def test_tilde_expands_after_interpolation(isolated_env: Path) -> None:
    spec = SurfaceSpec(type="filesystem", path="~/logs/${PIPELINE_NAME}")
    out = interpolate_spec(spec, run_id="r", pipeline="build", profile="ci")
    assert out.path == f"{isolated_env}/logs/build"


def test_interpolate_recurses_into_binaries() -> None:
    spec = SurfaceSpec(
        type="filesystem",
        path="/c",
        binaries=SurfaceSpec(type="s3", bucket="b", prefix="${PIPELINE_NAME}/"),
    )
    out = interpolate_spec(spec, run_id="r", pipeline="deploy", profile="ci")
    assert out.binaries == SurfaceSpec(type="s3", bucket="b", prefix="deploy/")


def test_specs_without_variables_are_unchanged() -> None:
    spec = SurfaceSpec(type="s3", bucket="b", prefix="state/", options={"k": 1})
    assert interpolate_spec(spec, run_id="r", pipeline="p", profile="x") == spec


@pytest.mark.parametrize("pipeline", ["../escape", "a/b", "", "ok\x00"])
def test_substituted_values_must_be_safe_segments(pipeline: str) -> None:
    spec = SurfaceSpec(type="s3", bucket="b", prefix="logs/${PIPELINE_NAME}/")
    with pytest.raises((InvalidKeyError, ConfigError)):
        interpolate_spec(spec, run_id="r", pipeline=pipeline, profile="ci")


def test_unused_variables_need_no_value() -> None:
    spec = SurfaceSpec(type="s3", bucket="b", prefix="logs/${PROFILE}/")
    out = interpolate_spec(spec, run_id="", pipeline="", profile="ci")
    assert out.prefix == "logs/ci/"


def test_missing_run_id_is_a_clear_error() -> None:
    spec = SurfaceSpec(type="s3", bucket="b", prefix="${RUN_ID}/")
    with pytest.raises(ConfigError) as info:
        interpolate_spec(spec, run_id="", pipeline="p", profile="ci")
    assert str(info.value) == "${RUN_ID} is used in '${RUN_ID}/' but has no value here"


def test_builtin_paths_with_a_dollar_survive_interpolation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "we$ird"
    monkeypatch.setenv("SPARKWING_HOME", str(home))
    spec = builtin_spec("logs")
    out = interpolate_spec(spec, run_id="r", pipeline="p", profile="local")
    assert out.path == str(home / "logs")
