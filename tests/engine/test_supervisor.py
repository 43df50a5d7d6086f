"""The process supervisor on real forked job processes, without a scheduler: output and
results, timeouts that end the whole process group, terminate_all, signals."""

from __future__ import annotations

import os
import select
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sparkwing.engine.jobproc import JobHost, JobLaunch, ShellLaunch
from sparkwing.engine.masking import Masker
from sparkwing.engine.supervisor import Exited, Supervisor
from sparkwing.sdk.context import Context, RunContext
from sparkwing.surfaces.cache.base import Cache


class Collected:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, Any]] = []

    def __call__(self, key: str, items: list[tuple[str, Any]]) -> None:
        self.items += [(key, kind, item) for kind, item in items]


def host(tmp_path: Path, fns: dict[str, Any]) -> JobHost:
    rc = RunContext(run_id="run-test", pipeline="p", workdir=tmp_path)
    return JobHost(rc, None, fns, {}, lambda: None, no_cache)


def no_cache() -> Cache:
    raise AssertionError("these jobs move no artifacts")


def launch(tmp_path: Path, job_id: str) -> JobLaunch:
    return JobLaunch(job_id=job_id, env={}, workdir=str(tmp_path))


def wait_for(sup: Supervisor, count: int) -> list[Exited]:
    exited: list[Exited] = []
    while len(exited) < count:
        exited += sup.wait(0.5)
    return exited


def talk(ctx: Context) -> dict[str, int]:
    print("hello from the job")
    ctx.log.info("a structured line")
    return {"answer": 42}


def test_an_attempt_passes_on_its_output_and_reports_its_result(tmp_path: Path) -> None:
    seen = Collected()
    with Supervisor(seen, Masker(), host(tmp_path, {"talk": talk})) as sup:
        pid = sup.start("talk", launch(tmp_path, "talk"), None)
        assert len(sup) == 1
        [exited] = wait_for(sup, 1)
        assert len(sup) == 0
    assert exited.key == "talk" and not exited.timed_out
    assert os.waitstatus_to_exitcode(exited.status) == 0
    assert exited.result is not None and exited.result["output"] == {"answer": 42}
    assert ("talk", "line", "hello from the job") in seen.items
    controls = [item for key, kind, item in seen.items if kind == "control"]
    assert {"t": "log", "s": "info", "m": "a structured line"} in controls
    assert all(item.get("t") != "result" for item in controls)  # kept by the supervisor
    assert pid > 0


def test_a_timeout_kills_the_attempts_whole_process_group(tmp_path: Path) -> None:
    slow = host(tmp_path, {"slow": "sleep 41.25 & sleep 41.25; wait"})
    with Supervisor(Collected(), Masker(), slow) as sup:
        sup.start("slow", launch(tmp_path, "slow"), 0.3)
        [exited] = wait_for(sup, 1)
    assert exited.timed_out
    assert os.WIFSIGNALED(exited.status)
    left = subprocess.run(["pgrep", "-f", "sleep 41.25"], capture_output=True, text=True)
    assert left.stdout.strip() == "", "a process of the timed-out job survived"


def test_terminate_all_ends_every_running_attempt(tmp_path: Path) -> None:
    sleepers = host(tmp_path, {"a": "sleep 42.75", "b": "sleep 42.75"})
    with Supervisor(Collected(), Masker(), sleepers) as sup:
        for key in ("a", "b"):
            sup.start(key, launch(tmp_path, key), None)
        exited = sup.terminate_all(grace=5.0)
        assert len(sup) == 0
    assert sorted(e.key for e in exited) == ["a", "b"]
    assert all(e.result is None or not e.result.get("ok") for e in exited)
    left = subprocess.run(["pgrep", "-f", "sleep 42.75"], capture_output=True, text=True)
    assert left.stdout.strip() == ""


def test_a_signal_becomes_an_interruption_and_handlers_are_restored(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGHUP)
    child_before = signal.getsignal(signal.SIGCHLD)
    with Supervisor(Collected(), Masker()) as sup:
        assert signal.getsignal(signal.SIGCHLD) is not child_before  # exits wake it
        os.kill(os.getpid(), signal.SIGHUP)
        sup.wait(0.5)
        assert sup.interrupted == "interrupted by SIGHUP"
    assert signal.getsignal(signal.SIGHUP) is before
    assert signal.getsignal(signal.SIGCHLD) is child_before


def command(tmp_path: Path, key: str, text: str) -> ShellLaunch:
    env = {**os.environ, "SPARKWING_RUN_ID": "run-test", "SPARKWING_JOB": key}
    return ShellLaunch(key, text, env, str(tmp_path))


def ended_within(sup: Supervisor, count: int, turns: int = 60) -> list[Exited]:
    """What ended in at most ``turns`` waits of 0.5 s: an exit never noticed fails the
    test instead of hanging it."""
    exited: list[Exited] = []
    for _ in range(turns):
        if len(exited) >= count:
            break
        exited += sup.wait(0.5)
    return exited


def test_a_burst_of_commands_is_reaped_each_with_its_own_status(tmp_path: Path) -> None:
    # Exits close together share SIGCHLDs: every running command is asked on each one.
    seen = Collected()
    codes = {f"c{i}": i % 3 for i in range(40)}
    with Supervisor(seen, Masker()) as sup:
        pending = list(codes)
        exited: list[Exited] = []
        while pending or len(sup):
            while pending and len(sup) < 4:
                key = pending.pop()
                sup.start_shell(key, command(tmp_path, key, f"echo {key}; exit {codes[key]}"), None)
            got = ended_within(sup, 1)
            assert got, f"no exit noticed among {len(sup)} running commands"
            exited += got
    assert {e.key: os.waitstatus_to_exitcode(e.status) for e in exited} == codes
    assert {(k, item) for k, kind, item in seen.items} == {(k, ("stdout", k)) for k in codes}


def test_an_exit_is_noticed_even_when_its_sigchld_is_lost(tmp_path: Path) -> None:
    with Supervisor(Collected(), Masker()) as sup:
        ours = signal.getsignal(signal.SIGCHLD)
        # Someone replaced the handler: no SIGCHLD reaches the selector any more.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        try:
            sup.start_shell("quiet", command(tmp_path, "quiet", "exit 7"), None)
            [exited] = ended_within(sup, 1)
        finally:
            signal.signal(signal.SIGCHLD, ours)
    assert os.waitstatus_to_exitcode(exited.status) == 7
    assert exited.result is not None and "exit code 7" in exited.result["error"]


def test_without_epoll_the_selectors_module_watches_the_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not Linux: no epoll, the portable selector instead; the same output and exit.
    monkeypatch.delattr(select, "epoll", raising=False)
    seen = Collected()
    with Supervisor(seen, Masker()) as sup:
        sup.start_shell("hi", command(tmp_path, "hi", "echo hi; echo oops >&2; exit 2"), None)
        [exited] = ended_within(sup, 1)
    assert os.waitstatus_to_exitcode(exited.status) == 2
    assert ("hi", "log", ("stdout", "hi")) in seen.items
    assert ("hi", "log", ("stderr", "oops")) in seen.items
    assert exited.result is not None and "oops" in exited.result["error"]
