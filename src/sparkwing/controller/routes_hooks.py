"""Webhook endpoints: GitHub (HMAC-SHA256 of the raw body), GitLab (a shared token) and a
generic one for any CI (a bearer token with ``runs.trigger``). A delivery is checked before
anything is read or written; one seen before (a redelivery) queues nothing again. Secrets
and signatures never reach a log or a record."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sparkwing.controller import schemas as s
from sparkwing.controller import webhooks
from sparkwing.controller.endpoint import SIGNED, Call, Endpoint, Param, Reply
from sparkwing.controller.httperror import HttpError
from sparkwing.controller.pipeline import read_bounded
from sparkwing.controller.repos import Deliveries, Repo, RepoStore, check_repo_name
from sparkwing.controller.triggering import UnprocessableError, act
from sparkwing.errors import NotFoundError
from sparkwing.source.mirror import Mirrors, SourceError
from sparkwing.triggers.match import PushEvent

if TYPE_CHECKING:
    from sparkwing.controller.backend import Backend

log = logging.getLogger("sparkwing.controller")

TRIGGER = "runs.trigger"
# GitHub caps payloads at 25 MB, but a push or pull request event is a few kB to a few
# hundred: a bound well above that keeps a flood from filling memory.
MAX_HOOK_BODY = 4 * 1024 * 1024

REPO = Param("repo", "path", s.SHORT, "Repository name.", required=True, check=check_repo_name)
QUEUED = s.obj(
    {
        "event": s.STR,
        "queued": s.array(s.obj({"pipeline": s.STR, "run_id": s.STR}, ("pipeline", "run_id"))),
        "duplicate": s.BOOL,
        "ignored": s.BOOL,
    },
    ("event", "queued"),
)
GENERIC = s.obj(
    {
        "ref": s.SHORT,
        "branch": s.SHORT,
        "tag": s.SHORT,
        "sha": s.SHORT,
        "before": s.SHORT,
        "delivery": s.SHORT,
    }
)


def _repo(backend: Backend, name: str) -> Repo:
    repo = RepoStore(backend.tokens.db).get(name)
    if repo is None:
        raise NotFoundError(f"no repository {name!r} (add it with `sparkwing controller repo add`)")
    return repo


def _secret(repo: Repo) -> str:
    value = os.environ.get(repo.secret_env) if repo.secret_env else None
    if not value:
        # The operator's to fix: the log names the variable (never a value).
        log.warning(
            "repository %s: webhook refused: its secret variable %s is not set",
            repo.name,
            repo.secret_env or "(none: give --webhook-secret-env)",
        )
        raise webhooks.unauthorized(f"repository {repo.name} has no webhook secret configured")
    return value


def _deliver(backend: Backend, repo: Repo, got: webhooks.Delivery, facts: dict[str, Any]) -> Any:
    if got.event is None or got.ref is None:
        return {"event": got.kind, "queued": [], "ignored": True}
    deliveries = Deliveries(backend.tokens.db)
    if got.delivery is not None and not deliveries.claim(repo.name, got.delivery):
        return {"event": got.kind, "queued": [], "duplicate": True}
    received = None
    if got.delivery is not None:
        facts = {**facts, "delivery": got.delivery}
        received = deliveries.received_at(repo.name, got.delivery)
    try:
        queued = act(backend.state, Mirrors(), repo, got.event, got.ref, facts, received)
    except BaseException as exc:
        if got.delivery is not None:
            deliveries.release(repo.name, got.delivery)  # a redelivery may try again
        if isinstance(exc, UnprocessableError):
            raise HttpError(422, "UnprocessableError", str(exc)) from None
        if isinstance(exc, SourceError):
            raise HttpError(502, "SourceError", str(exc)) from None
        raise
    if got.delivery is not None:
        deliveries.done(repo.name, got.delivery, [q.run_id for q in queued])
    return {"event": got.kind, "queued": [q.to_dict() for q in queued], "duplicate": False}


def _github(call: Call, body: bytes) -> Any:
    repo = _repo(call.backend, call.path["repo"])
    headers = call.request.headers
    webhooks.check_github_signature(_secret(repo), body, headers.get("x-hub-signature-256"))
    kind = headers.get("x-github-event")
    if kind == "ping":
        return {"event": "ping", "queued": [], "ignored": True}
    delivery = webhooks.delivery_id(headers.get("x-github-delivery"))
    got = webhooks.github(kind, body, delivery)
    return _deliver(call.backend, repo, got, {"sender": "github"})


def _gitlab(call: Call, body: bytes) -> Any:
    repo = _repo(call.backend, call.path["repo"])
    headers = call.request.headers
    webhooks.check_gitlab_token(_secret(repo), headers.get("x-gitlab-token"))
    delivery = webhooks.delivery_id(
        headers.get("idempotency-key") or headers.get("x-gitlab-event-uuid")
    )
    got = webhooks.gitlab(headers.get("x-gitlab-event"), body, delivery)
    return _deliver(call.backend, repo, got, {"sender": "gitlab"})


def _signed(handle: Callable[[Call, bytes], Any]) -> Callable[[Call], Awaitable[Any]]:
    """The endpoint handler of a signed hook: the raw body (bounded) read off the event
    loop's stream, then ``handle`` (signature first) on a worker thread."""

    async def handler(call: Call) -> Any:
        from starlette.concurrency import run_in_threadpool

        body = await read_bounded(call.request, MAX_HOOK_BODY, "webhook bodies")
        return await run_in_threadpool(handle, call, body)

    return handler


github_hook = _signed(_github)
gitlab_hook = _signed(_gitlab)


def generic_hook(call: Call) -> Any:
    repo = _repo(call.backend, call.path["repo"])
    ref, sha, before = webhooks.generic(call.body)
    delivery = webhooks.delivery_id(
        call.body.get("delivery") or call.request.headers.get("x-sparkwing-delivery")
    )
    event = PushEvent(ref=ref, sha=sha or ref, before=before)
    got = webhooks.Delivery("push", event, delivery, ref)
    assert call.token is not None  # a scoped endpoint always has one
    return _deliver(call.backend, repo, got, {"sender": f"token:{call.token.name}"})


_SIGNED_ERRORS = (404, 413, 422, 502)
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/v1/hooks/github/{repo}",
        "hook_github",
        "A GitHub webhook (push, pull_request; ping answered), signed with the repository's "
        "secret (X-Hub-Signature-256); queues the runs whose on: filters the event passes.",
        SIGNED,
        github_hook,
        Reply(200, "What was queued.", QUEUED),
        params=(REPO,),
        raw_body="application/json",
        errors=_SIGNED_ERRORS,
    ),
    Endpoint(
        "POST",
        "/v1/hooks/gitlab/{repo}",
        "hook_gitlab",
        "A GitLab webhook (Push Hook, Tag Push Hook, Merge Request Hook) carrying the "
        "repository's secret in X-Gitlab-Token.",
        SIGNED,
        gitlab_hook,
        Reply(200, "What was queued.", QUEUED),
        params=(REPO,),
        raw_body="application/json",
        errors=_SIGNED_ERRORS,
    ),
    Endpoint(
        "POST",
        "/v1/hooks/generic/{repo}",
        "hook_generic",
        "Announce a push from any CI: exactly one of ref, branch or tag; sha (default: the "
        "ref's tip), before (for paths filters) and a delivery id are optional.",
        TRIGGER,
        generic_hook,
        Reply(200, "What was queued.", QUEUED),
        params=(REPO,),
        body=GENERIC,
        errors=(404, 422, 502),
    ),
)
