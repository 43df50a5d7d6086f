"""Runs that travel, end to end through the real CLI: code submitted from one machine (a home
with no checkout, or a dirty checkout) runs on a worker in another home and another folder,
from a git mirror it keeps (fetched incrementally) or a snapshot taken from the cache; on
sqlite (one machine), postgres and a controller."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, sparkwing_command
from tests.source.gitrepo import git

PIPES = """
import os
from pathlib import Path

import sparkwing as sw


def show(ctx):
    return {
        "data": (ctx.workdir / "data.txt").read_text().strip(),
        "workdir": str(ctx.workdir),
        "home": os.environ.get("SPARKWING_HOME", ""),
    }


def hang(ctx):
    pid = Path(os.environ["TRAVEL_PID"])
    if pid.exists():
        # A later attempt (its first worker killed, the run reclaimed): whether the next
        # worker takes it before the lease runs out depends on the machine's speed.
        return
    pid.write_text(str(os.getpid()))
    import time
    time.sleep(300)


@sw.pipeline("show")
def show_plan(plan, args, rc):
    plan.job("show", show)


@sw.pipeline("broken")
def broken_plan(plan, args, rc):
    plan.job("boom", "exit 3")


@sw.pipeline("hang")
def hang_plan(plan, args, rc):
    plan.job("hang", hang)
"""

YAML = """
pipelines:
  - name: show
    entrypoint: show
  - name: broken
    entrypoint: broken
  - name: hang
    entrypoint: hang
  - name: gpu-show
    entrypoint: show
    requires: [gpu]
