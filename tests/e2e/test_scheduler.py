"""`sparkwing scheduler` processes sharing one postgres state, time from a test clock file:
each tick is queued exactly once however many schedulers race for it, and ticks missed
while every scheduler was down are made up by one catch-up run; `schedules list` shows
the next tick and the last one fired."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, ProjectFiles, sparkwing_command
from tests.pgutil import fresh_database

PROJECT = """
profiles:
  shared:
    state: { type: postgres, url_source: "env:SCHED_STATE_URL" }
pipelines:
  - name: every5
    entrypoint: Every5
    on:
      schedule: [{ cron: "*/5 * * * *" }]
  - name: hourly
    entrypoint: Hourly
    on:
      schedule: [{ cron: "0 * * * *", timezone: "Asia/Kolkata" }]
  - name: manual
    entrypoint: Manual
"""


@pytest.fixture
def sched(project: ProjectFiles, cli: Cli, tmp_path: Path) -> Iterator[Path]:
    """The project on a fresh postgres database; yields the clock file the CLI reads."""
    project.yaml(PROJECT)
    clock = tmp_path / "clock"
    with fresh_database("sched") as url:
        cli.env.update({"SCHED_STATE_URL": url, "SPARKWING_TEST_CLOCK_FILE": str(clock)})
        yield clock


def _start(cli: Cli, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*sparkwing_command(), "scheduler", "--profile", "shared", "-o", "json", *args],
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _runs(cli: Cli) -> list[dict[str, Any]]:
    result = cli("runs", "list", "--profile", "shared", "-o", "json", "--limit", "500")
    assert result.code == 0, result.stderr
    return [r for r in result.ndjson() if r["trigger"] == "schedule"]


def _race(cli: Cli, n: int = 3) -> list[dict[str, Any]]:
    """``n`` schedulers started together, each checking once; every line they print."""
    procs = [_start(cli, "--once") for _ in range(n)]
    lines = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        lines.extend(json.loads(line) for line in out.splitlines() if line.strip())
    return lines


def test_three_schedulers_queue_each_tick_once(sched: Path, cli: Cli) -> None:
    # 09:00 UTC is 14:30 in Kolkata: only every5 is due; 09:30 UTC is 15:00 there.
    for tick in ("09:00", "09:05", "09:30"):
        sched.write_text(f"2026-03-02T{tick}:07Z")
        lines = _race(cli)
        by_schedule = collections.defaultdict(list)
        for line in lines:
            assert line["tick"] == f"2026-03-02T{tick}:00Z"
            by_schedule[line["pipeline"]].append(line["queued"])
        expected = {"every5"} if tick != "09:30" else {"every5", "hourly"}
        assert set(by_schedule) == expected
        # Exactly one scheduler queued each due tick; one that looked after it was queued
        # saw nothing due, one that raced for it was told it was taken.
        for outcomes in by_schedule.values():
            assert outcomes.count(True) == 1 and len(outcomes) <= 3
    runs = _runs(cli)
    ticks = sorted((r["pipeline"], r["extra"]["tick"]) for r in runs)
    hourly = next(r for r in runs if r["pipeline"] == "hourly")
    assert hourly["extra"]["catch_up"] is False  # its first tick, on time
    assert ticks == [
        ("every5", "2026-03-02T09:00:00Z"),
        ("every5", "2026-03-02T09:05:00Z"),
        ("every5", "2026-03-02T09:30:00Z"),
        ("hourly", "2026-03-02T09:30:00Z"),
    ]
    nine_thirty = next(
        r for r in runs if r["extra"]["tick"].endswith("09:30:00Z") and r["pipeline"] == "every5"
    )
    # 09:10 ... 09:25 were never fired: the 09:30 run stands for them.
    assert nine_thirty["extra"]["catch_up"] is True and nine_thirty["extra"]["skipped_ticks"] == 4
    for run in runs:
        assert run["status"] == "queued"
        assert run["source"] == {"kind": "local", "root": str(cli.cwd), "cwd": str(cli.cwd)}


def test_long_running_schedulers_share_ticks(sched: Path, cli: Cli) -> None:
    sched.write_text("2026-03-02T10:02:00Z")
    procs = [_start(cli, "--poll", "0.1") for _ in range(3)]
    try:
        for minute in ("05", "10", "15"):
            sched.write_text(f"2026-03-02T10:{minute}:01Z")
            deadline = time.monotonic() + 90
            while not any(r["extra"]["tick"] == f"2026-03-02T10:{minute}:00Z" for r in _runs(cli)):
                assert time.monotonic() < deadline, f"tick 10:{minute} never queued"
                time.sleep(0.2)
            time.sleep(0.5)  # let every scheduler take a turn at this tick
    finally:
        outputs = []
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
            outputs.append(out)
            assert proc.returncode == 130, err
    ticks = sorted(r["extra"]["tick"] for r in _runs(cli))
    assert ticks == [f"2026-03-02T10:{m}:00Z" for m in ("05", "10", "15")]
    queued_lines = [
        json.loads(line)
        for out in outputs
        for line in out.splitlines()
        if line.strip() and json.loads(line)["queued"]
    ]
    assert sorted(line["tick"] for line in queued_lines) == ticks


def test_an_outage_queues_one_catch_up_run(sched: Path, cli: Cli) -> None:
    sched.write_text("2026-03-02T11:00:20Z")
    assert [line["queued"] for line in _race(cli, 1) if line["pipeline"] == "every5"] == [True]
    # Every scheduler down from 11:01 to 11:17: 11:05, 11:10 and 11:15 were missed.
    sched.write_text("2026-03-02T11:17:00Z")
    (line,) = [line for line in _race(cli, 2) if line["queued"]]
    assert (line["tick"], line["catch_up"], line["skipped_ticks"]) == (
        "2026-03-02T11:15:00Z",
        True,
        2,
    )
    assert _race(cli, 2) == []  # nothing more is due at 11:17
    every5 = sorted(r["extra"]["tick"] for r in _runs(cli) if r["pipeline"] == "every5")
    assert every5 == ["2026-03-02T11:00:00Z", "2026-03-02T11:15:00Z"]
    listed = cli("schedules", "list", "--profile", "shared", "-o", "json")
    assert listed.code == 0, listed.stderr
    by_pipeline = {doc["pipeline"]: doc for doc in listed.ndjson()}
    assert by_pipeline["every5"]["next"] == "2026-03-02T11:20:00Z"
    assert by_pipeline["every5"]["last"] == "2026-03-02T11:15:00Z"
    # 11:30 UTC is 17:00 in Kolkata, the next full hour there.
    assert by_pipeline["hourly"]["next"] == "2026-03-02T11:30:00Z"
    assert by_pipeline["hourly"]["timezone"] == "Asia/Kolkata"
    table = cli("schedules", "list", "--profile", "shared")
    assert "every5" in table.stdout and "2026-03-02T11:20:00Z" in table.stdout


def test_scheduler_needs_a_project_and_a_store_with_ticks(
    cli: Cli, project: ProjectFiles, tmp_path: Path
) -> None:
    result = cli("-C", str(tmp_path), "scheduler", "--once")
    assert result.code == 2 and result.stderr.startswith("error: no .sparkwing/ folder found")
    project.yaml("pipelines: [{name: a, entrypoint: A}]\n")
    empty = cli("scheduler", "--once")  # the local sqlite state: no schedules, nothing due
    assert (empty.code, empty.stdout) == (0, "")
