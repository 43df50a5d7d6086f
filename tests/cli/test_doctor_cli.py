"""``sparkwing doctor`` checks (the dead-run repair is in test_live_runs_cli.py)."""

from __future__ import annotations

import json
import socket

from tests.cli.conftest import History
from tests.conftest import Cli, ProjectFiles


def _checks(out: str) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for check in json.loads(out)["checks"]:
        found.setdefault(check["check"], []).append(check)
    return found


def test_healthy_setup(history: History) -> None:
    code, out, err = history.cli("doctor", "-o", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["ok"] is True and doc["fixed"] == []
    checks = _checks(out)
    assert {"version", "project", "profile", "state", "cache", "logs", "secrets", "runs"} <= set(
        checks
    )
    assert all(c["status"] == "ok" for group in checks.values() for c in group)
    assert "(integrity ok)" in checks["state"][0]["detail"]
    assert checks["profile"][0]["detail"] == "local (built-in)"

    code, out, _ = history.cli("doctor")
    assert code == 0
    assert out.splitlines()[0].startswith("ok    version  sparkwing ")


def test_warns_on_readable_secrets_and_fails_on_bad_config(cli: Cli, project: ProjectFiles) -> None:
    secrets = cli.write_secrets({"TOKEN": "t"})
    secrets.chmod(0o644)
    project.yaml("pipelines: {oops: 1}\n")
    code, out, _ = cli("doctor", "-o", "json")
    assert code == 1
    checks = _checks(out)
    assert checks["project"][0]["status"] == "fail"
    assert "sparkwing.yaml" in checks["project"][0]["detail"]
    # The other checks still ran, with the built-in profile.
    assert checks["state"][0]["status"] == "ok"
    warned = [c for c in checks["secrets"] if c["status"] == "warn"]
    assert warned and f"chmod 600 {secrets}" in warned[0]["detail"]

    human = cli("doctor")
    assert human.code == 1
    assert any(line.startswith("FAIL  project") for line in human.stdout.splitlines())


def test_stale_heartbeat_on_another_host(history: History) -> None:
    """A run recorded as running on another machine: dead once its heartbeat is older than
    --stale-after, left alone before."""
    from sparkwing.surfaces.state.base import RunRecord
    from sparkwing.surfaces.state.sqlite import SqliteState

    run_id = "run-20200101-000000-away"
    state = SqliteState(history.cli.sparkwing_home / "state.db")
    try:
        state.create_run(
            RunRecord(
                run_id=run_id,
                pipeline="ok",
                status="running",
                created_at="2020-01-01T00:00:00.000000Z",
                started_at="2020-01-01T00:00:00.000000Z",
                heartbeat_at="2020-01-01T00:00:05.000000Z",
                host="elsewhere-" + socket.gethostname(),
                pid=4242,
            )
        )
    finally:
        state.close()
    here = socket.gethostname()
    cancel = history.cli("runs", "cancel", run_id)
    assert cancel.code == 2
    assert cancel.stderr == (
        f"error: run {run_id} is running on host elsewhere-{here} (pid 4242), not on this "
        f"host ({here}); cancel it there\n"
    )
    assert (
        json.loads(history.cli("doctor", "--stale-after", "100000d", "-o", "json").stdout)["fixed"]
        == []
    )
    doc = json.loads(history.cli("doctor", "-o", "json").stdout)
    assert [f["run_id"] for f in doc["fixed"]] == [run_id]
    assert doc["fixed"][0]["reason"].startswith(
        "no heartbeat since 2020-01-01T00:00:05.000000Z from runner process 4242 on elsewhere-"
    )
    status = history.cli("runs", "status", run_id, "-o", "json").json()["run"]
    assert status["status"] == "failed" and status["reason"] == doc["fixed"][0]["reason"]
    bad = history.cli("doctor", "--stale-after", "soon")
    assert bad.code == 2 and bad.stderr.startswith("error: --stale-after")
