"""Triggers through the real CLI: `sparkwing controller repo add` registers a bare
repository, `sparkwing controller serve` (its own process) takes a signed GitHub push and
queues the matching pipeline at the pushed commit, and fires the repository's schedule
ticks from a test clock (one catch-up run after an outage)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.conftest import wait_for
from tests.conftest import Cli
from tests.controller.serving import controller_folder, launch
from tests.triggers.gitrepo import Upstream

SECRET = "e2e-hook-secret-" + os.urandom(6).hex()
PROJECT = """
pipelines:
  - name: ci
    entrypoint: CI
    on:
      push: { branches: [main], paths: ["src/**"] }
  - name: docs
    entrypoint: Docs
    on:
      push: { branches: [main], paths: ["docs/**"] }
  - name: tick
    entrypoint: Tick
    on:
      schedule: [{ cron: "*/5 * * * *", timezone: "Europe/Paris" }]
"""


@dataclass
class Served:
    url: str
    folder: Path
    clock: Path
    proc: subprocess.Popen[str]
    cli: Cli

    def sparkwing(self, *args: str) -> Any:
        return self.cli("-C", str(self.folder), *args, "--profile", "store")

    def runs(self) -> list[dict[str, Any]]:
        result = self.sparkwing("runs", "list", "-o", "json")
        assert result.code == 0, result.stderr
        return list(result.ndjson())

    def set_time(self, iso: str) -> None:
        tmp = self.clock.with_suffix(".tmp")
        tmp.write_text(iso)
        tmp.replace(self.clock)  # whole, so a reader never sees half a time


@pytest.fixture
def served(tmp_path: Path, cli: Cli) -> Iterator[Served]:
    folder, _ = controller_folder(tmp_path)
    clock = tmp_path / "clock"
    clock.write_text("2026-03-02T08:02:00Z")  # between ticks: the schedule is not due
    cli.env["SPARKWING_CONTROLLER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    env = {**cli.env, "APP_SECRET": SECRET, "SPARKWING_TEST_CLOCK_FILE": str(clock)}
    command = ["-C", str(folder), "controller", "serve", "--profile", "store", "--port", "0"]
    proc, url = launch([*command, "--schedule-poll", "0.2"], env)
    try:
        assert url, f"the controller did not start: {proc.poll()}"
        yield Served(url, folder, clock, proc, cli)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate(timeout=30)
            assert SECRET not in err  # nor anywhere in the controller's log


def test_repo_commands(served: Served, tmp_path: Path) -> None:
    up = Upstream(tmp_path / "git")
    added = served.sparkwing(
        "controller", "repo", "add", "app", "--url", up.url, "--webhook-secret-env", "APP_SECRET",
        "-o", "json",
    )  # fmt: skip
    assert added.code == 0, added.stderr
    assert added.json()["name"] == "app" and added.json()["webhook_secret_env"] == "APP_SECRET"
    again = served.sparkwing("controller", "repo", "add", "app", "--url", up.url)
    assert (again.code, again.stderr.strip()) == (
        2,
        "error: repository 'app' exists already (remove it first to change it)",
    )
    for args, message in (
        (["../x", "--url", up.url], "repository name '../x'"),
        (["b", "--url", "https://me:tok@example.com/r.git"], "--url holds a password"),
        (["b", "--url", up.url, "--webhook-secret-env", "NOT-A-VAR"], "not a variable name"),
        (["b", "--url", up.url, "--branch", "a..b"], "is not a branch name"),
    ):
        result = served.sparkwing("controller", "repo", "add", *args)
        assert result.code == 2 and message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    listed = served.sparkwing("controller", "repo", "list", "-o", "json").ndjson()
    assert [(r["name"], r["url"], r["branch"]) for r in listed] == [("app", up.url, "main")]
    table = served.sparkwing("controller", "repo", "list")
    assert "APP_SECRET" in table.stdout and "app" in table.stdout
    gone = served.sparkwing("controller", "repo", "remove", "app", "-o", "json")
    assert gone.code == 0 and gone.json() == {"name": "app", "removed": True}
    missing = served.sparkwing("controller", "repo", "remove", "app")
    assert missing.code == 2 and "no repository named 'app'" in missing.stderr
    answer = httpx.post(f"{served.url}/v1/hooks/github/app", content=b"{}", timeout=30)
    assert answer.status_code == 404


def test_a_signed_push_queues_the_matching_pipeline_at_its_commit(
    served: Served, tmp_path: Path
) -> None:
    up = Upstream(tmp_path / "git")
    before = up.commit({".sparkwing/sparkwing.yaml": PROJECT, "README.md": "r\n"}, "first")
    after = up.commit({"src/app.py": "print(1)\n"}, "code")
    up.push()
    added = served.sparkwing(
        "controller", "repo", "add", "app", "--url", up.url, "--webhook-secret-env", "APP_SECRET"
    )
    assert added.code == 0, added.stderr
    body = json.dumps({"ref": "refs/heads/main", "before": before, "after": after}).encode()

    def deliver(secret: str, delivery: str) -> httpx.Response:
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": signature,
        }
        return httpx.post(f"{served.url}/v1/hooks/github/app", content=body, headers=headers)

    assert deliver("wrong", "d-1").status_code == 401
    assert served.runs() == []
    first = deliver(SECRET, "d-1")
    assert first.status_code == 200, first.text
    assert deliver(SECRET, "d-1").json()["duplicate"] is True
    (run,) = served.runs()
    assert run["run_id"] == first.json()["queued"][0]["run_id"]
    assert (run["pipeline"], run["status"], run["trigger"]) == ("ci", "queued", "push")
    assert run["source"] == {"kind": "git", "url": up.url, "ref": "refs/heads/main", "sha": after}
    assert run["extra"]["delivery"] == "d-1" and run["extra"]["branch"] == "main"


def test_the_controller_fires_schedule_ticks_once_and_catches_up_once(
    served: Served, tmp_path: Path
) -> None:
    up = Upstream(tmp_path / "git")
    sha = up.commit({".sparkwing/sparkwing.yaml": PROJECT}, "first")
    up.push()
    assert served.sparkwing("controller", "repo", "add", "app", "--url", up.url).code == 0

    def scheduled() -> list[dict[str, Any]]:
        return sorted(
            (r for r in served.runs() if r["trigger"] == "schedule"),
            key=lambda r: r["extra"]["tick"],
        )

    served.set_time("2026-03-02T08:05:01Z")  # 09:05 in Paris: a tick
    (first,) = wait_for(scheduled, "the 08:05 tick", 90)
    assert first["pipeline"] == "tick" and first["extra"]["tick"] == "2026-03-02T08:05:00Z"
    assert first["source"] == {"kind": "git", "url": up.url, "ref": "refs/heads/main", "sha": sha}
    assert first["extra"]["catch_up"] is False
    # Down for three ticks (08:10, 08:15, 08:20): one catch-up run, not three.
    served.set_time("2026-03-02T08:22:30Z")

    def caught_up() -> list[dict[str, Any]] | None:
        got = scheduled()
        return got if len(got) > 1 else None

    runs = wait_for(caught_up, "the catch-up run", 90)
    assert [r["extra"]["tick"] for r in runs] == ["2026-03-02T08:05:00Z", "2026-03-02T08:20:00Z"]
    assert runs[1]["extra"]["catch_up"] is True and runs[1]["extra"]["skipped_ticks"] == 2
    # The clock standing still, later turns queue nothing more.
    served.set_time("2026-03-02T08:23:30Z")
    time.sleep(1.5)
    assert len(scheduled()) == 2


PIPES = """
import sparkwing as sw


