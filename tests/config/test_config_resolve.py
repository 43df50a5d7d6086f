"""Profile resolution (SPEC section 3 steps 1-6) and url_source resolution."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sparkwing import paths
from sparkwing.conf.profiles import UserProfiles, load_user_profiles
from sparkwing.conf.project import Project
from sparkwing.conf.resolve import resolve_profile, resolve_url_source
from sparkwing.conf.resolved import SURFACES
from sparkwing.errors import ConfigError
from sparkwing.surfaces.secrets.base import SecretStore, SecretValue
from sparkwing.surfaces.spec import SurfaceSpec

Load = Callable[[str], Project]
UserFile = Callable[[str], Path]

PROJECT = """\
defaults:
  profile: team
profiles:
  team:
    state: {type: s3, bucket: team, prefix: state}
    cache: {type: s3, bucket: team, prefix: cache}
  ci:
    state: {type: gcs, bucket: ci}
    logs: {type: stdout}
  prod-audit:
    logs: {type: s3, bucket: prod-audit-logs, prefix: "${RUN_ID}/"}
  remote:
    controller: {url: "https://ctl", token: swu_x}
  shared:
    state: {type: sqlite, path: /project/state.db}
pipelines:
  - name: release-prod
    entrypoint: Release
    profile: prod-audit
  - name: remote-job
    entrypoint: RemoteJob
    profile: remote
  - name: plain
    entrypoint: Plain
  - name: broken
    entrypoint: Broken
    profile: ghost
"""

USER = """\
profiles:
  laptop:
    state: {type: sqlite, path: /user/laptop.db}
  shared:
    state: {type: sqlite, path: /user/state.db}
