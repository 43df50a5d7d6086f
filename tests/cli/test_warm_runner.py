"""The runner process `sparkwing run` forks as it starts (see engine.supervise.WarmRunner):
a run that never happens (a usage error) leaves no process behind. Every other CLI test of
`sparkwing run` goes through that process too."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from tests.conftest import Cli, ProjectFiles

PIPE = """
import os
import sparkwing as sw


@sw.pipeline("pids")
def pids(plan):
    plan.job("a", lambda ctx: {"runner": os.getppid()})
"""


def _processes_naming(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


def test_a_run_that_never_starts_leaves_no_runner_behind(project: ProjectFiles, cli: Cli) -> None:
    project.write("pids.py", PIPE)
    marker = f"nosuch-{uuid.uuid4().hex}"
    result = cli("run", marker)
    assert result.code == 2, result.stderr
    assert f'unknown pipeline "{marker}"' in result.stderr
    assert "Traceback" not in result.stderr
    assert _processes_naming(marker) == [], "the forked runner outlived the CLI"


def test_a_run_outside_a_project_leaves_no_runner_behind(tmp_path: Path, cli: Cli) -> None:
    marker = f"ci-{uuid.uuid4().hex}"
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    result = cli("run", marker, cwd=elsewhere)
    assert result.code == 2 and "no .sparkwing/ folder found" in result.stderr
    assert _processes_naming(marker) == []


def test_hand_over_files_of_a_cli_killed_outright_are_removed_by_the_next_run(
    project: ProjectFiles, cli: Cli
) -> None:
    project.write("pids.py", PIPE)
    folder = cli.sparkwing_home / "runner"
    folder.mkdir(parents=True)
    dead = _a_dead_pid()
    stale = [folder / f"{dead}-0011223344556677.json", folder / f"{dead}-0011.json.doing"]
    for path in stale:
        path.write_text("{}")
    mine = folder / "notes.txt"  # not named after a process: left alone
    mine.write_text("keep")
    result = cli("run", "pids")
    assert result.code == 0, result.stderr
    assert not any(path.exists() for path in stale)
    assert mine.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def _a_dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
