"""Profiles end to end through `sparkwing run`: each run's state, cache and logs land only
where its profile says, a pipeline pin moves just the surfaces it declares, `${RUN_ID}` in a
logs path gives one folder per run that `runs logs` still finds, and a state or cache spec
using `${RUN_ID}` is refused before anything runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.conftest import Cli, ProjectFiles

PIPELINES = """
from dataclasses import dataclass
from pathlib import Path

import sparkwing as sw


@dataclass
class Args:
    word: str = "hello"


def build(ctx):
    Path("dist").mkdir(exist_ok=True)
    # Content unique to the run, so its artifact blob is unique to the run too.
    Path("dist/out.txt").write_text(f"{ctx.args.word} from {ctx.run_id}\\n")
    print(f"building {ctx.args.word}")


def check(ctx):
    print("checked " + Path("dist/out.txt").read_text().strip())


@sw.pipeline("ship")
def ship(plan, args: Args, rc):
    built = plan.job("build", build).outputs("dist/**")
    plan.job("check", check).consumes(built)


@sw.pipeline("audited")
def audited(plan, args, rc):
    plan.job("note", "echo audited-run")
"""


def profile_yaml(name: str, base: Path, logs: str = "logs") -> str:
    return (
        f"  {name}:\n"
        f'    state: {{type: sqlite, path: "{base}/state.db"}}\n'
        f'    cache: {{type: filesystem, path: "{base}/cache"}}\n'
        f'    logs: {{type: filesystem, path: "{base}/{logs}"}}\n'
    )


def run(cli: Cli, *args: str) -> dict[str, Any]:
    result = cli("run", *args, "-o", "json")
    assert result.code == 0, result.stderr
    doc: dict[str, Any] = result.json()
    return doc


def files_under(folder: Path) -> set[str]:
    """Every visible file below ``folder``, relative (hidden lock/temp files left out)."""
    if not folder.exists():
        return set()
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    }


def listed(cli: Cli, *args: str) -> list[str]:
    result = cli("runs", "list", *args, "-o", "json")
    assert result.code == 0, result.stderr
    return [r["run_id"] for r in result.ndjson()]


def assert_no_builtin_data(cli: Cli) -> None:
    """Nothing went to the built-in local defaults."""
    home = cli.sparkwing_home
    assert not (home / "state.db").exists()
    assert files_under(home / "cache") == set()
    assert files_under(home / "logs") == set()


@pytest.fixture
def two_places(project: ProjectFiles, tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "place-a", tmp_path / "place-b"
    project.yaml("profiles:\n" + profile_yaml("a", a) + profile_yaml("b", b))
    project.write("pipelines.py", PIPELINES)
    return a, b


def test_each_run_lands_only_in_its_profiles_place(two_places: tuple[Path, Path], cli: Cli) -> None:
    a, b = two_places
    first = run(cli, "ship", "--profile", "a", "--word", "alpha")
    second = run(cli, "ship", "--profile", "b", "--word", "beta")
    run_a, run_b = first["run"]["run_id"], second["run"]["run_id"]
    assert {n["status"] for n in first["nodes"] + second["nodes"]} == {"success"}

    # The run record says which profile, how it was chosen, and where each surface was.
    record = first["run"]
    assert (record["profile"], record["profile_source"]) == ("a", "flag")
    assert record["surfaces"]["state"] == {"type": "sqlite", "path": str(a / "state.db")}
    assert record["surfaces"]["cache"] == {"type": "filesystem", "path": str(a / "cache")}
    assert record["surfaces"]["logs"] == {"type": "filesystem", "path": str(a / "logs")}

    # State: each profile's history holds only its own run.
    assert listed(cli, "--profile", "a") == [run_a]
    assert listed(cli, "--profile", "b") == [run_b]
    # Logs: one folder per run, in its own place only.
    assert {p.name for p in (a / "logs").iterdir()} == {run_a}
    assert {p.name for p in (b / "logs").iterdir()} == {run_b}
    # Cache: each run's artifact (content unique to the run) is in its own cache only.
    cache_a, cache_b = files_under(a / "cache"), files_under(b / "cache")
    assert any(f.startswith("artifacts/blobs/") for f in cache_a)
    assert any(f.startswith("artifacts/blobs/") for f in cache_b)
    blobs_a = {f for f in cache_a if f.startswith("artifacts/blobs/")}
    blobs_b = {f for f in cache_b if f.startswith("artifacts/blobs/")}
    assert blobs_a.isdisjoint(blobs_b)
    assert any(f"alpha from {run_a}\n".encode() == (a / "cache" / f).read_bytes() for f in blobs_a)
    assert_no_builtin_data(cli)

    logs = cli("runs", "logs", "--run", run_b, "--profile", "b")
    assert logs.code == 0, logs.stderr
    assert "build | building beta" in logs.stdout and "alpha" not in logs.stdout


def test_pinned_logs_only_profile_moves_just_the_logs(
    project: ProjectFiles, cli: Cli, tmp_path: Path
) -> None:
    team, audit = tmp_path / "team", tmp_path / "audit"
    project.yaml(
        "defaults: {profile: team}\n"
        "profiles:\n"
        + profile_yaml("team", team)
        + "  audit:\n"
        + f'    logs: {{type: filesystem, path: "{audit}/logs"}}\n'
        + "pipelines:\n"
        + "  - {name: audited, entrypoint: audited, profile: audit}\n"
        + "  - {name: ship, entrypoint: ship}\n"
    )
    project.write("pipelines.py", PIPELINES)
    pinned = run(cli, "audited")["run"]
    plain = run(cli, "ship")["run"]
    assert pinned["profile"] == "team" and pinned["profile_source"] == "project default"
    assert pinned["surfaces"]["logs"]["path"] == str(audit / "logs")
    assert pinned["surfaces"]["state"]["path"] == str(team / "state.db")

    # Logs of the pinned pipeline went to the audit place, and only there.
    assert files_under(audit / "logs") == {f"{pinned['run_id']}/note.ndjson"}
    assert {p.name for p in (team / "logs").iterdir()} == {plain["run_id"]}
    # Its state followed the resolved default profile (team) ...
    assert listed(cli) == [plain["run_id"], pinned["run_id"]]
    assert listed(cli, "--pipeline", "audited") == [pinned["run_id"]]
    assert not (audit / "state.db").exists()
    # ... and so did the cache (the unpinned run wrote artifacts there; audit has none).
    assert any(f.startswith("artifacts/") for f in files_under(team / "cache"))
    assert not (audit / "cache").exists()
    assert_no_builtin_data(cli)
    logs = cli("runs", "logs", "--run", pinned["run_id"])
    assert logs.code == 0 and "audited-run" in logs.stdout


def test_run_id_in_a_logs_path_gives_one_folder_per_run(
    project: ProjectFiles, cli: Cli, tmp_path: Path
) -> None:
    logs_root = tmp_path / "per-run-logs"
    project.yaml(
        "defaults: {profile: perrun}\n"
        "profiles:\n"
        "  perrun:\n"
        f'    logs: {{type: filesystem, path: "{logs_root}/${{PIPELINE_NAME}}/${{RUN_ID}}"}}\n'
        "  other:\n"
        "    logs: {type: stdout}\n"
    )
    project.write("pipelines.py", PIPELINES)
    first = run(cli, "ship", "--word", "alpha")["run"]
    second = run(cli, "ship", "--word", "beta")["run"]
    ids = [first["run_id"], second["run_id"]]
    assert {p.name for p in (logs_root / "ship").iterdir()} == set(ids)
    assert first["surfaces"]["logs"]["path"] == str(logs_root / "ship" / ids[0])
    # `runs logs` finds each run's folder through its record, also under another profile.
    for run_id, word, not_word in ((ids[0], "alpha", "beta"), (ids[1], "beta", "alpha")):
        for extra in ([], ["--profile", "other"]):
            result = cli("runs", "logs", "--run", run_id, *extra)
            assert result.code == 0, result.stderr
            assert f"build | building {word}" in result.stdout
            assert not_word not in result.stdout


@pytest.mark.parametrize(
    ("surface", "spec", "message"),
    [
        (
            "state",
            '{type: sqlite, path: "/tmp/sw-${RUN_ID}.db"}',
            "state backend: ${RUN_ID} is not allowed in state specs (history must stay listable)",
        ),
        (
            "cache",
            '{type: filesystem, path: "/tmp/sw-cache/${RUN_ID}"}',
            "cache backend: ${RUN_ID} is not allowed in cache specs "
            "(it would defeat content addressing)",
        ),
    ],
)
def test_run_id_in_state_or_cache_is_refused_before_running(
    project: ProjectFiles, cli: Cli, surface: str, spec: str, message: str
) -> None:
    file = project.yaml(f"defaults: {{profile: bad}}\nprofiles:\n  bad:\n    {surface}: {spec}\n")
    project.write("pipelines.py", PIPELINES)
    code, out, err = cli("run", "ship")
    assert code == 2 and out == ""
    assert err == f"error: {file}:4: {message}\n"
    assert not (project.root / "dist").exists()  # no job ran
    assert_no_builtin_data(cli)


def test_profile_json_matches_what_the_run_used(two_places: tuple[Path, Path], cli: Cli) -> None:
    a, _ = two_places
    shown = json.loads(cli("profile", "--profile", "a", "-o", "json").stdout)
    used = run(cli, "ship", "--profile", "a")["run"]
    for surface in ("state", "cache", "logs"):
        spec = used["surfaces"][surface]
        assert shown["surfaces"][surface]["location"] == f"{spec['type']}:{spec['path']}"
        assert Path(spec["path"]).is_relative_to(a)
