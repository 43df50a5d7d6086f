"""Concurrency groups end to end: five runs of one group started at once, as direct
`sparkwing run` processes on a shared postgres state and as `runs submit` + `sparkwing worker`
through a controller; with `queue` they run one after another (from the recorded start and
end times), with `cancel-running` only the last completes, with `skip` only the first runs.
Also a run interrupted while it waits, and the clear errors of a bad group."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from sparkwing.status import FINAL_RUN_STATUSES
from sparkwing.surfaces.state.base import RunRecord, StateStore
from sparkwing.surfaces.state.postgres import PostgresState
from sparkwing.surfaces.state.sqlite import SqliteState
from tests.conftest import Cli, ProjectFiles, sparkwing_command
from tests.controller.harness import Controller, local_profile
from tests.pgutil import fresh_database

RUNS = 5
PIPELINE = """
import os, time
from dataclasses import dataclass
from pathlib import Path

import sparkwing as sw


@dataclass
class Args:
    env: str = "prod"


def work(ctx):
    # Holds the group until the test opens the gate (at once for `queue`).
    gate = Path(os.environ["GROUP_GATE"])
    deadline = time.monotonic() + 120
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)


@sw.pipeline("deploy")
def deploy(plan, args: Args, rc):
    plan.job("work", work)
"""


def _yaml(profile: str, on_busy: str) -> str:
    return (
        f"{profile}\n"
        "pipelines:\n"
        "  - name: deploy\n"
        "    entrypoint: deploy\n"
        f'    concurrency: {{ group: "deploy-${{env}}", on_busy: {on_busy} }}\n'
    )


@dataclass
class Setup:
    cli: Cli
    env: dict[str, str]
    gate: Path
    state: Callable[[], StateStore]  # a handle on the state the runs share
    start: Callable[[], list[subprocess.Popen[str]]]  # the five runs, at once


def _runs(open_state: Callable[[], StateStore]) -> list[RunRecord]:
    state = open_state()
    try:
        return state.list_runs(pipeline="deploy", limit=50).runs
    finally:
        state.close()


def _wait_until(what: str, check: Callable[[], bool], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _popen(
    cli: Cli, env: dict[str, str], *args: str, session: bool = False
) -> subprocess.Popen[str]:
    """``session``: its own process group, the "terminal" a test presses Ctrl-C in."""
    return subprocess.Popen(
        [*sparkwing_command(), *args],
        cwd=cli.cwd,
        env={**cli.env, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=session,
    )


@pytest.fixture
def on_postgres(
    project: ProjectFiles, cli: Cli, tmp_path: Path
) -> Iterator[Callable[[str], Setup]]:
    """Five direct `sparkwing run` processes sharing one postgres state."""
    project.write("deploy.py", PIPELINE)
    with fresh_database("groups") as url:

        def make(on_busy: str) -> Setup:
            profile = (
                'profiles:\n  shared:\n    state: { type: postgres, url_source: "env:GROUP_URL" }'
            )
            project.yaml(_yaml(profile, on_busy))
            env = _env(tmp_path, GROUP_URL=url)

            def start() -> list[subprocess.Popen[str]]:
                run = ("run", "deploy", "--profile", "shared", "--env", "prod", "-o", "quiet")
                return [_popen(cli, env, *run) for _ in range(RUNS)]

            return Setup(cli, env, Path(env["GROUP_GATE"]), lambda: PostgresState(url), start)

        yield make


@pytest.fixture
def through_controller(
    project: ProjectFiles, cli: Cli, tmp_path: Path
) -> Iterator[Callable[[str], Setup]]:
    """Five runs submitted at once to a controller's queue, started by one worker."""
    project.write("deploy.py", PIPELINE)
    data = tmp_path / "controller"
    served = Controller(local_profile(data))
    token = served.token()
    try:

        def make(on_busy: str) -> Setup:
            profile = (
                f"profiles:\n  shared:\n    controller: {{ url: {served.url}, token: {token} }}"
            )
            project.yaml(_yaml(profile, on_busy))
            env = _env(tmp_path)

            def start() -> list[subprocess.Popen[str]]:
                submit = ("runs", "submit", "deploy", "--profile", "shared", "--env", "prod")
                with ThreadPoolExecutor(RUNS) as pool:
                    codes = list(pool.map(lambda _: cli(*submit, env=env).code, range(RUNS)))
                assert codes == [0] * RUNS
                work = ("worker", "--profile", "shared", "--once", "--poll", "0.2s")
                return [_popen(cli, env, *work, "--parallel", str(RUNS))]

            return Setup(
                cli, env, Path(env["GROUP_GATE"]), lambda: SqliteState(data / "state.db"), start
            )

        yield make
    finally:
        served.stop()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # A short lease: a holder renews (and learns it was taken over) every second.
    return {
        "GROUP_GATE": str(tmp_path / "gate"),
        "SPARKWING_GROUP_LEASE_SECONDS": "3",
        **extra,
    }