"""

TEAM_STATE = SurfaceSpec(type="s3", bucket="team", prefix="state")
CI_STATE = SurfaceSpec(type="gcs", bucket="ci")
AUDIT_LOGS = SurfaceSpec(type="s3", bucket="prod-audit-logs", prefix="${RUN_ID}/")
CTL = SurfaceSpec(type="controller", url="https://ctl", token="swu_x")


@pytest.fixture
def project(load: Load) -> Project:
    return load(PROJECT)


@pytest.fixture
def user(user_file: UserFile) -> UserProfiles:
    user_file(USER)
    return load_user_profiles()


def builtin(surface: str) -> SurfaceSpec:
    if surface == "state":
        return SurfaceSpec(type="sqlite", path=str(paths.default_state_path()))
    if surface == "cache":
        return SurfaceSpec(type="filesystem", path=str(paths.default_cache_path()))
    if surface == "logs":
        return SurfaceSpec(type="filesystem", path=str(paths.default_logs_path()))
    secrets = paths.default_secrets_path()
    return SurfaceSpec(
        type="filesystem",
        path=str(secrets),
        options={"plain_path": str(secrets.parent / "config.env")},
    )


# --- steps 1-3: which profile ----------------------------------------------------------------

PRECEDENCE = [
    # (flag, SPARKWING_PROFILE, expected name, source, state spec)
    (None, None, "team", "project default", TEAM_STATE),
    (None, "ci", "ci", "env", CI_STATE),
    ("ci", None, "ci", "flag", CI_STATE),
    ("ci", "team", "ci", "flag", CI_STATE),
    ("team", "ci", "team", "flag", TEAM_STATE),
    (None, "", "team", "project default", TEAM_STATE),
]


@pytest.mark.parametrize(("flag", "env_value", "name", "source", "state"), PRECEDENCE)
def test_flag_beats_env_beats_project_default(
    project: Project,
    user: UserProfiles,
    flag: str | None,
    env_value: str | None,
    name: str,
    source: str,
    state: SurfaceSpec,
) -> None:
    env = {} if env_value is None else {"SPARKWING_PROFILE": env_value}
    resolved = resolve_profile(project, flag=flag, env=env, pipeline=None, user=user)
    assert (resolved.name, resolved.source, resolved.state) == (name, source, state)


def test_reasons_say_how_the_profile_was_chosen(project: Project, user: UserProfiles) -> None:
    by_flag = resolve_profile(project, flag="ci", env={}, pipeline=None, user=user)
    assert by_flag.reasons["state"] == 'profile "ci" (from --profile)'
    by_env = resolve_profile(
        project, flag=None, env={"SPARKWING_PROFILE": "ci"}, pipeline=None, user=user
    )
    assert by_env.reasons["logs"] == 'profile "ci" (from SPARKWING_PROFILE)'
    by_default = resolve_profile(project, flag=None, env={}, pipeline=None, user=user)
    assert by_default.reasons["cache"] == 'profile "team" (project default)'


def test_no_selection_and_no_project_is_the_builtin_local_profile(user: UserProfiles) -> None:
    resolved = resolve_profile(None, flag=None, env={}, pipeline="anything", user=user)
    assert (resolved.name, resolved.source) == ("local", "built-in")
    for surface in ("state", "cache", "logs", "secrets"):
        assert resolved.spec(surface) == builtin(surface)
        assert resolved.reasons[surface] == "built-in default"
    assert resolved.chain == [
        "--profile not given",
        "SPARKWING_PROFILE not set",
        "no project file",
        "built-in local defaults",
    ]


def test_builtin_defaults_follow_sparkwing_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, isolated_env: Path
) -> None:
    monkeypatch.setenv("SPARKWING_HOME", str(tmp_path / "swhome"))
    resolved = resolve_profile(None, flag=None, env={}, pipeline=None, user=UserProfiles(tmp_path))
    assert resolved.state.path == str(tmp_path / "swhome" / "state.db")
    assert resolved.cache.path == str(tmp_path / "swhome" / "cache")
    assert resolved.logs.path == str(tmp_path / "swhome" / "logs")
    # Secrets stay in the user's config directory.
    assert resolved.secrets.path == str(isolated_env / ".config" / "sparkwing" / "secrets.env")
    assert resolved.secrets.options == {
        "plain_path": str(isolated_env / ".config" / "sparkwing" / "config.env")
    }


def test_project_without_default_falls_back_to_builtin(load: Load, tmp_path: Path) -> None:
    project = load("profiles:\n  ci:\n    state: {type: sqlite}\n")
    resolved = resolve_profile(
        project, flag=None, env={}, pipeline=None, user=UserProfiles(tmp_path)
    )
    assert (resolved.name, resolved.source, resolved.state) == (
        "local",
        "built-in",
        builtin("state"),
    )
    assert resolved.chain[2] == f"no defaults.profile in {project.file}"


def test_flag_local_selects_the_builtin_when_no_file_declares_it(
    project: Project, user: UserProfiles
) -> None:
    resolved = resolve_profile(project, flag="local", env={}, pipeline=None, user=user)
    assert (resolved.name, resolved.source) == ("local", "flag")
    assert resolved.state == builtin("state")
    assert resolved.reasons["state"] == "built-in default"


def test_user_file_wins_a_name_clash(project: Project, user: UserProfiles) -> None:
    resolved = resolve_profile(project, flag="shared", env={}, pipeline=None, user=user)
    assert resolved.state == SurfaceSpec(type="sqlite", path="/user/state.db")
    assert resolved.chain[-1] == (
        f'profile "shared" from {user.file} (overrides the one in {project.file})'
    )


def test_profile_only_in_user_file_is_found(project: Project, user: UserProfiles) -> None:
    resolved = resolve_profile(project, flag="laptop", env={}, pipeline=None, user=user)
    assert resolved.state == SurfaceSpec(type="sqlite", path="/user/laptop.db")


def test_default_user_file_is_read_when_none_is_passed(
    project: Project, user_file: UserFile
) -> None:
    user_file(USER)
    resolved = resolve_profile(project, flag="laptop", env={}, pipeline=None)
    assert resolved.state.path == "/user/laptop.db"


def test_unknown_profile_names_both_files_and_what_is_available(
    project: Project, user: UserProfiles
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_profile(project, flag="nope", env={}, pipeline=None, user=user)
    assert str(info.value) == (
        f'profile "nope" not found (checked {user.file} and {project.file}); '
        "available: ci, laptop, local, prod-audit, remote, shared, team"
    )


def test_unknown_profile_from_env_without_project(user: UserProfiles) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_profile(
            None, flag=None, env={"SPARKWING_PROFILE": "nope"}, pipeline=None, user=user
        )
    assert str(info.value) == (
        f'profile "nope" not found (checked {user.file}); available: laptop, local, shared'
    )


def test_unknown_project_default_is_prefixed_with_its_line(load: Load, tmp_path: Path) -> None:
    project = load("profiles: {}\ndefaults:\n  profile: gone\n")
    user = UserProfiles(tmp_path / "u.yaml")
    with pytest.raises(ConfigError) as info:
        resolve_profile(project, flag=None, env={}, pipeline=None, user=user)
    assert str(info.value) == (
        f'{project.file}:3: profile "gone" not found (checked {user.file} and {project.file}); '
        "available: local"
    )


# --- steps 4-6: pipeline pins, partial profiles, controller ------------------------------------


def test_pipeline_pin_overrides_only_the_surfaces_it_declares(
    project: Project, user: UserProfiles
) -> None:
    resolved = resolve_profile(project, flag="ci", env={}, pipeline="release-prod", user=user)
    assert resolved.name == "ci"
    assert resolved.logs == AUDIT_LOGS  # not interpolated: the run id comes later
    assert resolved.reasons["logs"] == 'pipeline pin: profile "prod-audit"'
    assert resolved.state == CI_STATE
    assert resolved.reasons["state"] == 'profile "ci" (from --profile)'
    assert resolved.cache == builtin("cache")
    assert resolved.reasons["cache"] == 'built-in default (profile "ci" does not declare cache)'
    assert resolved.chain[-2:] == [
        'pipeline "release-prod" pins profile "prod-audit"',
        f'profile "prod-audit" from {project.file}',
    ]


def test_pin_applies_over_the_project_default_too(project: Project, user: UserProfiles) -> None:
    resolved = resolve_profile(project, flag=None, env={}, pipeline="release-prod", user=user)
    assert (resolved.state, resolved.logs) == (TEAM_STATE, AUDIT_LOGS)
    assert resolved.source == "project default"


def test_pin_over_the_builtin_profile(tmp_path: Path, load: Load) -> None:
    project = load(
        "profiles:\n  audit:\n    logs: {type: stdout}\n"
        "pipelines:\n  - name: p\n    entrypoint: P\n    profile: audit\n"
    )
    resolved = resolve_profile(
        project, flag=None, env={}, pipeline="p", user=UserProfiles(tmp_path)
    )
    assert resolved.logs == SurfaceSpec(type="stdout")
    assert resolved.state == builtin("state")
    assert resolved.reasons["state"] == "built-in default"


@pytest.mark.parametrize("pipeline", ["plain", "not-in-yaml", None])
def test_pipelines_without_a_pin_use_the_resolved_profile(
    project: Project, user: UserProfiles, pipeline: str | None
) -> None:
    resolved = resolve_profile(project, flag="ci", env={}, pipeline=pipeline, user=user)
    assert (resolved.state, resolved.logs) == (CI_STATE, SurfaceSpec(type="stdout"))


def test_pin_to_an_undeclared_profile_is_an_error(project: Project, user: UserProfiles) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_profile(project, flag=None, env={}, pipeline="broken", user=user)
    assert (
        str(info.value) == f'{project.file}:25: pipeline "broken": profile "ghost" is not declared'
    )


def test_controller_only_profile_routes_every_surface(project: Project, user: UserProfiles) -> None:
    resolved = resolve_profile(project, flag="remote", env={}, pipeline=None, user=user)
    for surface in ("state", "cache", "logs", "secrets"):
        assert resolved.spec(surface) == CTL
        assert resolved.reasons[surface] == 'profile "remote" via its controller (from --profile)'


def test_pin_to_a_controller_profile_routes_every_surface(
    project: Project, user: UserProfiles
) -> None:
    resolved = resolve_profile(project, flag="ci", env={}, pipeline="remote-job", user=user)
    assert [resolved.spec(s) for s in ("state", "cache", "logs", "secrets")] == [CTL] * 4
    assert resolved.reasons["state"] == 'pipeline pin: profile "remote" via its controller'


def test_surfaces_record_has_no_tokens(project: Project, user: UserProfiles) -> None:
    resolved = resolve_profile(project, flag="remote", env={}, pipeline=None, user=user)
    # What a run record keeps of each surface (SurfaceSpec.to_record) never holds a token.
    records = [resolved.spec(surface).to_record() for surface in SURFACES]
    assert records and "swu_x" not in repr(records)


# --- url_source ---------------------------------------------------------------------------------


class DictSecrets(SecretStore):
    """The smallest real SecretStore: values held in a dict."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def resolve(self, name: str) -> SecretValue | None:
        value = self.values.get(name)
        return None if value is None else SecretValue(value)

    def describe(self) -> str:
        return "test secrets"


