"""The newcomer path: examples/python-app's `ci` pipeline driven through the real CLI, in a
copy of the example with a temporary HOME, exactly as the README tells a user to run it."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.conftest import Cli, ProjectFiles

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python-app"
JOBS = {"resolve", "lint", "test", "smoke", "build", "publish"}


@pytest.fixture
def example(project: ProjectFiles) -> ProjectFiles:
    project.copy_from(EXAMPLE)
    return project


def run_ci(cli: Cli, *flags: str) -> tuple[int, dict[str, Any], dict[str, dict[str, Any]]]:
    """Run the pipeline with ``-o json``: exit code, run record, nodes by job id."""
    result = cli("run", "ci", "-o", "json", *flags)
    assert result.stdout.strip(), result.stderr
    doc = result.json()
    return result.code, doc["run"], {n["node_id"]: n for n in doc["nodes"]}


def test_ci_builds_a_verified_wheel(example: ProjectFiles, cli: Cli) -> None:
    code, run, nodes = run_ci(cli)
    assert code == 0, nodes
    assert run["status"] == "success"
    assert set(nodes) == JOBS
    assert {n["status"] for n in nodes.values()} == {"success"}
    # Inputs: the pipeline's `args:` in sparkwing.yaml beats the field default (3.11).
    assert run["args"] == {"python_version": "3.9", "skip_tests": False}
    assert nodes["test"]["output"]["tests"] >= 8

    wheel = example.root / "dist" / "tally-0.3.0-py3-none-any.whl"
    assert wheel.is_file()
    assert nodes["build"]["output"]["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert nodes["build"]["artifacts"], "build declared outputs(dist/**) but stored none"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read("tally-0.3.0.dist-info/METADATA").decode()
    assert {"tally/core.py", "tally/cli.py", "tally-0.3.0.dist-info/RECORD"} <= names
    assert 'Requires-Dist: tomli==2.0.1; python_version < "3.11"' in metadata
    assert nodes["publish"]["output"] == {
        "wheel": wheel.name,
        "target": "staging",
        "sha256": nodes["build"]["output"]["sha256"],
    }


def test_resolution_is_memoized_on_the_lockfile(example: ProjectFiles, cli: Cli) -> None:
    _, first, nodes = run_ci(cli)
    assert nodes["resolve"]["status"] == "success"

    _, _, nodes = run_ci(cli)
    assert nodes["resolve"]["status"] == "cached"
    assert nodes["resolve"]["extra"]["cached_from"] == first["run_id"]
    assert nodes["build"]["status"] == "success"  # only the memoized job is reused

    lock = example.root / "requirements.lock"
    lock.write_text(lock.read_text() + "colorama==0.4.6\n")
    code, _, nodes = run_ci(cli)
    assert code == 0
    assert nodes["resolve"]["status"] == "success"
    assert "colorama==0.4.6" in nodes["resolve"]["output"]["requires"]


def test_skip_tests_flag_skips_only_the_test_job(example: ProjectFiles, cli: Cli) -> None:
    code, run, nodes = run_ci(cli, "--skip-tests", "--python-version", "3.12")
    assert code == 0
    assert run["args"] == {"python_version": "3.12", "skip_tests": True}
    assert nodes["test"]["status"] == "skipped"
    assert nodes["build"]["status"] == "success"
    assert nodes["publish"]["status"] == "success"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--python-version", "2.7"], "expected one of 3.8"),
        (["--deploy", "prod"], "unknown flag --deploy"),
    ],
)
def test_bad_inputs_are_usage_errors(
    example: ProjectFiles, cli: Cli, flags: list[str], message: str
) -> None:
    code, out, err = cli("run", "ci", *flags)
    assert code == 2
    assert message in err
    assert err.startswith("error: ") and "Traceback" not in err + out
    assert not (example.root / "dist").exists()


def test_lint_failure_fails_the_run_and_cancels_downstream(example: ProjectFiles, cli: Cli) -> None:
    example.file("src/tally/extra.py", '"""Too long."""\nX = "' + "x" * 120 + '"\n')
    code, run, nodes = run_ci(cli)
    assert code == 1
    assert run["status"] == "failed"
    assert nodes["lint"]["status"] == "failed"
    assert "lint: 1 problem(s)" in nodes["lint"]["error"]
    assert nodes["test"]["status"] == "success"  # independent of lint
    for job in ("build", "publish"):
        assert nodes[job]["status"] == "cancelled"
        assert nodes[job]["reason"].startswith("upstream-failed")


def test_config_and_masked_secret_reach_publish(example: ProjectFiles, cli: Cli) -> None:
    token = "pub-tok-7f3a9c1e55"
    cli.write_secrets({"PUBLISH_TOKEN": token})
    cli.write_config({"DEPLOY_TARGET": "production"})
    result = cli("run", "ci")
    assert result.code == 0, result.stdout + result.stderr
    assert "to production with token ***" in result.stdout
    assert token not in result.stdout + result.stderr
    # Nothing sparkwing stored (state, logs, cache) holds the secret in clear.
    for path in cli.sparkwing_home.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_runs_commands_show_the_example_run(example: ProjectFiles, cli: Cli) -> None:
    code, run, _ = run_ci(cli)
    assert code == 0
    run_id = run["run_id"]

    listed = cli("runs", "list", "-o", "json")
    assert listed.code == 0, listed.stderr
    assert [r["run_id"] for r in listed.ndjson()] == [run_id]

    status = cli("runs", "status", "--run", run_id)
    assert status.code == 0, status.stderr
    assert run_id in status.stdout
    for job in JOBS:
        assert job in status.stdout

    logs = cli("runs", "logs", "--run", run_id)
    assert logs.code == 0, logs.stderr
    assert "would upload tally-0.3.0-py3-none-any.whl" in logs.stdout
    assert "Ran 8 tests" in logs.stdout
    assert "restored 1 artifact file(s) from build" in logs.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_run_leaves_only_gitignored_files_in_the_checkout(example: ProjectFiles, cli: Cli) -> None:
    repo_ignore = EXAMPLE.parents[1] / ".gitignore"
    shutil.copy(repo_ignore, example.root / ".gitignore")

    def untracked() -> set[str]:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=example.root,
            env=cli.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return set(out.splitlines())

    subprocess.run(["git", "init", "-q"], cwd=example.root, env=cli.env, check=True)
    before = untracked()
    assert "?? .sparkwing/ci.py" in before
    # Bytecode writing on, as on a user's machine.
    result = cli("run", "ci", env={"PYTHONDONTWRITEBYTECODE": ""})
    assert result.code == 0, result.stdout + result.stderr
    assert (example.root / "dist").is_dir()
    assert untracked() == before
