"""End to end through the real CLI: `sparkwing controller serve` in its own process, a token
made with `controller token create`, a project whose profile is `controller: {url, token}`
running a pipeline, and the read commands getting it all back through the controller."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.controller.serving import controller_folder, launch

if TYPE_CHECKING:
    from tests.conftest import Cli, ProjectFiles

SECRET = "s3cr3t-deploy-value-e2e"
SCOPES = "runs.read,runs.write,logs.read,logs.write,cache.read,cache.write,secrets.read"

PIPELINE = """
from pathlib import Path

import sparkwing as sw


def build(ctx):
    Path("dist").mkdir(exist_ok=True)
    Path("dist/app.txt").write_text(f"built by {ctx.run_id}\\n")
    print("compiling with", sw.secret("DEPLOY_TOKEN"))
    for i in range(3):
        ctx.log.info(f"build step {i}")
    return {"files": 1}


def ship(ctx):
    print("shipping " + Path("dist/app.txt").read_text().strip())


@sw.pipeline("release")
def release(plan, args, rc):
    built = plan.job("build", build).outputs("dist/**")
    plan.job("ship", ship).consumes(built)
"""


@dataclass
class Served:
    url: str
    folder: Path  # the controller's own project folder (its profile lives there)
    data: Path
    proc: subprocess.Popen[str]

    def output(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=30)
        return out + err


@pytest.fixture
def served(tmp_path: Path, cli: Cli) -> Iterator[Served]:
    folder, data = controller_folder(tmp_path)
    cli.env["SPARKWING_CONTROLLER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    command = ["-C", str(folder), "controller", "serve", "--profile", "store", "--port", "0"]
    proc, url = launch(command, cli.env)
    try:
        assert url, f"the controller did not start: {proc.poll()}"
        yield Served(url, folder, data, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_a_pipeline_runs_through_the_controller(
    served: Served, project: ProjectFiles, cli: Cli
) -> None:
    created = cli(
        "-C", str(served.folder), "controller", "token", "create",
        "--name", "ci", "--scope", SCOPES, "--profile", "store",
    )  # fmt: skip
    assert created.code == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("swu_") and "\n" not in token
    assert "shown" not in created.stdout and "cannot be shown again" in created.stderr
    admin = cli(
        "-C", str(served.folder), "controller", "token", "create",
        "--name", "ops", "--scope", "admin", "--profile", "store", "-o", "json",
    ).json()["token"]  # fmt: skip

    project.write("release.py", PIPELINE)
    project.yaml(
        "profiles:\n"
        f"  remote:\n    controller: {{url: {served.url}, token: {token}}}\n"
        f"  ops:\n    controller: {{url: {served.url}, token: {admin}}}\n"
    )
    # Secrets are set through the controller with a token allowed to write them.
    stored = cli("secrets", "set", "DEPLOY_TOKEN", "--profile", "ops", input=SECRET)
    assert stored.code == 0, stored.stderr
    denied = cli("secrets", "set", "OTHER", "x", "--profile", "remote")
    assert denied.code == 2 and "lacks scope secrets.write" in denied.stderr
    assert denied.stderr.count("\n") == 1 and "Traceback" not in denied.stderr

    ran = cli("run", "release", "--profile", "remote", "-o", "json")
    assert ran.code == 0, ran.stderr + ran.stdout
    doc = ran.json()
    run_id = doc["run"]["run_id"]
    assert {n["node_id"]: n["status"] for n in doc["nodes"]} == {
        "build": "success",
        "ship": "success",
    }
    assert doc["run"]["surfaces"]["state"] == {"type": "controller"}
    # The runner kept nothing locally: every record went to the controller.
    assert not (cli.sparkwing_home / "state.db").exists()
    assert not (cli.sparkwing_home / "logs").exists()
    assert (served.data / "logs" / run_id / "build.ndjson").is_file()
    assert any((served.data / "cache" / "artifacts").rglob("*"))

    listed = cli("runs", "list", "--profile", "remote", "-o", "json").ndjson()
    assert [(r["run_id"], r["status"]) for r in listed] == [(run_id, "success")]
    status = cli("runs", "status", "--profile", "remote", "--run", run_id)
    assert status.code == 0 and "build" in status.stdout and "success" in status.stdout
    logs = cli("runs", "logs", "--profile", "remote", "--run", run_id)
    assert logs.code == 0, logs.stderr
    assert "build | compiling with ***" in logs.stdout
    assert "build | build step 2" in logs.stdout
    assert f"ship  | shipping built by {run_id}" in logs.stdout
    tail = cli(
        "runs", "logs", "--profile", "remote", "--run", run_id, "--job", "build", "--tail", "1"
    )
    assert tail.stdout.strip().endswith("build step 2")
    got = cli("runs", "get", "--profile", "remote", "--run", run_id, "--events", "-o", "json")
    assert got.code == 0 and got.json()["plan"]["jobs"]

    names = cli("secrets", "list", "--profile", "remote", "-o", "json").ndjson()
    assert names == [{"name": "DEPLOY_TOKEN", "masked": True}]
    shown = cli("secrets", "get", "DEPLOY_TOKEN", "--profile", "remote")
    assert shown.stdout.strip() == "***"

    tokens = cli(
        "-C", str(served.folder), "controller", "token", "list", "--profile", "store", "-o", "json"
    ).ndjson()  # fmt: skip
    assert sorted(t["name"] for t in tokens) == ["ci", "ops"]
    assert all(token not in str(t) and admin not in str(t) for t in tokens)
    revoked = cli(
        "-C", str(served.folder), "controller", "token", "revoke", "ci", "--profile", "store"
    )
    assert revoked.code == 0 and "revoked token ci" in revoked.stdout
    deadline = time.monotonic() + 15
    while True:  # a running controller honours a revocation within seconds
        refused = cli("runs", "list", "--profile", "remote")
        if refused.code != 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert refused.code == 2
    assert f"controller {served.url} refused the token" in refused.stderr

    # Nothing the controller printed holds a token or the secret; nothing stored holds them.
    printed = served.output()
    assert "GET /v1/runs" in printed
    for value in (token, admin, SECRET):
        assert value not in printed
        for path in served.data.rglob("*"):
            if path.is_file():
                assert value.encode() not in path.read_bytes(), path


def test_serve_refuses_to_start_without_a_key(tmp_path: Path, cli: Cli) -> None:
    result = cli("-C", str(tmp_path), "controller", "serve", "--port", "0")
    assert result.code == 2
    assert "SPARKWING_CONTROLLER_KEY" in result.stderr and "Traceback" not in result.stderr


def test_serve_refuses_a_profile_that_itself_points_at_a_controller(
    tmp_path: Path, cli: Cli, project: ProjectFiles
) -> None:
    project.yaml("profiles:\n  remote:\n    controller: {url: 'http://127.0.0.1:9', token: t}\n")
    env = {"SPARKWING_CONTROLLER_KEY": base64.b64encode(os.urandom(32)).decode()}
    result = cli("controller", "serve", "--profile", "remote", "--port", "0", env=env)
    assert result.code == 2
    assert "must name its own stores" in result.stderr


def test_a_token_without_logs_write_ends_the_run_and_every_job(
    served: Served, project: ProjectFiles, cli: Cli
) -> None:
    """An engine error mid-run (every log write refused with 403) still ends the run and
    each of its jobs in a final status, with one clear error line and no traceback."""
    no_logs = "runs.read,runs.write,logs.read,cache.read,cache.write,secrets.read"
    token = cli(
        "-C", str(served.folder), "controller", "token", "create",
        "--name", "no-logs", "--scope", no_logs, "--profile", "store",
    ).stdout.strip()  # fmt: skip
    assert token.startswith("swu_")
    project.write(
        "talk.py",
        "import sparkwing as sw\n\n\n"
        "@sw.pipeline('talk')\n"
        "def talk(plan, args, rc):\n"
        "    first = plan.job('first', 'echo one; echo two')\n"
        "    plan.job('second', 'echo three').needs(first)\n"
        "    plan.job('third', 'echo four')\n",
    )
    project.yaml(f"profiles:\n  remote:\n    controller: {{url: {served.url}, token: {token}}}\n")
    ran = cli("run", "talk", "--profile", "remote", "-o", "plain")
    # A token without the scope it needs is a configuration error: exit 2.
    assert ran.code == 2, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stdout + ran.stderr
    assert "lacks scope logs.write" in ran.stderr
    listed = cli("runs", "list", "--profile", "remote", "-o", "json").ndjson()
    assert len(listed) == 1 and listed[0]["status"] == "failed"
    status = cli(
        "runs", "status", "--run", listed[0]["run_id"], "--profile", "remote", "-o", "json"
    )
    nodes = status.json()["nodes"]
    assert {n["node_id"] for n in nodes} == {"first", "second", "third"}
    assert all(n["status"] in ("success", "failed", "cancelled", "skipped") for n in nodes), nodes
