"""Webhooks on a real controller: a commit pushed to a bare repository and a GitHub-style
delivery signed with the repository's secret queue exactly the pipelines whose on: filters
match, with that commit as their git source; and every way to get it wrong queues nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from sparkwing.controller.repos import RepoStore
from sparkwing.surfaces.state.base import RunRecord
from tests.controller.harness import Controller, controller, empty_controller
from tests.triggers.gitrepo import ZERO, Upstream

__all__ = ["controller", "empty_controller"]

SECRET = "s3cr3t-hook-" + uuid.uuid4().hex
PROJECT = """
pipelines:
  - name: ci
    entrypoint: CI
    on:
      push: { branches: [main, "release/*"], paths: ["src/**", "!src/**/*.md"] }
      pull_request: { branches: [main] }
  - name: docs
    entrypoint: Docs
    on:
      push: { branches: [main], paths: ["docs/**"] }
  - name: release
    entrypoint: Release
    on:
      push: { tags: ["v*"] }
  - name: nightly
    entrypoint: Nightly
    on:
      schedule: [{ cron: "0 3 * * *" }]
  - name: manual
    entrypoint: Manual
"""


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream(tmp_path / "git")
    repo.commit({".sparkwing/sparkwing.yaml": PROJECT, "src/app.py": "v = 1\n"}, "first")
    repo.push()
    return repo


@pytest.fixture
def hooks(
    ctl: Controller, upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Hooks:
    monkeypatch.setenv("SPARKWING_HOME", str(tmp_path / "controller-home"))
    monkeypatch.setenv("APP_HOOK_SECRET", SECRET)
    RepoStore(ctl.backend.tokens.db).add("app", upstream.url, "main", "APP_HOOK_SECRET")
    return Hooks(ctl, upstream)


class Hooks:
    def __init__(self, ctl: Controller, upstream: Upstream) -> None:
        self.ctl = ctl
        self.upstream = upstream
        self.http = httpx.Client(base_url=ctl.url, timeout=60)

    def github(
        self,
        doc: Any,
        event: str = "push",
        delivery: str | None = None,
        secret: str = SECRET,
        repo: str = "app",
        signature: str | None = None,
        body: bytes | None = None,
    ) -> httpx.Response:
        raw = body if body is not None else json.dumps(doc).encode()
        headers = {"X-GitHub-Event": event, "Content-Type": "application/json"}
        headers["X-GitHub-Delivery"] = delivery or uuid.uuid4().hex
        headers["X-Hub-Signature-256"] = signature or sign(secret, raw)
        return self.http.post(f"/v1/hooks/github/{repo}", content=raw, headers=headers)

    def runs(self) -> list[RunRecord]:
        return self.ctl.backend.state.list_runs(limit=500).runs

    def queued(self) -> dict[str, tuple[RunRecord, dict[str, Any]]]:
        """Every queued run by pipeline, with its spec (claimed to read it)."""
        queue = self.ctl.backend.state.queue
        assert queue is not None
        found = {}
        while (claim := queue.claim("test", 60)) is not None:
            assert claim.run.pipeline not in found
            found[claim.run.pipeline] = (claim.run, claim.spec)
        return found


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def push_doc(ref: str, before: str, after: str, **extra: Any) -> dict[str, Any]:
    return {"ref": ref, "before": before, "after": after, "deleted": False, **extra}


def test_a_signed_push_queues_exactly_the_matching_pipelines(hooks: Hooks) -> None:
    up = hooks.upstream
    before = up.commit({"docs/guide.md": "hello\n"}, "docs")
    after = up.commit({"src/app.py": "v = 2\n", "src/NOTES.md": "x\n"}, "code")
    up.push()
    answer = hooks.github(push_doc("refs/heads/main", before, after), delivery="d-1")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["event"] == "push" and body["duplicate"] is False
    assert [q["pipeline"] for q in body["queued"]] == ["ci"]  # docs/ did not change here

    queued = hooks.queued()
    assert list(queued) == ["ci"]
    run, spec = queued["ci"]
    source = {"kind": "git", "url": up.url, "ref": "refs/heads/main", "sha": after}
    assert spec == {
        "version": 2,
        "pipeline": "ci",
        "args": [],
        "labels": [],
        "profile": None,
        "source": source,
    }
    assert run.run_id == body["queued"][0]["run_id"]
    assert (run.status, run.trigger, run.source) == ("queued", "push", source)
    assert run.git == {"sha": after, "branch": "main"}
    assert run.extra["branch"] == "main" and run.extra["sha"] == after
    assert run.extra["delivery"] == "d-1" and run.extra["before"] == before
    assert (run.extra["repo"], run.extra["event"], run.extra["trigger"]) == ("app", "push", "push")


def test_paths_across_several_commits_and_a_docs_only_push(hooks: Hooks) -> None:
    up = hooks.upstream
    before = up.commit({"README.md": "r\n"}, "readme")
    up.commit({"docs/a.md": "a\n"}, "docs")
    after = up.commit({"src/GUIDE.md": "only a negated path\n"}, "more docs")
    up.push()
    answer = hooks.github(push_doc("refs/heads/main", before, after))
    assert [q["pipeline"] for q in answer.json()["queued"]] == ["docs"]


def test_a_new_branch_passes_paths_filters(hooks: Hooks) -> None:
    up = hooks.upstream
    up.checkout("release/1.0", new=True)
    sha = up.commit({"notes.txt": "n\n"}, "release")
    up.push("release/1.0")
    answer = hooks.github(push_doc("refs/heads/release/1.0", ZERO, sha, created=True))
    assert [q["pipeline"] for q in answer.json()["queued"]] == ["ci"]


def test_a_tag_push_queues_its_pipeline_at_the_tagged_commit(hooks: Hooks) -> None:
    up = hooks.upstream
    commit = up.commit({"src/app.py": "v = 3\n"}, "release me")
    up.push()
    tag_object = up.tag("v1.0")
    assert tag_object != commit
    answer = hooks.github(push_doc("refs/tags/v1.0", ZERO, tag_object, base_ref="refs/heads/main"))
    assert [q["pipeline"] for q in answer.json()["queued"]] == ["release"]
    run, spec = hooks.queued()["release"]
    assert spec["source"] == {"kind": "git", "url": up.url, "ref": "refs/tags/v1.0", "sha": commit}
    assert run.extra["tag"] == "v1.0" and "branch" not in run.extra


def test_a_deleted_branch_and_a_ref_that_is_no_branch_queue_nothing(hooks: Hooks) -> None:
    up = hooks.upstream
    sha = up.commit({"src/app.py": "v = 4\n"})
    up.push("feature")
    up.delete_branch("feature")
    deleted = {"ref": "refs/heads/feature", "before": sha, "after": ZERO, "deleted": True}
    assert hooks.github(deleted).json()["queued"] == []
    up.push()
    for ref in ("refs/notes/commits", "main", "refs/pull/1/merge", "refs/tags"):
        answer = hooks.github(push_doc(ref, ZERO, sha))
        assert answer.status_code == 200 and answer.json()["queued"] == [], ref
    # Names git itself refuses (or that a command line would take for an option): 400.
    for ref in ("refs/heads/", "-x", "refs/heads/a..b", "refs/heads/a b", "refs/heads/x~1"):
        assert hooks.github(push_doc(ref, ZERO, sha)).status_code == 400, ref
    assert hooks.runs() == []


def test_a_pull_request_queues_at_its_head(hooks: Hooks) -> None:
    up = hooks.upstream
    up.checkout("feature", new=True)
    head = up.commit({"src/feature.py": "f = 1\n"}, "feature")
    up.push("feature")
    doc = {
        "action": "opened",
        "number": 7,
        "pull_request": {
            "base": {"ref": "main", "sha": "1" * 40},
            "head": {"ref": "feature", "sha": head},
        },
    }
    answer = hooks.github(doc, event="pull_request")
    assert [q["pipeline"] for q in answer.json()["queued"]] == ["ci"]
    run, spec = hooks.queued()["ci"]
    assert spec["source"] == {"kind": "git", "url": up.url, "ref": "refs/pull/7/head", "sha": head}
    assert run.trigger == "pull_request"
    assert (run.extra["pull_request"], run.extra["base"], run.extra["branch"]) == (
        7,
        "main",
        "feature",
    )
    closed = {**doc, "action": "closed"}
    assert hooks.github(closed, event="pull_request").json()["queued"] == []
    into_dev = {**doc, "pull_request": {**doc["pull_request"], "base": {"ref": "dev"}}}
    assert hooks.github(into_dev, event="pull_request").json()["queued"] == []


def _changed(up: Upstream) -> dict[str, Any]:
    before = up.commit({"README.md": "x\n"})
    after = up.commit({"src/app.py": "v = 9\n"})
    up.push()
    return push_doc("refs/heads/main", before, after)


def test_a_bad_signature_is_401_and_queues_nothing(hooks: Hooks) -> None:
    doc = _changed(hooks.upstream)
    raw = json.dumps(doc).encode()
    good = sign(SECRET, raw)
    for signature in (
        sign("not-the-secret", raw),
        sign(SECRET, raw + b" "),  # signed another body
        good.replace("sha256=", "sha1="),
        good.removeprefix("sha256="),
        "sha256=",
        "sha256=" + "0" * 64,
        good[:-2],
        "sha256=not-hex-at-all",
        good.upper(),
    ):
        answer = hooks.github(doc, delivery="same-id", signature=signature)
        assert answer.status_code == 401, (signature, answer.text)
        assert answer.json()["type"] == "Unauthorized"
        assert SECRET not in answer.text
    missing = hooks.http.post(
        "/v1/hooks/github/app",
        content=raw,
        headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "same-id"},
    )
    assert missing.status_code == 401 and "X-Hub-Signature-256" in missing.json()["error"]
    assert hooks.runs() == []
    # Refused deliveries were not recorded: the genuine one with that id still queues.
    answer = hooks.github(doc, delivery="same-id")
    assert [q["pipeline"] for q in answer.json()["queued"]] == ["ci"]


def test_the_same_delivery_twice_queues_once(hooks: Hooks) -> None:
    doc = _changed(hooks.upstream)
    first = hooks.github(doc, delivery="redelivered")
    second = hooks.github(doc, delivery="redelivered")
    assert len(first.json()["queued"]) == 1
    assert second.status_code == 200
    assert second.json() == {"event": "push", "queued": [], "duplicate": True}
    assert len(hooks.runs()) == 1
    # A new delivery (GitHub gives each its own id) of the same push queues again.
    assert len(hooks.github(doc, delivery="another").json()["queued"]) == 1
    assert len(hooks.runs()) == 2


def test_concurrent_redeliveries_queue_once(hooks: Hooks) -> None:
    doc = _changed(hooks.upstream)
    start = threading.Barrier(4)
    answers: list[dict[str, Any]] = []

    def deliver() -> None:
        start.wait()
        answers.append(hooks.github(doc, delivery="racing").json())

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.get("duplicate") for a in answers) == [False, True, True, True]
    assert len(hooks.runs()) == 1


def test_ping_is_answered_only_when_signed(hooks: Hooks) -> None:
    ping = {"zen": "Keep it logically awesome.", "hook_id": 1}
    answer = hooks.github(ping, event="ping")
    assert answer.status_code == 200 and answer.json()["event"] == "ping"
    assert hooks.github(ping, event="ping", secret="wrong").status_code == 401
    other = hooks.github({"action": "created"}, event="issue_comment")
    assert other.status_code == 200 and other.json()["ignored"] is True
    assert hooks.runs() == []


def test_unknown_and_hostile_repository_names(hooks: Hooks) -> None:
    doc = _changed(hooks.upstream)
    assert hooks.github(doc, repo="nope").status_code == 404
    for name in ("..", "%2e%2e", "..%2Fapp", "app%2F..%2Fapp", "a%00b", "-x", "a b", "x" * 101):
        answer = hooks.github(doc, repo=name)
        assert answer.status_code in (400, 404), (name, answer.text)
    traversal = hooks.http.post("/v1/hooks/github/../../v1/runs", content=b"{}")
    assert traversal.status_code in (400, 404, 405)
    assert hooks.runs() == []


def test_bodies_that_are_too_big_or_not_the_documented_shape(hooks: Hooks) -> None:
    doc = _changed(hooks.upstream)
    huge = b'{"ref": "refs/heads/main", "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    assert hooks.github(None, body=huge).status_code == 413
    for body in (b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"", b"[" * 100_000):
        answer = hooks.github(None, body=body)
        assert answer.status_code == 400, (body[:20], answer.text)
    for bad in (
        {**doc, "after": "not-a-sha"},
        {**doc, "after": doc["after"][:12]},
        {**doc, "ref": 5},
        {k: v for k, v in doc.items() if k != "ref"},
    ):
        assert hooks.github(bad).status_code == 400, bad
    missing_commit = {**doc, "after": "f" * 40}
    answer = hooks.github(missing_commit)
    assert answer.status_code == 422 and "no commit" in answer.json()["error"], answer.text
    assert hooks.runs() == []


def test_an_invalid_project_file_at_the_commit_is_422(hooks: Hooks) -> None:
    up = hooks.upstream
    before = up.commit({"src/app.py": "v = 5\n"})
    bad = "pipelines:\n  - name: ci\n    entrypoint: CI\n    on: {push: {branch: [main]}}\n"
    after = up.commit({".sparkwing/sparkwing.yaml": bad})
    up.push()
    answer = hooks.github(push_doc("refs/heads/main", before, after), delivery="bad-config")
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert f"app@{after[:12]}/.sparkwing/sparkwing.yaml:4" in error and '"branch"' in error
    assert hooks.runs() == []


def test_a_commit_without_a_project_file_queues_nothing(hooks: Hooks) -> None:
    up = hooks.upstream
    up.checkout("bare", new=True)
    up.commit({"x.txt": "x\n"})
    (up.work / ".sparkwing" / "sparkwing.yaml").unlink()
    from tests.triggers.gitrepo import git

    git(up.work, "commit", "-qam", "no project")
    after = git(up.work, "rev-parse", "HEAD")
    up.push("main")
    answer = hooks.github(push_doc("refs/heads/main", ZERO, after))
    assert answer.status_code == 200 and answer.json()["queued"] == []


def test_gitlab_token_push_and_merge_request(hooks: Hooks) -> None:
    doc = _changed(hooks.upstream)
    raw = json.dumps({**doc, "object_kind": "push", "checkout_sha": doc["after"]}).encode()

    def post(token: str | None, event: str, body: bytes, uuid_: str) -> httpx.Response:
        headers = {"X-Gitlab-Event": event, "X-Gitlab-Event-UUID": uuid_}
        if token is not None:
            headers["X-Gitlab-Token"] = token
        return hooks.http.post(
            "/v1/hooks/gitlab/app", content=raw if body is None else body, headers=headers
        )

    assert post(None, "Push Hook", raw, "g1").status_code == 401
    assert post("wrong", "Push Hook", raw, "g1").status_code == 401
    assert post(SECRET + "x", "Push Hook", raw, "g1").status_code == 401
    assert hooks.runs() == []
    answer = post(SECRET, "Push Hook", raw, "g1")
    assert [q["pipeline"] for q in answer.json()["queued"]] == ["ci"]
    assert post(SECRET, "Push Hook", raw, "g1").json()["duplicate"] is True
    mr = {
        "object_kind": "merge_request",
        "object_attributes": {
            "iid": 3,
            "action": "open",
            "target_branch": "main",
            "source_branch": "main",
            "last_commit": {"id": doc["after"]},
        },
    }
    answer = post(SECRET, "Merge Request Hook", json.dumps(mr).encode(), "g2")
    assert [q["pipeline"] for q in answer.json()["queued"]] == ["ci"]
    assert sorted(r.trigger for r in hooks.runs()) == ["pull_request", "push"]
    wrong_kind = post(SECRET, "Note Hook", b'{"object_kind": "note"}', "g3")
    assert wrong_kind.status_code == 200 and wrong_kind.json()["ignored"] is True
    assert len(hooks.runs()) == 2


def test_generic_hook_needs_runs_trigger(hooks: Hooks) -> None:
    doc = _changed(hooks.upstream)
    path = "/v1/hooks/generic/app"
    body = {"branch": "main", "before": doc["before"], "delivery": "ci-42"}
    assert hooks.http.post(path, json=body).status_code == 401
    reader = hooks.ctl.token("runs.read", "runs.write")
    answer = hooks.http.post(path, json=body, headers={"Authorization": f"Bearer {reader}"})
    assert answer.status_code == 403
    trigger = hooks.ctl.token("runs.trigger", name="ci-system")
    auth = {"Authorization": f"Bearer {trigger}"}
    answer = hooks.http.post(path, json=body, headers=auth)
    assert [q["pipeline"] for q in answer.json()["queued"]] == ["ci"]
    assert hooks.http.post(path, json=body, headers=auth).json()["duplicate"] is True
    for bad in (
        {},
        {"branch": "main", "tag": "v1"},
        {"branch": "main", "sha": "zz"},
        {"x": 1},
        {"ref": "main"},  # a ref must be full
        {"ref": "--upload-pack=touch /tmp/x"},
        {"branch": "../../etc"},
    ):
        assert hooks.http.post(path, json=bad, headers=auth).status_code == 400, bad
    (run,) = hooks.runs()
    assert run.extra["sha"] == doc["after"] and run.extra["sender"] == "token:ci-system"


def test_a_repository_without_its_secret_refuses_signed_hooks(
    hooks: Hooks, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("APP_HOOK_SECRET")
    doc = _changed(hooks.upstream)
    with caplog.at_level(logging.WARNING, logger="sparkwing.controller"):
        answer = hooks.github(doc)
    assert answer.status_code == 401 and "no webhook secret" in answer.json()["error"]
    assert "APP_HOOK_SECRET" in caplog.text
    assert hooks.runs() == []


def test_the_secret_is_never_logged_or_recorded(
    hooks: Hooks, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    doc = _changed(hooks.upstream)
    with caplog.at_level(logging.DEBUG):
        hooks.github(doc, secret="wrong")
        hooks.github(doc, delivery="ok")
        hooks.github(doc, delivery="ok")
    assert len(hooks.runs()) == 1
    assert SECRET not in caplog.text
    assert SECRET not in json.dumps([r.to_dict() for r in hooks.runs()])
    for db_file in (tmp_path / "controller").glob("*.db"):
        dump = "\n".join(sqlite3.connect(db_file).iterdump())
        assert SECRET not in dump
        assert "APP_HOOK_SECRET" in dump  # only the variable's name is kept


def test_a_delivery_that_failed_halfway_queues_each_run_once_when_redelivered(
    hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sparkwing.errors import StorageError

    up = hooks.upstream
    before = up.commit({"docs/guide.md": "a\n"}, "docs")
    after = up.commit({"src/app.py": "v = 3\n", "docs/guide.md": "b\n"}, "both")  # ci and docs
    up.push()
    queue = hooks.ctl.backend.state.queue
    assert queue is not None
    real, calls = queue.submit, []

    def flaky(run: RunRecord, spec: dict[str, Any]) -> None:
        calls.append(run.pipeline)
        if len(calls) == 2:
            raise StorageError("the state store went away")
        real(run, spec)

    monkeypatch.setattr(queue, "submit", flaky)
    doc = push_doc("refs/heads/main", before, after)
    assert hooks.github(doc, delivery="d-half").status_code != 200
    assert len(hooks.runs()) == 1  # the first pipeline's run went in before the failure
    again = hooks.github(doc, delivery="d-half")
    assert again.status_code == 200, again.text
    assert sorted(r.pipeline for r in hooks.runs()) == ["ci", "docs"]
    assert sorted(q["run_id"] for q in again.json()["queued"]) == sorted(
        r.run_id for r in hooks.runs()
    )
    assert hooks.github(doc, delivery="d-half").json()["duplicate"] is True


def test_a_delivery_left_half_handled_by_a_dead_controller_is_taken_again(hooks: Hooks) -> None:
    up = hooks.upstream
    before = up.commit({"docs/guide.md": "a\n"}, "docs")
    after = up.commit({"src/app.py": "v = 4\n"}, "code")
    up.push()
    db = hooks.ctl.backend.tokens.db
    insert = (
        "INSERT INTO controller_deliveries (repo, delivery, state, received_at, runs)"
        " VALUES (?, ?, 'received', ?, NULL)"
    )
    # Claimed a moment ago: another handler is at it, a redelivery queues nothing.
    db.execute(insert, ("app", "d-busy", "2999-01-01T00:00:00.000000Z"))
    doc = push_doc("refs/heads/main", before, after)
    assert hooks.github(doc, delivery="d-busy").json()["duplicate"] is True
    # Claimed long ago and never done: its handler died; the redelivery queues the run.
    db.execute(insert, ("app", "d-dead", "2000-01-01T00:00:00.000000Z"))
    taken = hooks.github(doc, delivery="d-dead")
    assert taken.status_code == 200 and taken.json()["duplicate"] is False
    assert [r.pipeline for r in hooks.runs()] == ["ci"]
    assert hooks.github(doc, delivery="d-dead").json()["duplicate"] is True
