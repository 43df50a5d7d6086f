"""`sparkwing profile` and its subcommands through the real CLI: the precedence table,
surface sources, list / check / migrate / schema, one-line errors with exit 2, user-file
warnings, and that no token, password or DSN is ever printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, ProjectFiles

# A project whose default is `team`, with a pipeline pinned to a logs-only profile.
PROJECT = """
    defaults: {profile: team}
    profiles:
      team:
        state: {type: sqlite, path: "{root}/team/state.db"}
        cache: {type: filesystem, path: "{root}/team/cache"}
        logs: {type: filesystem, path: "{root}/team/logs/${RUN_ID}"}
      shared:
        state: {type: sqlite, path: "{root}/project-shared/state.db"}
      audit:
        logs: {type: filesystem, path: "{root}/audit/logs"}
    pipelines:
      - name: rel
        entrypoint: Rel
        profile: audit
      - name: plain
        entrypoint: Plain
    """

USER = """
    profiles:
      shared:
        state: {type: sqlite, path: "{root}/user-shared/state.db"}
        logs: {type: filesystem, path: "{root}/user-shared/logs"}
      mine:
        cache: {type: filesystem, path: "{root}/mine/cache"}
    """

# Every credential a profile can hold; none of these strings may ever be printed.
SECRETS = ("swu_secret_ctl_123", "swu_secret_spec_456", "pa55word", "hunter2", "postgres://")
SECRET_USER = """
    profiles:
      ctl:
        controller:
          url: "https://bob:hunter2@ctl.example.dev:8443/api?x=1"
          token: swu_secret_ctl_123
      pg:
        state: {type: postgres, url: "postgres://admin:pa55word@db.internal/runs"}
        cache: {type: controller, url: "https://ctl.example.dev", token: swu_secret_spec_456}
      pgsrc:
        state: {type: postgres, url_source: "env:RUNS_DSN"}
    """


def _fill(text: str, root: Path) -> str:
    return text.replace("{root}", str(root))


def write_user(cli: Cli, text: str) -> Path:
    """The user profiles file at its default place ($XDG_CONFIG_HOME/sparkwing/)."""
    cli.config_dir.mkdir(parents=True, exist_ok=True)
    file = cli.config_dir / "profiles.yaml"
    file.write_text(text, encoding="utf-8")
    file.chmod(0o600)
    return file


@pytest.fixture
def setup(project: ProjectFiles, cli: Cli, tmp_path: Path) -> tuple[Cli, Path, Path]:
    """The standard project and user file; returns (cli, data root, user file)."""
    root = tmp_path / "data"
    project.yaml(_fill(PROJECT, root))
    import textwrap

    user = write_user(cli, textwrap.dedent(_fill(USER, root)))
    return cli, root, user


def show(cli: Cli, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = cli("profile", *args, "-o", "json", env=env)
    assert result.code == 0, result.stderr
    doc: dict[str, Any] = result.json()
    return doc


# -- the precedence table ------------------------------------------------------------------

PRECEDENCE = [
    # (flag, SPARKWING_PROFILE, expected profile, source, file kind, state location suffix)
    (None, None, "team", "project default", "project", "team/state.db"),
    (None, "mine", "mine", "env", "user", None),
    ("shared", "mine", "shared", "flag", "user", "user-shared/state.db"),
    ("team", None, "team", "flag", "project", "team/state.db"),
    ("local", None, "local", "flag", "built-in", None),
]


@pytest.mark.parametrize(("flag", "env", "name", "source", "kind", "state"), PRECEDENCE)
def test_precedence_table(
    setup: tuple[Cli, Path, Path],
    project: ProjectFiles,
    flag: str | None,
    env: str | None,
    name: str,
    source: str,
    kind: str,
    state: str | None,
) -> None:
    cli, root, user = setup
    args = ["--profile", flag] if flag else []
    doc = show(cli, *args, env={"SPARKWING_PROFILE": env} if env else None)
    assert doc["profile"] == name
    assert doc["source"] == source
    files = {"user": str(user), "project": str(project.dir / "sparkwing.yaml")}
    assert doc["file"] == files.get(kind, "<built-in>")
    location = doc["surfaces"]["state"]["location"]
    if state is None:  # not declared: the built-in default under SPARKWING_HOME
        assert location == f"sqlite:{cli.sparkwing_home / 'state.db'}"
        assert doc["surfaces"]["state"]["source"] == "built-in"
    else:
        assert location == f"sqlite:{root / state}"
        assert doc["surfaces"]["state"]["source"] == source


def test_without_a_project_default_the_builtin_profile_applies(
    project: ProjectFiles, cli: Cli
) -> None:
    project.yaml("pipelines: [{name: a, entrypoint: A}]\n")
    doc = show(cli)
    assert (doc["profile"], doc["source"], doc["file"]) == ("local", "built-in", "<built-in>")
    assert doc["chain"][-1] == "built-in local defaults"
    surfaces = doc["surfaces"]
    assert surfaces["cache"]["location"] == f"filesystem:{cli.sparkwing_home / 'cache'}"
    assert surfaces["logs"]["location"] == f"filesystem:{cli.sparkwing_home / 'logs'}"
    assert {s["source"] for s in surfaces.values()} == {"built-in"}


def test_user_file_wins_a_name_clash_and_says_so(setup: tuple[Cli, Path, Path]) -> None:
    cli, root, user = setup
    doc = show(cli, "--profile", "shared")
    assert doc["surfaces"]["logs"]["location"] == f"filesystem:{root / 'user-shared/logs'}"
    assert any("overrides the one in" in step for step in doc["chain"])
    human = cli("profile", "--profile", "shared")
    assert human.code == 0
    assert f'profile "shared" from {user} (overrides the one in' in human.stdout


def test_pipeline_pin_overrides_only_the_surfaces_it_declares(
    setup: tuple[Cli, Path, Path],
) -> None:
    cli, root, _ = setup
    doc = show(cli, "--pipeline", "rel")
    assert doc["profile"] == "team" and doc["pinned_profile"] == "audit"
    logs, state = doc["surfaces"]["logs"], doc["surfaces"]["state"]
    assert logs == {
        "type": "filesystem",
        "location": f"filesystem:{root / 'audit/logs'}",
        "source": "pipeline pin",
        "reason": 'pipeline pin: profile "audit"',
    }
    assert (state["source"], state["location"]) == (
        "project default",
        f"sqlite:{root / 'team/state.db'}",
    )
    assert 'pipeline "rel" pins profile "audit"' in doc["chain"]
    # A pipeline without a pin: nothing changes, and the chain says why.
    plain = show(cli, "--pipeline", "plain")
    assert plain["surfaces"]["logs"]["location"].endswith("team/logs/${RUN_ID}")
    assert 'pipeline "plain" pins no profile' in plain["chain"]


def test_undeclared_surfaces_fall_back_to_builtin_and_say_so(
    setup: tuple[Cli, Path, Path],
) -> None:
    cli, _, _ = setup
    doc = show(cli, "--profile", "mine")
    secrets = doc["surfaces"]["secrets"]
    assert secrets["source"] == "built-in"
    assert secrets["reason"] == 'built-in default (profile "mine" does not declare secrets)'
    human = cli("profile", "--profile", "mine")
    assert "does not declare state" in human.stdout
    assert human.stdout.startswith("profile   mine (from --profile)")


def test_group_options_apply_to_subcommands(setup: tuple[Cli, Path, Path]) -> None:
    cli, _, _ = setup
    rows = cli("profile", "-o", "json", "list").ndjson()
    assert {r["name"] for r in rows} >= {"team", "mine", "local"}
    checked = cli("profile", "--profile", "mine", "-o", "json", "check").ndjson()
    assert {r["profile"] for r in checked} == {"mine"}


# -- errors: one line, exit 2 --------------------------------------------------------------


def test_unknown_profile_is_one_line_exit_2(
    setup: tuple[Cli, Path, Path], project: ProjectFiles
) -> None:
    cli, _, user = setup
    for args, env in ((["--profile", "nope"], None), ([], {"SPARKWING_PROFILE": "nope"})):
        code, out, err = cli("profile", *args, env=env)
        assert code == 2 and out == ""
        assert err == (
            f'error: profile "nope" not found (checked {user} and '
            f"{project.dir / 'sparkwing.yaml'}); available: audit, local, mine, shared, team\n"
        )


@pytest.mark.parametrize(
    ("surface", "spec", "message"),
    [
        (
            "state",
            '{type: sqlite, path: "/x/${RUN_ID}/s.db"}',
            "state backend: ${RUN_ID} is not allowed in state specs (history must stay listable)",
        ),
        (
            "cache",
            '{type: filesystem, path: "/x/${RUN_ID}"}',
            "cache backend: ${RUN_ID} is not allowed in cache specs "
            "(it would defeat content addressing)",
        ),
        ("logs", '{type: filesystem, path: "/x/${RUNID}"}', "unknown variable ${RUNID}"),
        ("state", "{type: s3}", "state backend type=s3 requires bucket"),
    ],
)
def test_invalid_specs_fail_every_profile_command(
    project: ProjectFiles, cli: Cli, surface: str, spec: str, message: str
) -> None:
    file = project.yaml(f"profiles:\n  p:\n    {surface}: {spec}\n")
    for args in (["profile"], ["profile", "list"], ["profile", "check"]):
        code, out, err = cli(*args)
        assert code == 2 and out == "", args
        assert err.startswith(f"error: {file}:3: ") and message in err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_user_file_warnings_go_to_stderr(project: ProjectFiles, cli: Cli) -> None:
    file = write_user(cli, "profiles:\n  a:\n    state: {type: sqlite}\n    colour: blue\n")
    for args in (["profile"], ["profile", "list", "-o", "json"], ["profile", "check"]):
        result = cli(*args)
        assert result.code == 0, result.stderr
        assert result.stderr.startswith(f'warning: {file}:4: unknown key "colour" in profile "a"')
        assert "colour" not in result.stdout


def test_legacy_file_blocks_the_profile_commands_but_names_migrate(
    project: ProjectFiles, cli: Cli
) -> None:
    project.write("backends.yaml", "defaults: {state: {type: sqlite}}\n")
    code, _, err = cli("profile")
    assert code == 2
    assert "legacy config file(s) backends.yaml" in err and "sparkwing profile migrate" in err


# -- list -------------------------------------------------------------------------------


def test_list_marks_files_clashes_default_and_builtin(
    setup: tuple[Cli, Path, Path], project: ProjectFiles
) -> None:
    cli, _, user = setup
    rows = cli("profile", "list", "-o", "json").ndjson()
    by = {(r["name"], r["file"]): r for r in rows}
    assert set(by) == {
        ("audit", "project"),
        ("local", "built-in"),
        ("mine", "user"),
        ("shared", "user"),
        ("shared", "project"),
        ("team", "project"),
    }
    assert by[("shared", "user")]["active"] is True
    assert by[("shared", "project")]["active"] is False
    assert by[("shared", "project")]["note"] == f"shadowed by the one in {user}"
    assert [r["name"] for r in rows if r["default"]] == ["team"]
    assert by[("team", "project")]["default_source"] == "project default"
    assert by[("audit", "project")]["surfaces"] == ["logs"]
    assert by[("local", "built-in")]["surfaces"] == ["state", "cache", "logs", "secrets"]
    assert by[("mine", "user")]["path"] == str(user)
    # SPARKWING_PROFILE moves the default mark.
    rows = cli("profile", "list", "-o", "json", env={"SPARKWING_PROFILE": "mine"}).ndjson()
    assert [(r["name"], r["default_source"]) for r in rows if r["default"]] == [("mine", "env")]
    human = cli("profile", "list")
    assert human.code == 0
    assert f"user file     {user}" in human.stdout
    assert f"project file  {project.dir / 'sparkwing.yaml'}" in human.stdout
    line = next(x for x in human.stdout.splitlines() if x.startswith("team"))
    assert line.split()[:3] == ["team", "project", "*"]


def test_list_outside_a_project_shows_user_and_builtin(tmp_path: Path, cli: Cli) -> None:
    write_user(cli, "profiles:\n  local:\n    logs: {type: stdout}\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = cli("profile", "list", "-o", "json", cwd=outside)
    assert result.code == 0, result.stderr
    rows = {(r["name"], r["file"]): r for r in result.ndjson()}
    assert set(rows) == {("local", "user"), ("local", "built-in")}
    # A file's `local` hides the built-in one, which stays listed as shadowed.
    assert rows[("local", "built-in")]["active"] is False
    assert rows[("local", "user")]["default"] is True


# -- check ------------------------------------------------------------------------------


def test_check_builtin_profile_is_reachable_and_leaves_nothing(
    project: ProjectFiles, cli: Cli
) -> None:
    result = cli("profile", "check", "-o", "json")
    assert result.code == 0, result.stderr
    rows = {r["surface"]: r for r in result.ndjson()}
    assert list(rows) == ["state", "cache", "logs", "secrets"]
    assert all(r["reachable"] and r["latency_ms"] is not None for r in rows.values())
    assert rows["cache"]["conditional_writes"] == "enforced"
    assert rows["state"]["conditional_writes"] is None
    # The probe objects were deleted: the cache holds no object (only hidden lock files).
    cache = cli.sparkwing_home / "cache"
    assert [p for p in cache.rglob("*") if p.is_file() and not p.name.startswith(".")] == []
    human = cli("profile", "check")
    assert human.code == 0
    assert human.stdout.splitlines()[0] == "profile local"
    cache_line = next(x for x in human.stdout.splitlines() if x.startswith("cache"))
    assert " yes " in cache_line and "enforced" in cache_line


def test_check_reports_unimplemented_and_unreachable_surfaces(
    project: ProjectFiles, cli: Cli, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    project.yaml(f"""
        profiles:
          mixed:
            state: {{type: mysql, url_source: "env:RUNS_DSN"}}
            cache: {{type: filesystem, path: "{blocker}/cache"}}
            logs: {{type: stdout}}
            secrets: {{type: env, prefix: "APP_"}}
        """)
    result = cli("profile", "check", "--profile", "mixed", "-o", "json")
    assert result.code == 1
    rows = {r["surface"]: r for r in result.ndjson()}
    assert rows["state"]["reachable"] is False
    assert rows["state"]["location"] == "mysql:env:RUNS_DSN"
    assert rows["state"]["detail"] == (
        'state backend type "mysql" is recognized but not implemented in this build'
    )
    assert rows["cache"]["reachable"] is False and "cannot" in rows["cache"]["detail"]
    assert rows["logs"]["reachable"] is True and "not support" in rows["logs"]["detail"]
    assert rows["secrets"]["reachable"] is True
    human = cli("profile", "check", "--profile", "mixed")
    assert human.code == 1 and "recognized but not implemented" in human.stdout


# -- no credential is ever printed ------------------------------------------------------


def _legacy_project(tmp_path: Path) -> Path:
    """A second project with a legacy backends.yaml holding credentials."""
    root = tmp_path / "legacy-project"
    (root / ".sparkwing").mkdir(parents=True)
    (root / ".sparkwing" / "backends.yaml").write_text(
        "defaults:\n"
        "  state: {type: postgres, url: 'postgres://admin:pa55word@db.internal/runs'}\n"
        "environments:\n"
        "  prod:\n"
        "    controller: {url: 'https://bob:hunter2@ctl.example.dev', token: swu_secret_ctl_123}\n"
        "    cache: {type: controller, token: swu_secret_spec_456}\n",
        encoding="utf-8",
    )
    return root


def test_no_token_password_or_dsn_in_any_profile_output(
    project: ProjectFiles, cli: Cli, tmp_path: Path
) -> None:
    import textwrap

    write_user(cli, textwrap.dedent(SECRET_USER))
    project.yaml(
        "defaults: {profile: ctl}\n"
        "pipelines: [{name: p, entrypoint: P, profile: pg}]\n"
        "profiles:\n"
        "  proj-pg:\n"
        "    state: {type: postgres, url: 'postgres://admin:pa55word@db.internal/x'}\n"
    )
    legacy = _legacy_project(tmp_path)
    commands: list[tuple[list[str], Path | None]] = [(["profile", "list"], None)]
    for name in ("ctl", "pg", "pgsrc", "proj-pg"):
        commands += [
            (["profile", "--profile", name], None),
            (["profile", "--profile", name, "--pipeline", "p"], None),
            (["profile", "check", "--profile", name], None),
        ]
    commands += [(["profile", "migrate"], legacy)]
    outputs = []
    for args, cwd in commands:
        for fmt in ("table", "json"):
            result = cli(*args, "-o", fmt, cwd=cwd, env={"RUNS_DSN": "postgres://u:pa55word@h/d"})
            assert result.code in (0, 1), (args, result.stderr)
            outputs.append(result.stdout + result.stderr)
    text = "\n".join(outputs)
    for secret in SECRETS:
        assert secret not in text
    # What is shown instead.
    assert "postgres:<redacted>" in text
    assert "postgres:env:RUNS_DSN" in text
    assert "controller:ctl.example.dev:8443" in text
    assert "<redacted>" in text


# -- migrate -----------------------------------------------------------------------------

LEGACY = """
# written by sparkwing 0.4
defaults:
  state: {type: sqlite, path: /srv/sw/state.db}
  logs: {type: filesystem, path: /srv/sw/logs}
