"""Who may do what through the controller: resolving a gate needs runs.approve and records
the token's name; a runner's token writes only the runs it created or claimed, never a
finished one; every state write is checked against the schema."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from sparkwing.controller.scopes import SCOPES
from sparkwing.surfaces.state.base import Gate
from tests.controller.harness import ALL_SCOPES, Controller, controller, empty_controller
from tests.controller.routes import operations

__all__ = ["controller", "empty_controller"]
RUN = "run-20260301-120000-abcd"
OTHER = "run-20260301-120000-efgh"
# The gate routes a runner's own token uses: opening a gate (always pending) and applying
# the plan's expiry once the deadline passed. Every other gate route resolves one.
RUNNER_GATE_ROUTES = {"gate_open", "gate_expire"}


def call(
    ctl: Controller, token: str, method: str, path: str, body: Any = None, **params: Any
) -> httpx.Response:
    return httpx.request(
        method,
        ctl.url + path,
        headers={"Authorization": f"Bearer {token}"},
        json=body,
        params=params or None,
        timeout=30,
    )


def _run(run_id: str = RUN, **fields: Any) -> dict[str, Any]:
    return {"run_id": run_id, "pipeline": "release", "status": "running", **fields}


def _create(ctl: Controller, token: str, run_id: str = RUN) -> None:
    got = call(ctl, token, "POST", "/v1/runs", _run(run_id))
    assert got.status_code == 201, got.text


def _open_gate(ctl: Controller, token: str, kind: str = "approval", node: str = "approve") -> None:
    gate = {"run_id": RUN, "node_id": node, "kind": kind, "message": "ship it?"}
    got = call(ctl, token, "POST", "/v1/gates", gate)
    assert got.status_code == 200, got.text


def _resolution_routes(ctl: Controller) -> list[tuple[str, str]]:
    """(method, path) of every route that changes a gate, runner routes aside."""
    found = []
    for op in operations(ctl.app):
        if op.endpoint is None or op.method == "GET":
            continue
        if op.endpoint.path.startswith("/v1/gates") and op.endpoint.name not in RUNNER_GATE_ROUTES:
            found.append((op.method, op.endpoint.path))
    return found


def test_runs_approve_is_its_own_scope() -> None:
    assert "runs.approve" in SCOPES
    from sparkwing.controller.scopes import allows

    assert not allows(("runs.write",), "runs.approve")
    assert allows(("admin",), "runs.approve")


def test_every_gate_route_without_runs_approve_is_403(ctl: Controller) -> None:
    runner = ctl.token(*(s for s in ALL_SCOPES if s != "runs.approve"))
    _create(ctl, runner)
    _open_gate(ctl, runner)
    _open_gate(ctl, runner, "pause", "debug")
    routes = _resolution_routes(ctl)
    assert routes, "no gate resolution route found"
    for method, template in routes:
        for node, kind, status in (
            ("approve", "approval", "approved"),
            ("debug", "pause", "resumed"),
        ):
            path = template.format(run_id=RUN, node_id=node, kind=kind)
            got = call(ctl, runner, method, path, {"status": status, "by": "boss"})
            assert got.status_code == 403, (method, template, got.text)
            assert got.json()["scope"] == "runs.approve"
    # Still pending: nothing the runner sent resolved anything.
    pending = ctl.backend.state.gates.list(run_id=RUN)
    assert sorted(g.kind for g in pending) == ["approval", "pause"]
    assert all(g.resolved_by is None for g in pending)


def test_the_approver_recorded_is_the_token_whatever_the_body_says(ctl: Controller) -> None:
    runner = ctl.token("runs.read", "runs.write")
    approver = ctl.token("runs.read", "runs.approve", name="release-manager")
    _create(ctl, runner)
    _open_gate(ctl, runner)
    _open_gate(ctl, runner, "pause", "debug")
    path = f"/v1/gates/{RUN}/approve/approval/resolve"
    got = call(ctl, approver, "POST", path, {"status": "approved", "by": "ceo", "comment": "ok"})
    assert got.status_code == 200, got.text
    assert got.json()["resolved_by"] == "release-manager"
    stored = ctl.backend.state.gates.get(RUN, "approve", "approval")
    assert stored is not None and stored.resolved_by == "release-manager"
    assert (stored.status, stored.comment) == ("approved", "ok")
    # Without a "by" at all, too.
    got = call(ctl, approver, "POST", f"/v1/gates/{RUN}/debug/pause/resolve", {"status": "aborted"})
    assert got.status_code == 200, got.text
    assert got.json()["resolved_by"] == "release-manager"


def test_a_gate_is_opened_pending_whatever_the_body_says(ctl: Controller) -> None:
    runner = ctl.token("runs.read", "runs.write")
    _create(ctl, runner)
    forged = {
        "run_id": RUN,
        "node_id": "approve",
        "kind": "approval",
        "status": "approved",
        "resolved_by": "boss",
        "resolved_at": "2026-03-01T12:00:00Z",
    }
    got = call(ctl, runner, "POST", "/v1/gates", forged)
    assert got.status_code == 200, got.text
    gate = ctl.backend.state.gates.get(RUN, "approve", "approval")
    assert gate is not None and (gate.status, gate.resolved_by) == ("pending", None)


def test_a_runner_applies_an_expiry_only_after_the_deadline(ctl: Controller) -> None:
    runner = ctl.token("runs.read", "runs.write")
    _create(ctl, runner)
    plan = {"pipeline": "release", "jobs": [{"id": "approve", "approval": {"on_expiry": "deny"}}]}
    assert call(ctl, runner, "PUT", f"/v1/runs/{RUN}/plan", plan).status_code == 204
    path = f"/v1/gates/{RUN}/approve/approval/expire"
    future = {"run_id": RUN, "node_id": "approve", "kind": "approval"}
    future["expires_at"] = "2999-01-01T00:00:00.000000Z"
    assert call(ctl, runner, "POST", "/v1/gates", future).status_code == 200
    early = call(ctl, runner, "POST", path, {"status": "denied"})
    assert early.status_code == 409 and "open until 2999" in early.json()["error"], early.text
    # The deadline passes (the gate is reopened with one in the past).
    ctl.backend.state.gates.resolve(RUN, "approve", "approval", "expired", "test", None)
    past = {**future, "expires_at": "2000-01-01T00:00:00.000000Z"}
    assert call(ctl, runner, "POST", "/v1/gates", past).status_code == 200
    wrong = call(ctl, runner, "POST", path, {"status": "approved"})
    assert wrong.status_code == 409 and "is denied" in wrong.json()["error"], wrong.text
    done = call(ctl, runner, "POST", path, {"status": "denied"})
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["resolved_by"]) == (
        "denied",
        "sparkwing (timed out)",
    )


def test_a_write_token_cannot_touch_another_tokens_run(ctl: Controller) -> None:
    owner = ctl.token()
    intruder = ctl.token()
    admin = ctl.token("admin")
    _create(ctl, owner)
    records = {"records": [["2026-03-01T12:00:00Z", "stdout", "forged"]]}
    writes: list[tuple[str, str, Any]] = [
        ("PATCH", f"/v1/runs/{RUN}", {"fields": {"status": "failed"}}),
        ("PUT", f"/v1/runs/{RUN}/plan", {"pipeline": "release", "jobs": []}),
        ("POST", "/v1/nodes", {"nodes": [{"run_id": RUN, "node_id": "build"}]}),
        ("POST", f"/v1/runs/{RUN}/events", {"events": [{"kind": "x", "ts": "t"}]}),
        ("POST", f"/v1/runs/{RUN}/heartbeat", {"at": "2026-03-01T12:00:00Z"}),
        ("POST", "/v1/gates", {"run_id": RUN, "node_id": "approve", "kind": "approval"}),
        ("POST", f"/v1/logs/{RUN}/build", records),
        ("DELETE", f"/v1/logs/{RUN}", None),
    ]
    assert call(ctl, owner, "POST", f"/v1/logs/{RUN}/build", records).status_code == 204
    for method, path, body in writes:
        got = call(ctl, intruder, method, path, body)
        assert got.status_code == 403, (method, path, got.text)
        assert "did not create or claim run" in got.json()["error"]
    run = ctl.backend.state.get_run(RUN)
    assert run is not None and run.status == "running"
    assert ctl.backend.state.list_nodes(RUN) == []
    assert [r.msg for r in ctl.backend.logs.read(RUN, "build")] == ["forged"]
    # The owner and an admin may (the plan first: a failed run's plan is final).
    for token in (owner, admin):
        for method, path, body in (writes[1], writes[0]):
            got = call(ctl, token, method, path, body)
            assert got.status_code == 204, (method, path, got.text)


def test_a_claimed_run_is_the_workers_to_write(ctl: Controller) -> None:
    submitter = ctl.token()
    worker = ctl.token()
    bystander = ctl.token()
    run = _run(status="queued")
    got = call(ctl, submitter, "POST", "/v1/queue", {"run": run, "spec": {}})
    assert got.status_code == 201, got.text
    claim = call(ctl, worker, "POST", "/v1/queue/claim", {"worker": "w1"})
    assert claim.json()["claim"]["run"]["run_id"] == RUN
    assert (
        call(ctl, worker, "PATCH", f"/v1/runs/{RUN}", {"fields": {"status": "running"}}).status_code
        == 204
    )
    renew = call(ctl, bystander, "POST", f"/v1/queue/{RUN}/renew", {"worker": "w1"})
    assert renew.status_code == 403, renew.text
    cancel = call(ctl, bystander, "POST", f"/v1/queue/{RUN}/cancel", {"reason": "x", "at": "t"})
    assert cancel.status_code == 403, cancel.text


def test_a_finished_run_cannot_be_changed(ctl: Controller) -> None:
    owner = ctl.token()
    _create(ctl, owner)
    done = {"fields": {"status": "success", "finished_at": "2026-03-01T12:01:00Z"}}
    assert call(ctl, owner, "PATCH", f"/v1/runs/{RUN}", done).status_code == 204
    for method, path, body in (
        ("PATCH", f"/v1/runs/{RUN}", {"fields": {"status": "running"}}),
        ("PATCH", f"/v1/runs/{RUN}", {"fields": {"reason": "rewritten"}}),
        ("PUT", f"/v1/runs/{RUN}/plan", {"pipeline": "release", "jobs": []}),
        ("POST", "/v1/nodes", {"nodes": [{"run_id": RUN, "node_id": "build"}]}),
        ("POST", "/v1/gates", {"run_id": RUN, "node_id": "approve", "kind": "approval"}),
    ):
        got = call(ctl, owner, method, path, body)
        assert got.status_code == 409, (method, path, got.text)
        assert f"run {RUN} has finished (success)" in got.json()["error"]
    run = ctl.backend.state.get_run(RUN)
    assert run is not None and (run.status, run.reason) == ("success", None)
    # An admin may still repair it.
    admin = ctl.token("admin")
    fix = {"fields": {"reason": "repaired"}}
    assert call(ctl, admin, "PATCH", f"/v1/runs/{RUN}", fix).status_code == 204


@pytest.mark.parametrize(
    ("method", "path", "body", "says"),
    [
        ("PATCH", f"/v1/runs/{RUN}", {"fields": {"status": "hacked"}}, "status must be one of"),
        ("PUT", f"/v1/runs/{RUN}/plan", {"jobs": "garbage"}, "jobs must be array"),
        ("PUT", f"/v1/runs/{RUN}/plan", {"jobs": [{"needs": []}]}, "id is required"),
        ("PUT", f"/v1/runs/{RUN}/plan", {"pipeline": "p", "jobs": [{"id": 1}]}, "id must be"),
        (
            "PUT",
            f"/v1/runs/{RUN}/plan",
            {"pipeline": "p", "jobs": [{"id": "a", "needs": "b"}]},
            "needs must be array",
        ),
        (
            "POST",
            "/v1/nodes",
            {"nodes": [{"run_id": RUN, "node_id": "b", "status": "odd"}]},
            "status must be one of",
        ),
        ("PATCH", f"/v1/runs/{RUN}", {"fields": {"reason": "x" * 300_000}}, "longer than"),
        ("POST", "/v1/runs", _run(OTHER, status="weird"), "status must be one of"),
    ],
)
def test_garbage_state_writes_are_400(
    ctl: Controller, method: str, path: str, body: Any, says: str
) -> None:
    owner = ctl.token()
    _create(ctl, owner)
    got = call(ctl, owner, method, path, body)
    assert got.status_code == 400, got.text
    assert says in got.json()["error"], got.text
    run = ctl.backend.state.get_run(RUN)
    assert run is not None and run.status == "running" and run.reason is None
    assert ctl.backend.state.get_plan(RUN) is None
    assert ctl.backend.state.list_nodes(RUN) == []


def test_gate_records_round_trip_as_gates() -> None:
    # The schema the controller checks a gate against accepts what the engine opens.
    from sparkwing.controller import schemas as s

    s.validate(json.loads(json.dumps(Gate(RUN, "approve", "approval").to_dict())), s.GATE)
