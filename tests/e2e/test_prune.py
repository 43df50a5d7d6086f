"""``sparkwing runs prune`` end to end on every state backend that keeps history (sqlite,
postgres, S3 on moto, a controller): it removes the runs the policy names with their logs,
memo entries and the artifacts no kept run uses, keeps what --keep-last says and every run
still in progress, and --dry-run removes nothing."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sparkwing.surfaces.cache.base import BLOB_PREFIX, MANIFEST_PREFIX, MEMO_PREFIX, Cache
from sparkwing.surfaces.logs.base import LogStore
from sparkwing.surfaces.open import open_cache, open_logs
from sparkwing.surfaces.spec import SurfaceSpec
from tests.conftest import Cli, ProjectFiles, sparkwing_command
from tests.controller.harness import Controller, controller, local_profile

__all__ = ["controller"]

PIPELINES = """
import os
import time
from pathlib import Path

import sparkwing as sw


def make(ctx):
    Path("out").mkdir(exist_ok=True)
    Path("out/shared.txt").write_text("the same in every run\\n")
    Path("out/uniq.txt").write_text(f"only in run {os.environ['UNIQ']}\\n")
    print(f"made {os.environ['UNIQ']}")


def use(ctx):
    print("using " + Path("out/uniq.txt").read_text().strip())


@sw.pipeline("art")
def art(plan, args, rc):
    made = plan.job("make", make).outputs("out/**")
    plan.job("use", use).consumes(made)
    plan.job("memo", lambda ctx: {"uniq": os.environ["UNIQ"]}).memoize(
        lambda ctx: sw.key("memo", os.environ["UNIQ"])
    )


def hold(ctx):
    release = Path(os.environ["RELEASE"])
    while not release.exists():
        time.sleep(0.05)


@sw.pipeline("slow")
def slow(plan, args, rc):
    plan.job("hold", hold)
