"""Project discovery, legacy files, strict parsing and malformed YAML."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sparkwing.conf.model import PipelineEntry
from sparkwing.conf.project import Project, find_project, legacy_files
from sparkwing.errors import ConfigError, UsageError

Load = Callable[[str], Project]
LoadError = Callable[[str], str]
WriteProject = Callable[[str], Path]

VALID = """\
defaults:
  profile: ci
  args: {region: eu, replicas: 3}
profiles:
  ci:
    state: {type: sqlite}
pipelines:
  - name: release-prod
    entrypoint: Release
    profile: ci
    description: Ship it
    args: {dry_run: true}
  - name: lint
    entrypoint: lint
"""


# --- discovery ---------------------------------------------------------------------------


def test_walks_up_from_a_nested_directory(write_project: WriteProject, project_dir: Path) -> None:
    file = write_project(VALID)
    nested = project_dir / "src" / "pkg"
    nested.mkdir(parents=True)
    project = find_project(nested)
    assert project is not None
    assert project.root == project_dir.resolve()
    assert project.dir == project_dir.resolve() / ".sparkwing"
    assert project.file == file.resolve()


def test_explicit_dir_is_where_the_walk_starts(
    write_project: WriteProject, project_dir: Path, tmp_path: Path
) -> None:
    write_project(VALID)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert find_project(elsewhere) is None
    project = find_project(elsewhere, Path("../repo"))
    assert project is not None and project.root == project_dir.resolve()


def test_explicit_dir_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="-C nope: no such directory"):
        find_project(tmp_path, Path("nope"))


def test_no_project_returns_none(tmp_path: Path) -> None:
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    assert find_project(lonely) is None


def test_sparkwing_dir_without_file_is_an_empty_project(project_dir: Path) -> None:
    (project_dir / ".sparkwing").mkdir()
    project = find_project(project_dir)
    assert project is not None
    assert project.file == project_dir.resolve() / ".sparkwing" / "sparkwing.yaml"
    assert (project.pipelines, project.profiles) == ([], {})
    assert project.defaults.profile is None and project.defaults.args == {}


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "~\n"])
def test_empty_documents_are_empty_projects(load: Load, text: str) -> None:
    project = load(text)
    assert project.pipelines == [] and project.profiles == {}


@pytest.mark.parametrize(
    "names",
    [["backends.yaml"], ["pipelines.yaml"], ["runners.yaml", "sources.yaml"]],
)
def test_legacy_files_are_refused_with_a_migration_hint(
    write_project: WriteProject, project_dir: Path, names: list[str]
) -> None:
    write_project(VALID)
    folder = project_dir.resolve() / ".sparkwing"
    for name in names:
        (folder / name).write_text("defaults: {}\n")
    with pytest.raises(ConfigError) as info:
        find_project(project_dir)
    assert str(info.value) == (
        f"{folder / names[0]}: legacy config file(s) {', '.join(names)} in {folder}: fold them "
        "into sparkwing.yaml (`sparkwing profile migrate` prints the converted config)"
    )
    assert [p.name for p in legacy_files(folder)] == names


# --- the parsed model ----------------------------------------------------------------------


def test_valid_project_parses_every_field(load: Load) -> None:
    project = load(VALID)
    assert project.defaults.profile == "ci"
    assert project.defaults.profile_line == 2
    assert project.defaults.args == {"region": "eu", "replicas": 3}
    assert project.pipelines == [
        PipelineEntry(
            name="release-prod",
            entrypoint="Release",
            profile="ci",
            description="Ship it",
            args={"dry_run": True},
            line=8,
        ),
        PipelineEntry(name="lint", entrypoint="lint", line=13),
    ]
    assert project.pipeline("lint") is project.pipelines[1]
    assert project.pipeline("missing") is None
    assert project.profiles["ci"].state is not None
    assert project.profiles["ci"].line == 5


def test_args_keep_yaml_scalars_and_dates_as_text(load: Load) -> None:
    project = load(
        "defaults:\n"
        "  args:\n"
        "    hex: 0x1f\n"
        "    big: 1_000\n"
        "    ratio: 0.5\n"
        "    flag: yes\n"
        "    nothing: ~\n"
        "    day: 2024-01-02\n"
        "    items: [a, 1, {k: v}]\n"
        "    on: kept-as-written\n"
    )
    assert project.defaults.args == {
        "hex": 31,
        "big": 1000,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
        "day": "2024-01-02",
        "items": ["a", 1, {"k": "v"}],
        "on": "kept-as-written",
    }


def test_anchors_and_merge_keys_work(load: Load) -> None:
    project = load(
        "profiles:\n"
        "  base: &base\n"
        "    state: {type: sqlite}\n"
        "    logs: {type: stdout}\n"
        "  ci:\n"
        "    <<: *base\n"
        "    logs: {type: filesystem, path: /var/log/sw}\n"
    )
    ci = project.profiles["ci"]
    assert ci.state is not None and ci.state.type == "sqlite"
    assert ci.logs is not None and ci.logs.type == "filesystem"


# --- strictness: unknown keys, with line numbers --------------------------------------------

SPEC_EXPECTED = "type, path, bucket, prefix, url, url_source, token, token_env"

UNKNOWN_KEYS = [
    (
        "profiles: {}\nflavour: 1\n",
        2,
        'unknown key "flavour" in the top level (expected one of: defaults, profiles, pipelines)',
    ),
    (
        "defaults:\n  profile: ci\n  prfile: x\n",
        3,
        'unknown key "prfile" in defaults (expected one of: profile, args, retention)',
    ),
    (
        "profiles:\n  ci:\n    stat: {type: sqlite}\n",
        3,
        'unknown key "stat" in profile "ci" '
        "(expected one of: controller, state, cache, logs, secrets, notify)",
    ),
    (
        "profiles:\n  ci:\n    state:\n      type: s3\n      bucket: b\n      buckt: c\n",
        6,
        f'unknown key "buckt" in profile "ci" state (expected one of: {SPEC_EXPECTED})',
    ),
    (
        "profiles:\n  ci:\n    logs: {type: stdout, binaries: {type: s3}}\n",
        3,
        f'unknown key "binaries" in profile "ci" logs (expected one of: {SPEC_EXPECTED})',
    ),
    (
        "profiles:\n  ci:\n    cache:\n      type: filesystem\n      path: /c\n      extra: 1\n",
        6,
        f'unknown key "extra" in profile "ci" cache (expected one of: {SPEC_EXPECTED}, binaries)',
    ),
    (
        "profiles:\n  ci:\n    cache:\n      type: filesystem\n      path: /c\n"
        "      binaries:\n        type: s3\n        bucket: b\n        region: x\n",
        9,
        f'unknown key "region" in profile "ci" cache.binaries (expected one of: {SPEC_EXPECTED})',
    ),
    (
        "profiles:\n  ci:\n    controller:\n      url: https://c\n      tokn: x\n",
        5,
        'unknown key "tokn" in profile "ci" controller (expected one of: url, token, token_env)',
    ),
    (
        "pipelines:\n  - name: build\n    entrypoint: Build\n    entry: x\n",
        4,
        'unknown key "entry" in pipeline "build" '
        "(expected one of: name, entrypoint, profile, description, args, requires, on, "
        "concurrency)",
    ),
]


@pytest.mark.parametrize(("text", "line", "message"), UNKNOWN_KEYS)
def test_unknown_keys_are_errors_naming_file_line_and_key(
    load_error: LoadError, project_dir: Path, text: str, line: int, message: str
) -> None:
    file = project_dir.resolve() / ".sparkwing" / "sparkwing.yaml"
    assert load_error(text) == f"{file}:{line}: {message}"


# --- wrong shapes and types ----------------------------------------------------------------

SHAPE_ERRORS = [
    ("- a\n- b\n", 1, "the top level must be a mapping (got a list)"),
    ("just text\n", 1, "the top level must be a mapping (got str)"),
    ("pipelines: {a: 1}\n", 1, "pipelines must be a list (got a mapping)"),
    ("pipelines:\n  - build\n", 2, "pipelines[0] must be a mapping (got str)"),
    ("pipelines:\n  - entrypoint: X\n", 2, 'pipelines[0] is missing required key "name"'),
    (
        "pipelines:\n  - name: 5\n    entrypoint: X\n",
        2,
        "pipelines[0] name must be a string (got int)",
    ),
    ("pipelines:\n  - name: b\n", 2, 'pipeline "b" is missing required key "entrypoint"'),
    ("pipelines:\n  - name: b\n    entrypoint: ''\n", 2, 'pipeline "b" has an empty "entrypoint"'),
    (
        "pipelines:\n  - name: b\n    entrypoint: [X]\n",
        3,
        'pipeline "b" entrypoint must be a string (got a list)',
    ),
    (
        "pipelines:\n  - name: b\n    entrypoint: B\n  - name: c\n    entrypoint: C\n"
        "  - name: b\n    entrypoint: B2\n",
        6,
        'duplicate pipeline name "b" (first at line 2)',
    ),
    (
        "pipelines:\n  - name: ../up\n    entrypoint: X\n",
        2,
        "pipeline name '../up' must not contain '/', '\\\\' or be '.' / '..'",
    ),
    (
        "pipelines:\n  - name: b\n    entrypoint: B\n    args: [1]\n",
        4,
        'pipeline "b" args must be a mapping (got a list)',
    ),
    (
        "pipelines:\n  - name: b\n    entrypoint: B\n    profile: 3\n",
        4,
        'pipeline "b" profile must be a string (got int)',
    ),
    ("profiles: [a]\n", 1, "profiles must be a mapping (got a list)"),
    ("profiles:\n  ci: 3\n", 2, 'profile "ci" must be a mapping (got int)'),
    (
        "profiles:\n  a/b: {}\n",
        2,
        "profile name 'a/b' must not contain '/', '\\\\' or be '.' / '..'",
    ),
    ("profiles:\n  ci:\n    state: sqlite\n", 3, 'profile "ci" state must be a mapping (got str)'),
    (
        "profiles:\n  ci:\n    state: {type: [sqlite]}\n",
        3,
        'profile "ci" state.type must be a string (got a list)',
    ),
    (
        "profiles:\n  ci:\n    state: {type: s3, bucket: 2024}\n",
        3,
        'profile "ci" state.bucket must be a string (got int)',
    ),
    ("profiles:\n  ci:\n    controller: {token: t}\n", 3, 'profile "ci" controller requires url'),
    ("defaults:\n  profile: [a]\n", 2, "defaults.profile must be a string (got a list)"),
    ("defaults: [profile]\n", 1, "defaults must be a mapping (got a list)"),
    ("defaults:\n  args: 3\n", 2, "defaults.args must be a mapping (got int)"),
    ("defaults:\n  args:\n    [a]: 1\n", 3, "keys in defaults.args must be strings (got a list)"),
    (
        "defaults:\n  args:\n    blob: !!binary aGk=\n",
        3,
        "unsupported YAML tag tag:yaml.org,2002:binary in defaults.args",
    ),
    ("defaults:\n  args:\n    loop: &x [*x]\n", 3, "recursive alias in defaults.args"),
    ("defaults:\n  args: !!set {a}\n", 2, "defaults.args must be a mapping (got set)"),
    ("profiles: !local {}\n", 1, "profiles must be a mapping (got tag !local)"),
    (
        "profiles:\n  a: &a\n    <<: *a\n",
        2,
        'recursive merge (<<) in profile "a"',
    ),
    ("profiles:\n  ci:\n    <<: 3\n", 3, 'merge (<<) in profile "ci" takes mappings only'),
    (
        "profiles: {}\nprofiles: {}\n",
        2,
        'duplicate key "profiles" in the top level (first at line 1)',
    ),
    (
        "profiles:\n  ci:\n    state: {type: sqlite, type: s3}\n",
        3,
        'duplicate key "type" in profile "ci" state (first at line 3)',
    ),
    (
        "defaults:\n  args:\n    a: 1\n    a: 2\n",
        4,
        'duplicate key "a" in defaults.args (first at line 3)',
    ),
]


@pytest.mark.parametrize(("text", "line", "message"), SHAPE_ERRORS)
def test_wrong_shapes_are_one_line_errors_with_file_and_line(
    load_error: LoadError, project_dir: Path, text: str, line: int, message: str
) -> None:
    file = project_dir.resolve() / ".sparkwing" / "sparkwing.yaml"
    assert load_error(text) == f"{file}:{line}: {message}"


# --- malformed YAML ---------------------------------------------------------------------------

MALFORMED = [
    ("a: b: c\n", "1:5: invalid YAML: mapping values are not allowed in this context"),
    (
        "pipelines: [1\n",
        "2:1: invalid YAML: while parsing a flow sequence; did not find expected ',' or ']'",
    ),
    (
        "profiles:\n  ci:\n    state: 'x\n",
        "4:1: invalid YAML: while scanning a quoted scalar; found unexpected end of stream",
    ),
    ("defaults: *nowhere\n", "1:11: invalid YAML: found undefined alias"),
    (
        "---\na: 1\n---\nb: 2\n",
        "3:1: invalid YAML: expected a single document in the stream; but found another document",
    ),
    (
        "defaults: \x07\n",
        "1:11: invalid YAML: unacceptable character #x0007: control characters are not allowed",
    ),
]


@pytest.mark.parametrize(("text", "tail"), MALFORMED)
def test_malformed_yaml_is_one_line_with_line_and_column(
    load_error: LoadError, project_dir: Path, text: str, tail: str
) -> None:
    file = project_dir.resolve() / ".sparkwing" / "sparkwing.yaml"
    assert load_error(text) == f"{file}:{tail}"


def test_invalid_utf8_names_the_byte(project_dir: Path) -> None:
    folder = project_dir / ".sparkwing"
    folder.mkdir()
    (folder / "sparkwing.yaml").write_bytes(b"a: \xff\n")
    with pytest.raises(ConfigError) as info:
        find_project(project_dir)
    assert str(info.value) == f"{folder.resolve() / 'sparkwing.yaml'}: not valid UTF-8 (byte 3)"


def test_unreadable_file_is_a_config_error(project_dir: Path) -> None:
    folder = project_dir / ".sparkwing"
    (folder / "sparkwing.yaml").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"sparkwing\.yaml: cannot read: "):
        find_project(project_dir)