environments:
  shared:
    state: {type: s3, bucket: team, prefix: state}
    logs: {type: s3, bucket: team, prefix: "logs/${RUN_ID}", region: eu-west-1}
  ci:
    cache: {type: filesystem, path: ~/ci-cache}
"""

EXISTING = """\
# keep this comment
defaults:
  args: {region: eu}  # and this one
profiles:
  mine: {state: {type: sqlite}}
pipelines:
  - name: a
    entrypoint: A
"""


def test_migrate_prints_the_profiles_without_changing_anything(
    project: ProjectFiles, cli: Cli
) -> None:
    legacy = project.write("backends.yaml", LEGACY)
    project.write("runners.yaml", "runners: {}\n")
    result = cli("profile", "migrate")
    assert result.code == 0, result.stderr
    assert legacy.exists() and not (project.dir / "sparkwing.yaml").exists()
    assert "\nprofiles:\n  default:\n    state:\n      type: sqlite\n" in result.stdout
    assert "\ndefaults:\n  profile: default\n" in result.stdout
    assert f'warning: {legacy}:8: unknown key "region"' in result.stderr
    assert "runners.yaml cannot be converted automatically" in result.stderr
    doc = cli("profile", "migrate", "-o", "json").json()
    assert doc["written"] is False and doc["renamed_to"] is None
    assert doc["defaults_profile"] == "default"
    assert doc["manual"] == [str(project.dir / "runners.yaml")]
    assert doc["profiles"]["shared"]["logs"] == {
        "type": "s3",
        "bucket": "team",
        "prefix": "logs/${RUN_ID}",
    }
    assert doc["profiles"]["ci"] == {"cache": {"type": "filesystem", "path": "~/ci-cache"}}
    assert list(doc["profiles"]) == ["default", "shared", "ci"]


def test_migrate_write_merges_keeps_the_file_and_renames_the_legacy_one(
    project: ProjectFiles, cli: Cli
) -> None:
    legacy = project.write("backends.yaml", LEGACY)
    file = project.yaml(EXISTING)
    result = cli("profile", "migrate", "--write")
    assert result.code == 0, result.stderr
    assert not legacy.exists()
    assert (project.dir / "backends.yaml.migrated").read_text() == legacy_text(LEGACY)
    text = file.read_text()
    # Everything that was there is still there, in order, comments included.
    kept = [line for line in EXISTING.splitlines() if line]
    assert [line for line in text.splitlines() if line in kept] == kept
    assert "  profile: default\n" in text
    # The project now loads, and the migrated profiles resolve like any other.
    doc = show(cli)
    assert (doc["profile"], doc["source"]) == ("default", "project default")
    assert doc["surfaces"]["state"]["location"] == "sqlite:/srv/sw/state.db"
    assert doc["surfaces"]["cache"]["source"] == "built-in"
    shared = show(cli, "--profile", "shared")
    assert shared["surfaces"]["logs"]["location"] == "s3://team/logs/${RUN_ID}"
    names = {r["name"] for r in cli("profile", "list", "-o", "json").ndjson()}
    assert names == {"default", "shared", "ci", "mine", "local"}
    # Running it again finds nothing left to convert.
    again = cli("profile", "migrate")
    assert again.code == 0 and "nothing to convert" in again.stdout


def legacy_text(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).lstrip("\n")


def test_migrate_refuses_a_name_clash_and_changes_nothing(project: ProjectFiles, cli: Cli) -> None:
    legacy = project.write("backends.yaml", LEGACY)
    file = project.yaml("profiles:\n  ci: {state: {type: sqlite}}\n")
    code, _, err = cli("profile", "migrate", "--write")
    assert code == 2
    assert err == (
        f'error: {file}: cannot migrate backends.yaml: profile(s) "ci" already exist in '
        "sparkwing.yaml; rename or remove them there first (nothing was changed)\n"
    )
    assert legacy.exists() and file.read_text() == "profiles:\n  ci: {state: {type: sqlite}}\n"


def test_migrate_reports_invalid_legacy_specs_with_file_and_line(
    project: ProjectFiles, cli: Cli
) -> None:
    legacy = project.write("backends.yaml", "environments:\n  x:\n    state: {type: s3}\n")
    code, _, err = cli("profile", "migrate")
    assert code == 2
    assert err == f"error: {legacy}:3: state backend type=s3 requires bucket\n"


def test_migrate_keeps_an_existing_default_and_says_so(project: ProjectFiles, cli: Cli) -> None:
    project.write("backends.yaml", "defaults: {state: {type: sqlite}}\n")
    file = project.yaml("defaults: {profile: local}\n")
    result = cli("profile", "migrate", "--write", "-o", "json")
    assert result.code == 0, result.stderr
    doc = result.json()
    assert doc["written"] is True
    assert any('defaults.profile stays "local"' in w for w in doc["warnings"])
    assert show(cli)["profile"] == "local"
    assert "default:" in file.read_text()


def test_migrate_outside_a_project_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    outside = tmp_path / "nowhere"
    outside.mkdir()
    code, _, err = cli("profile", "migrate", cwd=outside)
    assert code == 2 and err.startswith("error: no .sparkwing/ folder found")


# -- schema -------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["project", "user"])
def test_schema_prints_the_shipped_schema(cli: Cli, which: str) -> None:
    from sparkwing.conf.schema import shipped_path

    result = cli("profile", "schema", "--file", which)
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert result.stdout == shipped_path(which).read_text(encoding="utf-8")