"""


class Fleet:
    """A bare repository (the only copy of the code), a developer's clone of it, and
    machines (homes) sharing one profile "shared" through their own profiles files."""

    def __init__(self, tmp: Path, profile_lines: list[str], env: dict[str, str]) -> None:
        self.tmp = tmp
        self.bare = tmp / "upstream.git"
        self.url = f"file://{self.bare}"
        self.profile_lines = profile_lines
        self.env = env
        git(tmp, "init", "-q", "--bare", "-b", "main", str(self.bare))
        self.dev = tmp / "dev"
        git(tmp, "clone", "-q", str(self.bare), str(self.dev))
        (self.dev / ".sparkwing").mkdir()
        (self.dev / ".sparkwing" / "pipes.py").write_text(PIPES)
        (self.dev / ".sparkwing" / "sparkwing.yaml").write_text(YAML.lstrip())
        (self.dev / ".gitignore").write_text("ignored.txt\n")
        self.commit("data.txt", "first")

    def commit(self, name: str, text: str) -> str:
        (self.dev / name).write_text(text + "\n")
        git(self.dev, "add", "-A")
        git(self.dev, "commit", "-qm", f"{name}: {text}")
        git(self.dev, "push", "-q", "origin", "HEAD:main")
        return git(self.dev, "rev-parse", "HEAD")

    def machine(self, name: str, cwd: Path | None = None) -> Cli:
        """A machine: its own HOME and SPARKWING_HOME, working in ``cwd`` (default: an
        empty folder of its own, so no checkout)."""
        base = self.tmp / name
        folder = cwd or base / "folder"
        folder.mkdir(parents=True, exist_ok=True)
        cli = Cli(folder, base)
        profiles = base / "profiles.yaml"
        profiles.write_text("\n".join(["profiles:", "  shared:", *self.profile_lines]) + "\n")
        cli.env.update(self.env)
        cli.env["SPARKWING_PROFILES"] = str(profiles)
        cli.env["SPARKWING_PROFILE"] = "shared"
        cli.env["TRAVEL_PID"] = str(base / "job.pid")
        return cli


def profile(
    backend: str, tmp: Path, stack: contextlib.ExitStack
) -> tuple[list[str], dict[str, str]]:
    if backend == "controller":
        from tests.controller.harness import Controller, local_profile

        ctl = Controller(local_profile(tmp / "controller"))
        stack.callback(ctl.stop)
        return [f"    controller: {{url: '{ctl.url}', token: '{ctl.token()}'}}"], {}
    files = [
        f"    cache: {{type: filesystem, path: '{tmp / 'shared-cache'}'}}",
        f"    logs: {{type: filesystem, path: '{tmp / 'shared-logs'}'}}",
    ]
    if backend == "sqlite":
        return [f"    state: {{type: sqlite, path: '{tmp / 'shared.db'}'}}", *files], {}
    from tests.pgutil import fresh_database

    url = stack.enter_context(fresh_database("travel"))
    lines = ["    state: {type: postgres, url_source: 'env:TRAVEL_STATE_URL'}", *files]
    return lines, {"TRAVEL_STATE_URL": url}


@pytest.fixture(params=["sqlite", "postgres", "controller"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    with contextlib.ExitStack() as stack:
        lines, env = profile(request.param, tmp_path, stack)
        yield Fleet(tmp_path, lines, env)


@pytest.fixture
def sqlite_fleet(tmp_path: Path) -> Iterator[Fleet]:
    with contextlib.ExitStack() as stack:
        lines, env = profile("sqlite", tmp_path, stack)
        yield Fleet(tmp_path, lines, env)


def events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def submit(cli: Cli, *args: str) -> tuple[str, str]:
    """``runs submit``: the run id and what it said about the source (stderr)."""
    code, out, err = cli("runs", "submit", *args)
    assert code == 0, err
    return out.strip(), err


def work_once(cli: Cli, *args: str) -> list[dict[str, Any]]:
    code, out, err = cli("worker", "--once", "--poll", "0.2s", "-o", "json", *args)
    assert code == 0, err
    return events(out)


def start_worker(cli: Cli, *args: str) -> subprocess.Popen[str]:
    """A long-running ``sparkwing worker`` on machine ``cli``."""
    return subprocess.Popen(
        [*sparkwing_command(), "worker", *args],
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def status(cli: Cli, run_id: str) -> dict[str, Any]:
    code, out, err = cli("runs", "status", run_id, "-o", "json")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def objects(mirror: Path) -> set[str]:
    """Every object file of a bare repository (loose objects and packs), by path."""
    return {str(p.relative_to(mirror)) for p in (mirror / "objects").rglob("*") if p.is_file()}


def test_a_run_submitted_without_a_checkout_runs_from_the_repository_on_another_machine(
    fleet: Fleet,
) -> None:
    laptop = fleet.machine("laptop")
    worker = fleet.machine("worker")
    first = git(fleet.dev, "rev-parse", "HEAD")

    run_id, said = submit(laptop, "show", "--repo", fleet.url, "--ref", "main")
    assert f"git {fleet.url} main at {first[:12]}" in said
    doc = status(laptop, run_id)
    assert doc["run"]["status"] == "queued"
    assert doc["run"]["source"] == {"kind": "git", "url": fleet.url, "ref": "main", "sha": first}
    # The laptop fetched to resolve the ref; the worker has nothing yet.
    assert not (worker.sparkwing_home / "mirrors").exists()

    claimed, finished = work_once(worker)
    assert (claimed["run_id"], finished["run_id"], finished["status"]) == (
        run_id,
        run_id,
        "success",
    )
    output = status(worker, run_id)["nodes"][0]["output"]
    workspace = worker.sparkwing_home / "work" / run_id
    assert output["data"] == "first"
    assert Path(output["workdir"]).resolve() == workspace.resolve()
    assert not workspace.exists()  # removed once the run ended

    (mirror,) = (worker.sparkwing_home / "mirrors").glob("*.git")
    inode, before = mirror.stat().st_ino, objects(mirror)

    second = fleet.commit("data.txt", "second")
    run2, said = submit(laptop, "show", "--repo", fleet.url)  # the default branch
    assert f"main at {second[:12]}" in said
    claimed, finished = work_once(worker)
    assert (finished["run_id"], finished["status"]) == (run2, "success")
    assert status(worker, run2)["nodes"][0]["output"]["data"] == "second"
    # The same mirror, fetched into: every object it had is still there, new ones arrived.
    assert mirror.stat().st_ino == inode
    after = objects(mirror)
    assert before < after

    # The source of every run is on record, for anyone reading the state.
    code, out, err = laptop("runs", "get", run2)
    assert code == 0, err
    assert f"source          git {fleet.url} main at {second[:12]}" in out
    code, out, _ = laptop("runs", "status", run_id)
    assert f"git {fleet.url} main at {first[:12]}" in out


def test_a_dirty_tree_travels_as_a_snapshot_uploaded_once(fleet: Fleet) -> None:
    laptop = fleet.machine("laptop", cwd=fleet.dev)
    worker = fleet.machine("worker")
    (fleet.dev / "data.txt").write_text("uncommitted\n")
    (fleet.dev / "new.txt").write_text("untracked, not ignored\n")
    (fleet.dev / "ignored.txt").write_text("never sent\n")

    run1, said = submit(laptop, "show")
    assert "snapshot src/" in said and "uncommitted changes" in said and "uploaded" in said
    run2, said = submit(laptop, "show")
    assert said.rstrip().endswith("already there")
    key = status(laptop, run1)["run"]["source"]["key"]
    assert status(laptop, run2)["run"]["source"]["key"] == key

    ends = [e for e in work_once(worker) if e["event"] == "finished"]
    assert sorted((e["run_id"], e["status"]) for e in ends) == sorted(
        [(run1, "success"), (run2, "success")]
    )
    for run_id in (run1, run2):
        assert status(worker, run_id)["nodes"][0]["output"]["data"] == "uncommitted"
    # A clean tree whose commit is on origin goes as git again.
    (fleet.dev / "new.txt").unlink()
    git(fleet.dev, "checkout", "--", "data.txt")
    run3, said = submit(laptop, "show")
    assert (
        said.startswith("source: git ") and status(laptop, run3)["run"]["source"]["kind"] == "git"
    )
    # Committed but not pushed: a snapshot again.
    (fleet.dev / "data.txt").write_text("local commit\n")
    git(fleet.dev, "commit", "-qam", "not pushed")
    _, said = submit(laptop, "show")
    assert "commits not pushed to origin" in said


def test_a_snapshot_holds_tracked_and_untracked_files_not_ignored_ones(
    sqlite_fleet: Fleet,
) -> None:
    fleet = sqlite_fleet
    laptop = fleet.machine("laptop", cwd=fleet.dev)
    worker = fleet.machine("worker")
    (fleet.dev / "extra.txt").write_text("untracked\n")
    (fleet.dev / "ignored.txt").write_text("secret-ish\n")
    run_id, _ = submit(laptop, "show")
    key = status(laptop, run_id)["run"]["source"]["key"]
    archive = fleet.tmp / "shared-cache" / key
    import tarfile

    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
    assert names == [
        ".gitignore",
        ".sparkwing/pipes.py",
        ".sparkwing/sparkwing.yaml",
        "data.txt",
        "extra.txt",
    ]
    assert work_once(worker)[-1]["status"] == "success"


def test_errors_fail_the_run_with_one_clear_reason(sqlite_fleet: Fleet) -> None:
    fleet = sqlite_fleet
    laptop = fleet.machine("laptop")
    worker = fleet.machine("worker")
    code, _, err = laptop("runs", "submit", "show", "--repo", fleet.url, "--ref", "nope")
    assert code != 0 and err.startswith("error: ") and "no commit 'nope'" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = laptop("runs", "submit", "show", "--repo", f"file://{fleet.tmp}/none.git")
    assert code != 0 and err.startswith("error: git fetch failed") and "Traceback" not in err

    # The repository is gone by the time a worker takes the run.
    run_id, _ = submit(laptop, "show", "--repo", fleet.url)
    fleet.bare.rename(fleet.tmp / "moved.git")
    (_, finished) = work_once(worker)
    assert finished["status"] == "failed"
    assert finished["reason"].startswith("could not get the run's source: git fetch failed")
    run = status(worker, run_id)["run"]
    assert (run["status"], run["reason"]) == ("failed", finished["reason"])
    assert not (worker.sparkwing_home / "work" / run_id).exists()

    # A snapshot that went missing from the cache.
    dev = fleet.machine("dev", cwd=fleet.dev)
    (fleet.dev / "data.txt").write_text("dirty\n")
    run_id, _ = submit(dev, "show")
    key = status(dev, run_id)["run"]["source"]["key"]
    (fleet.tmp / "shared-cache" / key).unlink()
    (_, finished) = work_once(worker)
    assert finished["status"] == "failed"
    assert f"snapshot {key} is not in the cache" in finished["reason"]


def test_a_failed_runs_workspace_is_kept_on_request_and_a_dead_workers_is_cleaned(
    sqlite_fleet: Fleet,
) -> None:
    fleet = sqlite_fleet
    laptop = fleet.machine("laptop")
    worker = fleet.machine("worker")
    run_id, _ = submit(laptop, "broken", "--repo", fleet.url)
    got = work_once(worker, "--keep-failed")
    kept = [e for e in got if e["event"] == "kept"]
    workspace = worker.sparkwing_home / "work" / run_id
    assert [(e["run_id"], e["path"]) for e in kept] == [(run_id, str(workspace))]
    assert got[-1]["status"] == "failed"
    assert (workspace / "data.txt").read_text() == "first\n"
    code, out, _ = worker("worker", "--once", "--keep-failed")
    assert code == 0 and f"workspace kept at {workspace}" not in out  # nothing new claimed

    # A worker killed mid-run leaves its workspace; the next one to start removes it, and
    # the kept one stays.
    hung, _ = submit(laptop, "hang", "--repo", fleet.url)
    proc = start_worker(worker, "--lease", "1s", "-o", "json")
    pid_file = Path(worker.env["TRAVEL_PID"])
    try:
        from tests.cli.conftest import wait_for

        wait_for(lambda: pid_file.exists() and pid_file.read_text(), "the hanging job")
        left = worker.sparkwing_home / "work" / hung
        assert left.is_dir()
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    from tests.cli.conftest import process_gone, wait_for

    wait_for(lambda: process_gone(int(pid_file.read_text())), "the job to end")
    code, _, err = worker("worker", "--once", "--max-runs", "1", "--poll", "0.1s", "--lease", "1s")
    assert code == 0, err
    assert f"removed the workspace a stopped worker left: {left}" in err
    assert workspace.is_dir()


def test_labels_decide_which_worker_takes_a_run(fleet: Fleet) -> None:
    laptop = fleet.machine("laptop")
    plain = fleet.machine("plain")
    gpu = fleet.machine("gpu")
    needs_gpu, _ = submit(laptop, "show", "--repo", fleet.url, "--label", "gpu")
    by_entry, _ = submit(laptop, "gpu-show", "--repo", fleet.url)  # requires: [gpu]
    anyone, _ = submit(laptop, "show", "--repo", fleet.url)

    got = work_once(plain, "--label", "linux")
    assert [e["run_id"] for e in got if e["event"] == "finished"] == [anyone]
    for run_id in (needs_gpu, by_entry):
        assert status(laptop, run_id)["run"]["status"] == "queued"
    code, out, _ = laptop("runs", "status", by_entry)
    assert code == 0 and "waiting for  a worker with label(s) gpu" in out

    got = work_once(gpu, "--label", "gpu", "--label", "linux")
    finished = {e["run_id"]: e["status"] for e in got if e["event"] == "finished"}
    assert finished == {needs_gpu: "success", by_entry: "success"}


def test_workers_register_and_are_listed_with_labels_and_runs(fleet: Fleet) -> None:
    laptop = fleet.machine("laptop")
    worker = fleet.machine("worker")
    code, out, _ = laptop("workers", "list")
    assert code == 0 and "no workers registered" in out
    hung, _ = submit(laptop, "hang", "--repo", fleet.url)
    proc = start_worker(worker, "--label", "gpu", "--label", "arch=arm64")
    try:
        from tests.cli.conftest import wait_for

        def listed() -> list[dict[str, Any]] | None:
            result = laptop("workers", "list", "-o", "json")
            assert result.code == 0, result.stderr
            found = result.ndjson()
            return found if found and found[0]["running"] else None

        (entry,) = wait_for(listed, "the worker to report its run")
        assert entry["labels"] == ["arch=arm64", "gpu"]
        assert entry["running"] == [hung] and entry["stale"] is False
        assert entry["name"].startswith(entry["host"])
        code, out, _ = laptop("workers", "list")
        assert code == 0 and entry["name"] in out and "arch=arm64, gpu" in out and hung in out
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    # A worker that stopped cleanly leaves the list.
    assert laptop("workers", "list", "-o", "json").ndjson() == []


def test_a_label_must_be_a_plain_word(sqlite_fleet: Fleet) -> None:
    cli = sqlite_fleet.machine("laptop")
    code, _, err = cli("worker", "--label", "has space", "--once")
    assert code == 2 and "--label" in err and "letters, digits" in err
    code, _, err = cli("runs", "submit", "show", "--repo", sqlite_fleet.url, "--label", "a/b")
    assert code == 2 and "letters, digits" in err