def read(ctx):
    return (ctx.workdir / "src" / "app.py").read_text()


@sw.pipeline("CI")
def ci(plan, args, rc):
    plan.job("read", read)


@sw.pipeline("Docs")
def docs(plan, args, rc):
    plan.job("docs", "true")


@sw.pipeline("Tick")
def tick(plan, args, rc):
    plan.job("tick", "true")
"""


def test_a_worker_on_another_machine_runs_the_pushed_pipeline_at_the_pushed_commit(
    served: Served, tmp_path: Path
) -> None:
    up = Upstream(tmp_path / "git")
    before = up.commit(
        {".sparkwing/sparkwing.yaml": PROJECT, ".sparkwing/pipes.py": PIPES, "README.md": "r\n"},
        "first",
    )
    pushed = up.commit({"src/app.py": "print('pushed')\n"}, "code")
    up.push()
    assert served.sparkwing("controller", "repo", "add", "app", "--url", up.url,
                            "--webhook-secret-env", "APP_SECRET").code == 0  # fmt: skip
    token = served.sparkwing(
        "controller", "token", "create", "--name", "worker",
        "--scope", "runs.read,runs.write,logs.read,logs.write,cache.read,cache.write",
    )  # fmt: skip
    assert token.code == 0, token.stderr
    body = json.dumps({"ref": "refs/heads/main", "before": before, "after": pushed}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "d-run",
        "X-Hub-Signature-256": signature,
    }
    answer = httpx.post(f"{served.url}/v1/hooks/github/app", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    (queued,) = answer.json()["queued"]
    # A later push lands before the worker starts: the run still uses the pushed commit.
    up.commit({"src/app.py": "print('later')\n"}, "later")
    up.push()

    # The worker: another home, another folder, no checkout; its profile reaches the
    # controller, and the queued run (which names no profile) runs under it.
    base = tmp_path / "worker-machine"
    folder = base / "folder"
    folder.mkdir(parents=True)
    worker = Cli(folder, base)
    profiles = base / "profiles.yaml"
    profiles.write_text(
        "profiles:\n  fleet:\n"
        f"    controller: {{url: '{served.url}', token: '{token.stdout.strip()}'}}\n"
    )
    worker.env["SPARKWING_PROFILES"] = str(profiles)
    done = worker("worker", "--once", "--poll", "0.2s", "--profile", "fleet", "-o", "json")
    assert done.code == 0, done.stderr
    finished = [json.loads(line) for line in done.stdout.splitlines() if line.strip()][-1]
    assert (finished["run_id"], finished["status"]) == (queued["run_id"], "success")

    status = served.sparkwing("runs", "status", queued["run_id"], "-o", "json")
    assert status.code == 0, status.stderr
    doc = status.json()
    assert doc["run"]["trigger"] == "push"
    assert doc["run"]["source"]["sha"] == pushed
    assert [n["output"] for n in doc["nodes"]] == ["print('pushed')\n"]
