"""`sparkwing runs wait`, `runs submit --wait` and a profile's `notify` endpoints, through the
real CLI: exit codes per final status and on timeout, on sqlite and through a controller; and
the JSON POSTs a local HTTP server in the test receives (retried after failures, never
holding up the run, never holding a secret)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sparkwing.surfaces.state.sqlite import SqliteState
from tests.conftest import Cli, ProjectFiles, sparkwing_command
from tests.controller.harness import Controller, local_profile

PIPELINE = """
from dataclasses import dataclass

import sparkwing as sw


@dataclass
class Args:
    fail: bool = False


def work(ctx):
    if ctx.args.fail:
        raise RuntimeError("asked to fail")


@sw.pipeline("job")
def job(plan, args: Args, rc):
    plan.job("work", work)
"""


@dataclass
class Hooks:
    """A local HTTP server recording every POST, path by path: ``/ok`` answers 200,
    ``/flaky`` 500 twice then 200, ``/missing`` 404, ``/hang`` holds the request until
    ``release`` is set."""

    url: str
    posts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    headers: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def got(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.posts.get(path, []))

    def wait_for(self, path: str, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 60
        while len(self.got(path)) < count:
            assert time.monotonic() < deadline, f"{path}: {len(self.got(path))} of {count} POSTs"
            time.sleep(0.1)
        return self.got(path)


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    state: dict[str, Hooks] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hooks = state["hooks"]
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            path = self.path.split("?")[0]
            with hooks.lock:
                seen = hooks.posts.setdefault(path, [])
                seen.append(body)
                hooks.headers.setdefault(path, []).append(dict(self.headers))
                count = len(seen)
            if path == "/hang":
                hooks.release.wait(120)
            code = {"/missing": 404, "/flaky": 500 if count <= 2 else 200}.get(path, 200)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["hooks"] = Hooks(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["hooks"]
    state["hooks"].release.set()
    server.shutdown()
    server.server_close()


def _events(cli: Cli, run_id: str) -> list[dict[str, Any]]:
    got = cli("runs", "get", "--run", run_id, "--events", "-o", "json", "--profile", "hooked")
    assert got.code == 0, got.stderr
    events: list[dict[str, Any]] = got.json()["events"]
    return events


def _hooked(project: ProjectFiles, targets: str) -> None:
    project.write("job.py", PIPELINE)
    project.yaml(f"profiles:\n  hooked:\n    notify:\n{targets}")


def test_notify_posts_each_finished_run_with_retries_and_no_secret(
    project: ProjectFiles, cli: Cli, hooks: Hooks
) -> None:
    token = "tok-3f9a1c-never-in-clear"
    _hooked(
        project,
        f"      - {{ url: '{hooks.url}/ok', on: [success, failed] }}\n"
        f"      - {{ url: '{hooks.url}/flaky' }}\n"
        "      - { url_source: 'env:HOOK_URL', on: [failed] }\n"
        f"      - {{ url: '{hooks.url}/missing', on: [success] }}\n",
    )
    env = {"HOOK_URL": f"{hooks.url}/secret?token={token}"}
    ran = cli("run", "job", "--profile", "hooked", "-o", "json", env=env)
    assert ran.code == 0, ran.stderr
    run_id = ran.json()["run"]["run_id"]
    [ok] = hooks.wait_for("/ok", 1)
    assert ok == {
        "event": "run_finished",
        "run_id": run_id,
        "pipeline": "job",
        "status": "success",
        "reason": None,
        "created_at": ok["created_at"],
        "started_at": ok["started_at"],
        "finished_at": ok["finished_at"],
        "trigger": "cli",
        "profile": "hooked",
    }
    assert ok["created_at"] <= ok["started_at"] <= ok["finished_at"]
    # Two 500s, then the third attempt is taken; every attempt is the same delivery.
    flaky = hooks.wait_for("/flaky", 3)
    assert [p["run_id"] for p in flaky] == [run_id] * 3
    assert {h["X-Sparkwing-Delivery"] for h in hooks.headers["/flaky"]} == {f"{run_id}-1"}
    assert hooks.got("/secret") == []  # on: [failed] only
    # The 404 is a warning on the run, naming the endpoint by its place, not its URL.
    deadline = time.monotonic() + 60
    while not [e for e in _events(cli, run_id) if e["kind"] == "notify_failed"]:
        assert time.monotonic() < deadline, "no notify_failed event"
        time.sleep(0.2)
    failed = [e["data"] for e in _events(cli, run_id) if e["kind"] == "notify_failed"]
    assert failed == [{"target": "notify[3] (127.0.0.1)", "error": "HTTP 404"}]
    status = cli("runs", "status", "--run", run_id, "--profile", "hooked")
    assert status.code == 0 and "success" in status.stdout  # the run itself is untouched

    failing = cli("run", "job", "--fail", "--profile", "hooked", "-o", "json", env=env)
    assert failing.code == 1
    failed_id = failing.json()["run"]["run_id"]
    [secret] = hooks.wait_for("/secret", 1)
    assert (secret["run_id"], secret["status"]) == (failed_id, "failed")
    assert secret["reason"] == "failed jobs: work"
    assert [p["status"] for p in hooks.wait_for("/ok", 2)] == ["success", "failed"]
    # The URL's token went nowhere: not in a body, not in the state or the logs.
    assert all(token not in json.dumps(p) for path in hooks.posts for p in hooks.got(path))
    for path in cli.sparkwing_home.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_a_hanging_endpoint_never_holds_up_the_run(
    project: ProjectFiles, cli: Cli, hooks: Hooks
) -> None:
    _hooked(project, f"      - {{ url: '{hooks.url}/hang' }}\n")
    # The endpoint holds every request until the test lets go, which it does only after
    # the run's command has returned: a sparkwing that waited for it would never return.
    ran = cli("run", "job", "--profile", "hooked", "-o", "json", timeout=120)
    assert ran.code == 0, ran.stderr
    assert ran.json()["run"]["status"] == "success"
    [held] = hooks.wait_for("/hang", 1)
    assert not hooks.release.is_set()
    assert held["status"] == "success"
    hooks.release.set()


def test_notify_config_is_checked_strictly(project: ProjectFiles, cli: Cli) -> None:
    project.write("job.py", PIPELINE)
    cases = {
        "      - { url: 'ftp://x/y' }\n": "notify[0].url must be an http:// or https:// URL",
        "      - { url: 'http://h/a b' }\n": "must not contain spaces or control characters",
        "      - { url: 'http://h/', url_source: 'env:X' }\n": "exactly one of url or url_source",
        "      - { url: 'http://h/', on: [done] }\n": '"done" is not one of failed, success',
        "      - { url: 'http://h/', when: [failed] }\n": 'unknown key "when"',
        "      - { url: 'http://h/${TOKEN}' }\n": "give a URL with a token as url_source",
    }
    for targets, expected in cases.items():
        project.yaml(f"profiles:\n  hooked:\n    notify:\n{targets}")
        result = cli("run", "job", "--profile", "hooked")
        assert result.code == 2, (targets, result.stderr)
        assert expected in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert "sparkwing.yaml:4:" in result.stderr or "sparkwing.yaml:3:" in result.stderr


# -- runs wait ----------------------------------------------------------------------------


def test_runs_wait_exits_with_the_runs_own_code(project: ProjectFiles, cli: Cli) -> None:
    project.write("job.py", PIPELINE)
    ok = cli("run", "job", "-o", "json").json()["run"]["run_id"]
    bad = cli("run", "job", "--fail", "-o", "json").json()["run"]["run_id"]
    waited = cli("runs", "wait", "--run", ok)
    assert (waited.code, waited.stdout) == (0, f"run {ok} success\n")
    waited = cli("runs", "wait", bad, "-o", "json")
    assert waited.code == 1
    assert (waited.json()["run_id"], waited.json()["status"]) == (bad, "failed")

    # A queued run nobody starts: the timeout is its own code, the run goes on.
    queued = cli("runs", "submit", "job").stdout.strip()
    timed = cli("runs", "wait", "--run", queued, "--timeout", "1s")
    assert timed.code == 124
    assert timed.stderr == (
        f"error: run {queued} is still queued after 1s (--timeout); it goes on\n"
    )
    cancelled = cli("runs", "cancel", "--run", queued)
    assert cancelled.code == 0, cancelled.stderr
    waited = cli("runs", "wait", "--run", queued)
    assert waited.code == 130 and waited.stdout.startswith(f"run {queued} cancelled")

    assert cli("runs", "wait").code == 2
    bad_timeout = cli("runs", "wait", "--run", ok, "--timeout", "soon")
    assert bad_timeout.code == 2 and "--timeout" in bad_timeout.stderr


def test_runs_wait_follows_a_run_to_its_end(project: ProjectFiles, cli: Cli) -> None:
    project.write("job.py", PIPELINE)
    queued = cli("runs", "submit", "job").stdout.strip()
    waiter = subprocess.Popen(
        [*sparkwing_command(), "runs", "wait", "--run", queued, "-o", "json"],
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker = cli("worker", "--once", "--poll", "0.2s")
    assert worker.code == 0, worker.stderr
    out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    assert json.loads(out)["status"] == "success"
    state = SqliteState(cli.sparkwing_home / "state.db")
    try:
        final = state.get_run(queued)
        assert final is not None and json.loads(out) == final.to_dict()
    finally:
        state.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Controller]:
    running = Controller(local_profile(tmp_path / "controller"))
    yield running
    running.stop()


def test_submit_wait_through_a_controller(
    project: ProjectFiles, cli: Cli, served: Controller
) -> None:
    project.write("job.py", PIPELINE)
    token = served.token()
    project.yaml(f"profiles:\n  remote:\n    controller: {{ url: {served.url}, token: {token} }}\n")
    worker = subprocess.Popen(
        [
            *sparkwing_command(),
            "worker",
            "--profile",
            "remote",
            "--max-runs",
            "2",
            "--poll",
            "0.2s",
        ],
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ok = cli("runs", "submit", "--wait", "job", "--profile", "remote")
        assert ok.code == 0, ok.stderr
        run_id, line = ok.stdout.splitlines()
        assert line == f"run {run_id} success"
        bad = cli("runs", "submit", "--wait", "-o", "json", "job", "--fail", "--profile", "remote")
        assert bad.code == 1, bad.stderr
        assert (bad.json()["status"], bad.json()["reason"]) == ("failed", "failed jobs: work")
        assert worker.wait(timeout=120) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    again = cli("runs", "wait", run_id, "--profile", "remote")
    assert (again.code, again.stdout) == (0, f"run {run_id} success\n")
