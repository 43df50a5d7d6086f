"""Approvals and debug pauses end to end on each state backend family: the run waits, a
second process with another SPARKWING_HOME resolves the gate, the run goes on."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.swtest import Proj

PIPE = """
import os

def deploy(ctx):
    return "deployed after " + str(ctx.output("approve-prod")["approved_by"])

@sw.pipeline("release")
def plan(plan, args, rc):
    build = plan.job("build", "echo building")
    gate = plan.approval("approve-prod", message="ship to prod?",
                         timeout=os.environ.get("GATE_TIMEOUT"),
                         on_expiry=os.environ.get("ON_EXPIRY", "fail")).needs(build)
    plan.job("deploy", deploy).needs(gate)

def flaky(ctx):
    marker = ctx.workdir / "fixed.txt"
    if not marker.exists():
        raise RuntimeError("broken until fixed.txt exists")
    return "fixed"

@sw.pipeline("debug")
def plan2(plan, args, rc):
    first = plan.job("first", "echo first")
    plan.job("flaky", flaky).needs(first)
"""


BACKENDS = ["sqlite", "s3", "postgres", "controller"]
APPROVER_LINES: list[str] = []
APPROVER = "SW_TEST_APPROVER"  # set in machine B's environment: the name it records


def _profile_lines(
    backend: str, tmp_path: Path, stack: contextlib.ExitStack, proj: Proj
) -> tuple[list[str], dict[str, str]]:
    """The shared profile's surface lines for ``backend`` and the environment it needs; a
    controller's second machine gets its own lines (an approver's token) in APPROVER_LINES."""
    if backend == "postgres":
        from tests.pgutil import fresh_database

        url = stack.enter_context(fresh_database("gates"))
        # The DSN lives in the secrets file: url_source names a secret, not a variable.
        proj.secrets(f"RUNS_DSN={url}\n")
        return [
            "    state: {type: postgres, url_source: RUNS_DSN}",
            f"    cache: {{type: filesystem, path: {tmp_path / 'cache'}}}",
            f"    logs: {{type: filesystem, path: {tmp_path / 'logs'}}}",
        ], {}
    if backend == "controller":
        from tests.controller.harness import ALL_SCOPES, Controller, local_profile

        ctl = Controller(local_profile(tmp_path / "controller"))
        stack.callback(ctl.stop)
        # The runner's token cannot approve; the other machine's is a person's, named bob.
        runner = ctl.token(*(s for s in ALL_SCOPES if s != "runs.approve"))
        approver = ctl.token(*ALL_SCOPES, name="bob")
        APPROVER_LINES[:] = [f"    controller: {{url: '{ctl.url}', token: '{approver}'}}"]
        return [f"    controller: {{url: '{ctl.url}', token: '{runner}'}}"], {}
    if backend == "sqlite":
        return [
            f"    state: {{type: sqlite, path: {tmp_path / 'shared.db'}}}",
            f"    cache: {{type: filesystem, path: {tmp_path / 'cache'}}}",
            f"    logs: {{type: filesystem, path: {tmp_path / 'logs'}}}",
        ], {}
    from tests.objectstores import create_bucket, emulator_env, new_bucket_name

    env = emulator_env(backend)
    bucket = new_bucket_name()
    create_bucket(backend, bucket)
    spec = f"{{type: {backend}, bucket: {bucket}, prefix: team}}"
    return [f"    {surface}: {spec}" for surface in ("state", "cache", "logs")], env


def use_team_profile(backend: str, proj: Proj, tmp_path: Path, stack: contextlib.ExitStack) -> None:
    """Point ``proj`` at a profile ``team`` whose surfaces live on ``backend`` (servers and
    databases it starts are stopped by ``stack``)."""
    APPROVER_LINES.clear()
    lines, env = _profile_lines(backend, tmp_path, stack, proj)
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text("\n".join(["profiles:", "  team:", *lines]) + "\n")
    proj.env.update(env)
    proj.env["SPARKWING_PROFILES"] = str(profiles)
    proj.env["SPARKWING_PROFILE"] = "team"


@pytest.fixture(params=BACKENDS)
def shared(
    request: pytest.FixtureRequest, proj: Proj, tmp_path: Path
) -> Iterator[tuple[Proj, dict[str, str]]]:
    """The project plus the environment of a second machine sharing the state surface."""
    stack = contextlib.ExitStack()
    use_team_profile(request.param, proj, tmp_path, stack)
    proj.pipeline(PIPE)
    other = dict(proj.env)
    other["SPARKWING_HOME"] = str(tmp_path / "machine-b")
    other["SPARKWING_USER"] = "bob"
    # Who a decision from machine B is recorded under: through a controller its token's
    # name; elsewhere the OS user, SPARKWING_USER only a label beside it.
    other[APPROVER] = f"{pwd.getpwuid(os.getuid()).pw_name} (bob)"
    if APPROVER_LINES:
        theirs = tmp_path / "profiles-b.yaml"
        theirs.write_text("\n".join(["profiles:", "  team:", *APPROVER_LINES]) + "\n")
        other["SPARKWING_PROFILES"] = str(theirs)
        other[APPROVER] = "bob"
    with stack:
        yield proj, other


def _sw(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from tests.engine.swtest import SPARKWING

    return subprocess.run(
        [SPARKWING, *args],
        env=env,
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _wait_for_gate(
    env: dict[str, str],
    cwd: Path,
    what: str,
    kind: str = "approvals",
    timeout: float = 30,
    proc: subprocess.Popen[str] | None = None,
) -> dict[str, object]:
    args = (
        ("runs", kind, "list", "-o", "json")
        if kind == "approvals"
        else ("runs", "pauses", "list", "-o", "json")
    )
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended before its gate appeared: {out[-500:]} {err}")
        res = _sw(env, cwd, *args)
        assert res.returncode == 0, res.stderr
        gates = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
        for gate in gates:
            if gate["node_id"] == what:
                return gate
        time.sleep(0.2)
    raise AssertionError(f"no pending gate {what!r} appeared")


def _finish(proc: subprocess.Popen[str]) -> tuple[int, dict[str, object]]:
    out, err = proc.communicate(timeout=60)
    assert out.strip(), err
    return proc.returncode, json.loads(out.strip().splitlines()[-1])


def _nodes(doc: dict[str, object]) -> dict[str, dict[str, object]]:
    return {n["node_id"]: n for n in doc["nodes"]}  # type: ignore[index, union-attr]


def test_approval_from_another_machine_lets_the_run_finish(shared: tuple[Proj, dict]) -> None:
    proj, other = shared
    proc = proj.popen("run", "release", "-o", "json")
    gate = _wait_for_gate(other, proj.root, "approve-prod", proc=proc)
    run_id = str(gate["run_id"])
    status = _sw(other, proj.root, "runs", "status", "--run", run_id)
    assert "approval of approve-prod (ship to prod?)" in status.stdout
    ok = _sw(
        other,
        proj.root,
        "runs",
        "approvals",
        "approve",
        "--run",
        run_id,
        "--node",
        "approve-prod",
        "--comment",
        "looks good",
    )
    assert ok.returncode == 0, ok.stderr
    code, doc = _finish(proc)
    assert code == 0, doc
    nodes = _nodes(doc)
    assert nodes["approve-prod"]["status"] == "success"
    bob = other[APPROVER]
    assert nodes["approve-prod"]["output"]["approved_by"] == bob  # type: ignore[index]
    assert nodes["approve-prod"]["output"]["comment"] == "looks good"  # type: ignore[index]
    assert nodes["deploy"]["output"] == f"deployed after {bob}"
    listed = _sw(other, proj.root, "runs", "approvals", "list", "--all", "-o", "json")
    decided = [json.loads(x) for x in listed.stdout.splitlines()]
    assert decided[0]["resolved_by"] == bob and decided[0]["resolved_at"]


def test_denied_approval_fails_the_run_with_reason_denied(shared: tuple[Proj, dict]) -> None:
    proj, other = shared
    proc = proj.popen("run", "release", "-o", "json")
    gate = _wait_for_gate(other, proj.root, "approve-prod", proc=proc)
    res = _sw(
        other,
        proj.root,
        "runs",
        "approvals",
        "deny",
        "--run",
        str(gate["run_id"]),
        "--node",
        "approve-prod",
        "-m",
        "not today",
    )
    assert res.returncode == 0, res.stderr
    code, doc = _finish(proc)
    assert code == 1
    assert doc["run"]["status"] == "failed" and doc["run"]["reason"] == "denied"  # type: ignore[index]
    nodes = _nodes(doc)
    assert nodes["approve-prod"]["reason"] == "denied"
    assert nodes["approve-prod"]["error"] == f"denied by {other[APPROVER]}: not today"
    assert nodes["deploy"]["status"] == "cancelled"


@pytest.mark.parametrize(
    ("on_expiry", "code", "gate_status"),
    [("fail", 1, "failed"), ("deny", 1, "failed"), ("approve", 0, "success")],
)
def test_expired_approval_follows_on_expiry(
    shared: tuple[Proj, dict], on_expiry: str, code: int, gate_status: str
) -> None:
    proj, _ = shared
    proj.env["GATE_TIMEOUT"] = "0.5s"
    proj.env["ON_EXPIRY"] = on_expiry
    res_code, doc = proj.run_json("release")
    assert res_code == code, doc
    node = _nodes(doc)["approve-prod"]
    assert node["status"] == gate_status
    assert node["extra"]["gate"]["resolved_by"] == "sparkwing (timed out)"  # type: ignore[index]
    if on_expiry == "deny":
        assert doc["run"]["reason"] == "denied"  # type: ignore[index]


def test_racing_approve_and_deny_exactly_one_wins(shared: tuple[Proj, dict]) -> None:
    proj, other = shared
    proc = proj.popen("run", "release", "-o", "json")
    gate = _wait_for_gate(other, proj.root, "approve-prod", proc=proc)
    from tests.engine.swtest import SPARKWING

    racers = [
        subprocess.Popen(
            [
                SPARKWING,
                "runs",
                "approvals",
                verb,
                "--run",
                str(gate["run_id"]),
                "--node",
                "approve-prod",
            ],
            env={**other, "SPARKWING_USER": user},
            cwd=proj.root,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for verb, user in (("approve", "alice"), ("deny", "dave"))
    ]
    results = [(r.wait(timeout=60), *r.communicate()) for r in racers]
    codes = sorted(c for c, _, _ in results)
    assert codes == [0, 2], results
    loser_err = next(err for c, _, err in results if c == 2)
    assert "already resolved by" in loser_err and loser_err.startswith("error: ")
    assert len(loser_err.strip().splitlines()) == 1
    code, doc = _finish(proc)
    assert code in (0, 1)
    assert doc["run"]["status"] == ("success" if code == 0 else "failed")  # type: ignore[index]


def test_pause_before_resumed_from_another_process(shared: tuple[Proj, dict]) -> None:
    proj, other = shared
    (proj.root / "fixed.txt").write_text("yes")
    proc = proj.popen("run", "debug", "--sw-pause-before", "flaky", "-o", "json")
    gate = _wait_for_gate(other, proj.root, "flaky", kind="pauses", proc=proc)
    assert gate["kind"] == "pause"
    res = _sw(other, proj.root, "runs", "resume", "--run", str(gate["run_id"]), "--node", "flaky")
    assert res.returncode == 0, res.stderr
    code, doc = _finish(proc)
    assert code == 0, doc
    assert _nodes(doc)["flaky"]["output"] == "fixed"


def test_pause_on_failure_keeps_workspace_and_resume_reruns(shared: tuple[Proj, dict]) -> None:
    proj, other = shared
    proc = proj.popen("run", "debug", "--sw-pause-on-failure", "-o", "json")
    gate = _wait_for_gate(other, proj.root, "flaky", kind="pauses", proc=proc)
    assert "broken until fixed.txt exists" in str(gate["message"])
    (proj.root / "fixed.txt").write_text("fixed by hand")  # the engineer repairs the workspace
    res = _sw(other, proj.root, "runs", "resume", "--run", str(gate["run_id"]), "--node", "flaky")
    assert res.returncode == 0, res.stderr
    code, doc = _finish(proc)
    assert code == 0, doc
    node = _nodes(doc)["flaky"]
    assert node["status"] == "success" and node["attempt"] == 2


def test_aborted_pause_cancels_the_run(shared: tuple[Proj, dict]) -> None:
    proj, other = shared
    proc = proj.popen("run", "debug", "--sw-pause-before", "flaky", "-o", "json")
    gate = _wait_for_gate(other, proj.root, "flaky", kind="pauses", proc=proc)
    res = _sw(
        other,
        proj.root,
        "runs",
        "resume",
        "--run",
        str(gate["run_id"]),
        "--node",
        "flaky",
        "--abort",
    )
    assert res.returncode == 0, res.stderr
    code, doc = _finish(proc)
    assert code == 130
    assert doc["run"]["status"] == "cancelled"  # type: ignore[index]
    reason = str(doc["run"]["reason"])  # type: ignore[index]
    assert f"aborted at the pause of flaky by {other[APPROVER]}" in reason
    assert _nodes(doc)["flaky"]["status"] == "cancelled"


def test_unknown_pause_job_is_a_usage_error(shared: tuple[Proj, dict]) -> None:
    proj, _ = shared
    res = proj.sw("run", "debug", "--sw-pause-before", "nope")
    assert res.code == 2
    assert res.err.strip() == (
        'error: --sw-pause-before: pipeline "debug" has no job "nope" (jobs: first, flaky)'
    )