BACKENDS = ["on_postgres", "through_controller"]


def _setup(request: pytest.FixtureRequest, backend: str, on_busy: str) -> Setup:
    make: Callable[[str], Setup] = request.getfixturevalue(backend)
    return make(on_busy)


def _finish(setup: Setup, procs: list[subprocess.Popen[str]]) -> list[RunRecord]:
    for proc in procs:
        proc.wait(timeout=300)
        assert proc.returncode in (0, 130), proc.communicate()
    runs = _runs(setup.state)
    assert len(runs) == RUNS
    assert all(r.status in FINAL_RUN_STATUSES for r in runs), [(r.run_id, r.status) for r in runs]
    return runs


def _once_four_are_cancelled(setup: Setup) -> list[RunRecord]:
    """Start the runs, open the gate once four of them have ended cancelled (the one left
    holds the group meanwhile), and return the final records."""
    procs = setup.start()

    def four_cancelled() -> bool:
        runs = _runs(setup.state)
        return len(runs) == RUNS and sum(r.status == "cancelled" for r in runs) == RUNS - 1

    _wait_until("four runs to end cancelled", four_cancelled)
    setup.gate.touch()
    return _finish(setup, procs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_queue_runs_one_after_another(request: pytest.FixtureRequest, backend: str) -> None:
    setup = _setup(request, backend, "queue")
    setup.gate.touch()
    runs = _finish(setup, setup.start())
    assert [r.status for r in runs] == ["success"] * RUNS
    spans = sorted((r.started_at or "", r.finished_at or "", r.run_id) for r in runs)
    for (_, end, first), (begin, _, second) in itertools.pairwise(spans):
        assert end <= begin, f"{first} (ended {end}) overlaps {second} (started {begin})"
    # Each waited in the group before it started: its reason said for whom while it waited.
    state = setup.state()
    try:
        waits = [
            e.data
            for r in runs
            for e in state.list_events(r.run_id)
            if e.kind == "concurrency_wait"
        ]
    finally:
        state.close()
    assert waits and all(w["group"] == "deploy-prod" for w in waits)
    assert {w["holder"] for w in waits} <= {r.run_id for r in runs}


@pytest.mark.parametrize("backend", BACKENDS)
def test_cancel_running_leaves_only_the_last(request: pytest.FixtureRequest, backend: str) -> None:
    setup = _setup(request, backend, "cancel-running")
    runs = _once_four_are_cancelled(setup)
    done = [r for r in runs if r.status == "success"]
    cancelled = [r for r in runs if r.status == "cancelled"]
    assert len(done) == 1 and len(cancelled) == RUNS - 1
    takers = set()
    for run in cancelled:
        assert run.reason and run.reason.startswith("cancelled: run "), run.reason
        assert run.reason.endswith(" took over concurrency group deploy-prod"), run.reason
        takers.add(run.reason.split()[2])
    # The survivor took over from a run, and nobody took over from it: it came last.
    assert done[0].run_id in takers
    assert done[0].run_id not in {r.run_id for r in cancelled}


@pytest.mark.parametrize("backend", BACKENDS)
def test_skip_runs_only_the_first(request: pytest.FixtureRequest, backend: str) -> None:
    setup = _setup(request, backend, "skip")
    runs = _once_four_are_cancelled(setup)
    done = [r for r in runs if r.status == "success"]
    assert len(done) == 1
    first = done[0].run_id
    expected = f"skipped: concurrency group deploy-prod is busy (held by run {first})"
    assert sorted(r.reason or "" for r in runs if r.status == "cancelled") == [expected] * 4
    # A skipped run never started a job.
    state = setup.state()
    try:
        assert all(not state.list_nodes(r.run_id) for r in runs if r.run_id != first)
    finally:
        state.close()


# -- one machine, sqlite ------------------------------------------------------------------


@pytest.fixture
def local(project: ProjectFiles, cli: Cli, tmp_path: Path) -> Setup:
    project.write("deploy.py", PIPELINE)
    project.yaml(_yaml("", "queue"))
    env = _env(tmp_path)
    db = cli.sparkwing_home / "state.db"
    return Setup(cli, env, Path(env["GROUP_GATE"]), lambda: SqliteState(db), lambda: [])


def test_ctrl_c_while_waiting_ends_the_run_cancelled_and_frees_its_place(local: Setup) -> None:
    holder = _popen(local.cli, local.env, "run", "deploy", "-o", "quiet")
    _wait_until("the first run to hold the group", lambda: _status_count(local, "running") == 1)
    waiter = _popen(local.cli, local.env, "run", "deploy", "-o", "plain", session=True)
    _wait_until("the second run to wait", lambda: _status_count(local, "pending") == 1)
    status = local.cli("runs", "status", env=local.env)
    holding = next(r.run_id for r in _runs(local.state) if r.status == "running")
    assert f"waiting for concurrency group deploy-prod, held by run {holding}" in status.stdout
    listed = local.cli("runs", "list", env=local.env)
    assert f": waiting for concurrency group deploy-prod, held by run {holding}" in listed.stdout

    os.killpg(waiter.pid, signal.SIGINT)
    out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 130, err
    # The terminal was told what the run waited for, not left silent.
    waited_id = next(r.run_id for r in _runs(local.state) if r.run_id != holding)
    assert (
        f"waiting: run {waited_id} waiting for concurrency group deploy-prod, held by run {holding}"
    ) in out
    assert "error: cancelled while waiting for concurrency group deploy-prod" in err
    assert "Traceback" not in err
    waited = next(r for r in _runs(local.state) if r.run_id != holding)
    assert waited.status == "cancelled" and waited.finished_at
    assert waited.reason == (
        "cancelled while waiting for concurrency group deploy-prod (interrupted by SIGINT)"
    )
    # `runs cancel` ends a waiting run the same way.
    another = _popen(local.cli, local.env, "run", "deploy", "-o", "quiet")
    _wait_until("a third run to wait", lambda: _status_count(local, "pending") == 1)
    third = next(r.run_id for r in _runs(local.state) if r.status == "pending")
    cancelled = local.cli("runs", "cancel", "--run", third, env=local.env)
    assert cancelled.code == 0, cancelled.stderr
    assert another.wait(timeout=120) == 130
    assert cancelled.stdout.startswith(f"run {third} cancelled: cancelled while waiting")
    state = local.state()
    try:
        groups = state.groups
        assert groups is not None
        assert [m.run_id for m in groups.members("deploy-prod")] == [holding]
        local.gate.touch()
        assert holder.wait(timeout=120) == 0
        assert groups.members("deploy-prod") == []
    finally:
        state.close()


def _status_count(setup: Setup, status: str) -> int:
    return sum(r.status == status for r in _runs(setup.state))


def test_an_unknown_variable_in_the_group_is_one_clear_error(
    project: ProjectFiles, cli: Cli
) -> None:
    project.write("deploy.py", PIPELINE)
    project.yaml(_yaml("", "queue").replace("${env}", "${region}"))
    result = cli("run", "deploy")
    assert result.code == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert 'pipeline "deploy" concurrency group "deploy-${region}": unknown variable ${region}' in (
        result.stderr
    )
    assert "known here: ${PIPELINE_NAME}, ${env}" in result.stderr
    assert cli("runs", "list", "-o", "json").stdout == ""


def test_the_group_may_name_the_pipeline(project: ProjectFiles, cli: Cli, tmp_path: Path) -> None:
    project.write("deploy.py", PIPELINE)
    project.yaml(_yaml("", "skip").replace("${env}", "${PIPELINE_NAME}"))
    (tmp_path / "gate").touch()
    result = cli("run", "deploy", "-o", "json", env=_env(tmp_path))
    assert result.code == 0, result.stderr
    assert result.json()["run"]["extra"]["concurrency"] == {
        "group": "deploy-deploy",
        "on_busy": "skip",
    }


def test_a_holder_that_dies_is_closed_and_its_group_passed_on(local: Setup) -> None:
    holder = _popen(local.cli, local.env, "run", "deploy", "-o", "quiet", session=True)
    _wait_until("the first run to hold the group", lambda: _status_count(local, "running") == 1)
    dead = next(r for r in _runs(local.state) if r.status == "running")
    waiter = _popen(local.cli, local.env, "run", "deploy", "-o", "quiet")
    _wait_until("the second run to wait", lambda: _status_count(local, "pending") == 1)
    os.killpg(holder.pid, signal.SIGKILL)  # the CLI and its runner, with no chance to clean up
    holder.wait(timeout=60)
    local.gate.touch()
    assert waiter.wait(timeout=180) == 0, waiter.communicate()
    by_id = {r.run_id: r for r in _runs(local.state)}
    closed = by_id.pop(dead.run_id)
    assert closed.status == "failed" and closed.reason
    assert "died (found by concurrency group deploy-prod)" in closed.reason
    [(_, survivor)] = by_id.items()
    assert survivor.status == "success"
    assert (closed.finished_at or "") <= (survivor.started_at or "")