"""


@dataclass
class Place:
    """Where one backend's runs go: the project file naming it, the environment the CLI
    needs, and the cache and logs the test inspects."""

    yaml: str
    env: dict[str, str] = field(default_factory=dict)
    cache: Callable[[], Cache] | None = None
    logs: Callable[[], LogStore] | None = None


def _local(base: Path, state: str) -> Place:
    cache = SurfaceSpec(type="filesystem", path=str(base / "cache"))
    logs = SurfaceSpec(type="filesystem", path=str(base / "logs"))
    return Place(
        yaml=(
            "profiles:\n  here:\n"
            f"    state: {state}\n"
            f'    cache: {{type: filesystem, path: "{base}/cache"}}\n'
            f'    logs: {{type: filesystem, path: "{base}/logs"}}\n'
            "defaults:\n  profile: here\n"
        ),
        cache=lambda: open_cache(cache),
        logs=lambda: open_logs(logs),
    )


@pytest.fixture(params=["sqlite", "postgres", "s3", "controller"])
def place(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Place]:
    kind = request.param
    if kind == "sqlite":
        yield _local(tmp_path / "data", f'{{type: sqlite, path: "{tmp_path}/data/state.db"}}')
    elif kind == "postgres":
        from tests.pgutil import fresh_database

        with fresh_database("prune") as url:
            found = _local(tmp_path / "data", '{type: postgres, url_source: "env:PRUNE_PG"}')
            found.env["PRUNE_PG"] = url
            yield found
    elif kind == "s3":
        from tests.objectstores import create_bucket, emulator_env, new_bucket_name

        env = emulator_env("s3")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        bucket = new_bucket_name()
        create_bucket("s3", bucket)
        specs = {
            s: SurfaceSpec(type="s3", bucket=bucket, prefix=f"team/{s}") for s in ("cache", "logs")
        }
        lines = "".join(
            f'    {s}: {{type: s3, bucket: "{bucket}", prefix: "team/{s}"}}\n'
            for s in ("state", "cache", "logs")
        )
        yield Place(
            yaml=f"profiles:\n  shared:\n{lines}defaults:\n  profile: shared\n",
            env=env,
            cache=lambda: open_cache(specs["cache"]),
            logs=lambda: open_logs(specs["logs"]),
        )
    else:
        ctl: Controller = request.getfixturevalue("controller")
        ctl.reset(local_profile(tmp_path / "controller"))
        scopes = ("runs.read", "runs.write", "runs.delete", "logs.read", "logs.write")
        token = ctl.token(*scopes, "cache.read", "cache.write")
        yield Place(
            yaml=(
                "profiles:\n  remote:\n"
                f"    controller: {{url: '{ctl.url}', token_env: PRUNE_TOKEN}}\n"
                "defaults:\n  profile: remote\n"
            ),
            env={"PRUNE_TOKEN": token, "RUNNER_TOKEN": ctl.token("runs.read", "runs.write")},
            cache=lambda: ctl.backend.cache,
            logs=lambda: ctl.backend.logs,
        )


@pytest.fixture
def sw(project: ProjectFiles, cli: Cli, place: Place) -> Cli:
    project.write("pipelines.py", PIPELINES)
    project.yaml(place.yaml)
    cli.env.update(place.env)
    return cli


def _ok(result: Any) -> Any:
    assert result.code == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip().startswith("{") else None


def _run(sw: Cli, uniq: str) -> str:
    doc = _ok(sw("run", "art", "-o", "json", env={"UNIQ": uniq}))
    run_id = str(doc["run"]["run_id"])
    # Run ids order runs to the second: the next run starts in a later second.
    stamp = run_id[4:19]
    while time.strftime("%Y%m%d-%H%M%S", time.gmtime()) <= stamp:
        time.sleep(0.05)
    return run_id


def _run_ids(sw: Cli) -> list[str]:
    result = sw("runs", "list", "--limit", "100", "-o", "json")
    assert result.code == 0, result.stderr
    return [json.loads(line)["run_id"] for line in result.stdout.splitlines() if line.strip()]


def _cache_keys(cache: Cache) -> dict[str, set[str]]:
    return {
        prefix: {info.key for info in cache.list(prefix)}
        for prefix in (MANIFEST_PREFIX, BLOB_PREFIX, MEMO_PREFIX)
    }


def _manifest_of(sw: Cli, run_id: str) -> str:
    doc = _ok(sw("runs", "get", "--run", run_id, "-o", "json"))
    (digest,) = [n["artifacts"] for n in doc["nodes"] if n["node_id"] == "make"]
    return str(digest)


def test_prune_keeps_last_removes_the_rest_with_logs_memo_and_unshared_artifacts(
    sw: Cli, place: Place
) -> None:
    assert place.cache is not None and place.logs is not None
    one, two, three = _run(sw, "one"), _run(sw, "two"), _run(sw, "three")
    manifests = {r: _manifest_of(sw, r) for r in (one, two, three)}
    assert len(set(manifests.values())) == 3
    cache, logs = place.cache(), place.logs()
    before = _cache_keys(cache)
    # Two files per run, one of them the same bytes every time: 4 blobs, 3 memo entries.
    assert len(before[BLOB_PREFIX]) == 4 and len(before[MEMO_PREFIX]) == 3
    assert logs.nodes(one) == ["make", "use"]

    dry = _ok(sw("runs", "prune", "--keep-last", "1", "--dry-run", "-o", "json"))
    assert dry["dry_run"] is True
    assert sorted(r["run_id"] for r in dry["runs"]) == sorted([one, two])
    assert dry["totals"] == {
        "runs": 2,
        "kept": 1,
        "memo_entries": 2,
        "manifests": 2,
        "blobs": 2,
        "artifact_bytes": dry["totals"]["artifact_bytes"],
    }
    assert _run_ids(sw) == [three, two, one]
    assert _cache_keys(cache) == before
    assert logs.nodes(one) == ["make", "use"]

    text = sw("runs", "prune", "--keep-last", "1")
    assert text.code == 0, text.stderr
    assert one in text.stdout and two in text.stdout and three not in text.stdout
    assert "pruned 2 run(s)" in text.stdout and "kept 1" in text.stdout
    assert _run_ids(sw) == [three]
    after = _cache_keys(cache)
    assert after[MANIFEST_PREFIX] == {MANIFEST_PREFIX + manifests[three]}
    # The shared file's blob stays (run three's manifest names it), the others' go.
    assert len(after[BLOB_PREFIX]) == 2 and after[BLOB_PREFIX] < before[BLOB_PREFIX]
    assert len(after[MEMO_PREFIX]) == 1
    (memo_key,) = after[MEMO_PREFIX]
    memo_doc = json.loads(cache.get(memo_key) or b"{}")
    assert memo_doc["run_id"] == three
    for gone in (one, two):
        assert logs.nodes(gone) == []
        missing = sw("runs", "get", "--run", gone)
        assert missing.code != 0 and gone in missing.stderr
    assert logs.nodes(three) == ["make", "use"]
    # What is left still works: the kept run's artifacts restore in a memoized rerun.
    again = _ok(sw("run", "art", "-o", "json", env={"UNIQ": "three"}))
    assert again["run"]["status"] == "success"
    # Nothing is left to finish.
    assert not list((sw.sparkwing_home / "prune").glob("*.json"))


def test_prune_never_removes_a_run_in_progress(sw: Cli, place: Place, tmp_path: Path) -> None:
    done = _run(sw, "one")
    release = tmp_path / "release"
    env = {**sw.env, "RELEASE": str(release)}
    proc = subprocess.Popen(
        [*sparkwing_command(), "run", "slow", "-o", "json"],
        cwd=sw.cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        live: list[str] = []
        while not live and time.monotonic() < deadline:
            listed = sw("runs", "list", "--status", "running", "-o", "json")
            live = [json.loads(x)["run_id"] for x in listed.stdout.splitlines() if x.strip()]
            time.sleep(0.1)
        assert live, "the slow run never showed as running"
        pruned = _ok(sw("runs", "prune", "--older-than", "0s", "--keep-last", "0", "-o", "json"))
        assert [r["run_id"] for r in pruned["runs"]] == [done]
        assert _run_ids(sw) == live
    finally:
        release.touch()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["run"]["status"] == "success"
    # Finished now, it goes at the next prune.
    assert _ok(sw("runs", "prune", "--older-than", "0s", "-o", "json"))["totals"]["runs"] == 1
    assert _run_ids(sw) == []


def test_prune_flags_are_checked(project: ProjectFiles, cli: Cli) -> None:
    project.write("pipelines.py", PIPELINES)
    for args, message in (
        ((), "give --older-than AGE and/or --keep-last N"),
        (("--older-than", "soon"), "--older-than"),
        (("--keep-last", "-1"), "--keep-last"),
    ):
        result = cli("runs", "prune", *args)
        assert result.code == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr


def test_a_runner_token_cannot_prune_through_the_controller(
    project: ProjectFiles, cli: Cli, controller: Controller, tmp_path: Path
) -> None:
    controller.reset(local_profile(tmp_path / "controller"))
    project.write("pipelines.py", PIPELINES)
    project.yaml(
        "profiles:\n  remote:\n"
        f"    controller: {{url: '{controller.url}', token_env: PRUNE_TOKEN}}\n"
        "defaults:\n  profile: remote\n"
    )
    # Every scope a runner has, and reading and writing logs and cache: still not runs.delete.
    scopes = ("runs.read", "runs.write", "logs.read", "logs.write", "cache.read", "cache.write")
    cli.env["PRUNE_TOKEN"] = controller.token(*scopes)
    first = _run(cli, "one")
    _run(cli, "two")
    refused = cli("runs", "prune", "--keep-last", "1")
    assert refused.code == 2, refused.stderr
    assert "runs.delete" in refused.stderr and "Traceback" not in refused.stderr
    assert _run_ids(cli)[-1] == first and len(_run_ids(cli)) == 2
    assert controller.backend.logs.nodes(first) == ["make", "use"]
    # Refused before anything went: nothing is left for a later prune to carry out.
    assert not list((cli.sparkwing_home / "prune").glob("*.json"))