PG = "postgres://u:p@db/sw"


def test_url_wins_when_set() -> None:
    spec = SurfaceSpec(type="postgres", url=PG)
    assert resolve_url_source(spec, None, {}) == PG


def test_env_source_reads_the_environment() -> None:
    spec = SurfaceSpec(type="postgres", url_source="env:PG_DSN")
    assert resolve_url_source(spec, None, {"PG_DSN": PG}) == PG


def test_bare_name_is_a_secret() -> None:
    spec = SurfaceSpec(type="postgres", url_source="PG_DSN")
    assert resolve_url_source(spec, DictSecrets({"PG_DSN": PG}), {"PG_DSN": "wrong"}) == PG


URL_SOURCE_ERRORS = [
    (
        "env:PG_DSN",
        {},
        {},
        'state backend: url_source "env:PG_DSN": environment variable PG_DSN is not set',
    ),
    (
        "env:PG_DSN",
        {"PG_DSN": ""},
        {},
        'state backend: url_source "env:PG_DSN": environment variable PG_DSN is empty',
    ),
    (
        "PG_DSN",
        {},
        {},
        'state backend: url_source "PG_DSN": secret PG_DSN is not defined in test secrets',
    ),
    (
        "PG_DSN",
        {},
        {"PG_DSN": ""},
        'state backend: url_source "PG_DSN": secret PG_DSN is empty in test secrets',
    ),
    (None, {}, {}, "state backend type=postgres requires url or url_source"),
]


@pytest.mark.parametrize(("source", "env", "secrets", "message"), URL_SOURCE_ERRORS)
def test_missing_url_sources_name_the_source(
    source: str | None, env: dict[str, str], secrets: dict[str, str], message: str
) -> None:
    spec = SurfaceSpec(type="postgres", url_source=source)
    with pytest.raises(ConfigError) as info:
        resolve_url_source(spec, DictSecrets(secrets), env)
    assert str(info.value) == message


def test_secret_source_without_a_store() -> None:
    spec = SurfaceSpec(type="mysql", url_source="DSN")
    with pytest.raises(ConfigError) as info:
        resolve_url_source(spec, None, {}, surface="state")
    assert str(info.value) == (
        'state backend: url_source "DSN": no secrets store is available to resolve it'
    )
