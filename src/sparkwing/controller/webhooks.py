"""Webhook deliveries read: signatures checked in constant time (GitHub's HMAC-SHA256 of
the raw body, GitLab's token), and the JSON of a push or pull request turned into the
events :mod:`sparkwing.triggers.match` matches. A payload that does not have the shape its
sender documents is a UsageError (400); nothing here touches a store."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from sparkwing.controller.httperror import HttpError
from sparkwing.errors import UsageError
from sparkwing.triggers.match import BRANCH_PREFIX, TAG_PREFIX, PullRequestEvent, PushEvent

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_DELIVERY = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
# What git itself refuses in a ref name (git check-ref-format), plus a leading '-' that a
# command line would read as an option.
_BAD_REF = re.compile(r"(\.\.|@\{|//|[\x00-\x20\x7f~^:?*\[\\]|^-|^/|/$|\.lock$|\.$)")
GITHUB_PREFIX = "sha256="
# GitLab's merge-request actions, as the pull-request types filters name.
_GITLAB_ACTIONS = {
    "open": "opened",
    "reopen": "reopened",
    "close": "closed",
    "merge": "closed",
    "update": "synchronize",
}

Event = PushEvent | PullRequestEvent


@dataclass(frozen=True)
class Delivery:
    """One webhook call understood: ``event`` is None for one we do not act on (a ping,
    an issue comment ...), ``kind`` says which it was."""

    kind: str
    event: Event | None
    delivery: str | None
    ref: str | None = None  # what a run checks out: the pushed ref, or the PR's head ref


def unauthorized(message: str) -> HttpError:
    return HttpError(401, "Unauthorized", message)


def check_github_signature(secret: str, body: bytes, header: str | None) -> None:
    """``X-Hub-Signature-256: sha256=<hex>`` must be the HMAC-SHA256 of ``body``."""
    if not header:
        raise unauthorized("missing X-Hub-Signature-256 header")
    if not header.startswith(GITHUB_PREFIX):
        raise unauthorized("X-Hub-Signature-256 must start with sha256=")
    expected = GITHUB_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), header.strip().lower().encode()):
        raise unauthorized("the webhook signature does not match the repository's secret")


def check_gitlab_token(secret: str, header: str | None) -> None:
    if not header:
        raise unauthorized("missing X-Gitlab-Token header")
    if not hmac.compare_digest(secret.encode(), header.encode()):
        raise unauthorized("X-Gitlab-Token does not match the repository's secret")


def delivery_id(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _DELIVERY.match(value):
        raise UsageError("the delivery id must be 1-200 letters, digits, '.', '_', ':' or '-'")
    return value


def load_json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise UsageError("the webhook body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise UsageError("the webhook body must be a JSON object")
    return doc


def _field(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _text(doc: Any, *path: str) -> str:
    value = _field(doc, *path)
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise UsageError(f"the webhook body has no {'.'.join(path)} string")
    return value


def check_ref_name(name: str, what: str) -> str:
    """A ref or branch name git accepts (and no option in disguise)."""
    if _BAD_REF.search(name) or "/." in name or name.startswith("."):
        raise UsageError(f"the webhook body's {what} is not a valid git ref name")
    return name


def _ref(doc: Any, *path: str) -> str:
    return check_ref_name(_text(doc, *path), ".".join(path))


def _sha(doc: Any, *path: str, optional: bool = False) -> str | None:
    value = _field(doc, *path)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not _SHA.match(value):
        raise UsageError(f"the webhook body's {'.'.join(path)} is not a commit sha")
    return value


def _deleted(sha: str | None) -> bool:
    return sha is None or set(sha) == {"0"}


def _push(doc: dict[str, Any], after: str | None, deleted: bool) -> PushEvent:
    ref = _ref(doc, "ref")
    before = _sha(doc, "before", optional=True)
    return PushEvent(
        ref=ref,
        sha="" if deleted or after is None else after,
        before=None if before is None or _deleted(before) else before,
        deleted=deleted,
    )


def github(kind: str | None, body: bytes, delivery: str | None) -> Delivery:
    """A GitHub delivery (``X-GitHub-Event`` is ``kind``), signature already checked."""
    if not kind:
        raise UsageError("missing X-GitHub-Event header")
    if kind not in ("push", "pull_request"):
        return Delivery(kind, None, delivery)
    doc = load_json(body)
    if kind == "push":
        after = _sha(doc, "after")
        deleted = bool(doc.get("deleted")) or _deleted(after)
        event = _push(doc, after, deleted)
        return Delivery(kind, event, delivery, event.ref)
    number = _field(doc, "number")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise UsageError("the webhook body has no pull request number")
    pr = PullRequestEvent(
        action=_text(doc, "action"),
        number=number,
        base=_ref(doc, "pull_request", "base", "ref"),
        head=_ref(doc, "pull_request", "head", "ref"),
        sha=str(_sha(doc, "pull_request", "head", "sha")),
    )
    return Delivery(kind, pr, delivery, f"refs/pull/{number}/head")


def gitlab(kind: str | None, body: bytes, delivery: str | None) -> Delivery:
    """A GitLab delivery (``X-Gitlab-Event``: Push Hook, Tag Push Hook, Merge Request Hook)."""
    if kind in ("Push Hook", "Tag Push Hook"):
        doc = load_json(body)
        after = _sha(doc, "after")
        event = _push(doc, after, _deleted(after))
        return Delivery("push", event, delivery, event.ref)
    if kind != "Merge Request Hook":
        return Delivery(kind or "unknown", None, delivery)
    doc = load_json(body)
    attrs = _field(doc, "object_attributes")
    action = _text(attrs, "action")
    if action == "update" and _field(attrs, "oldrev") is None:
        action = "edited"  # an update without new commits: a title or description change
    number = _field(attrs, "iid")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise UsageError("the webhook body has no merge request iid")
    pr = PullRequestEvent(
        action=_GITLAB_ACTIONS.get(action, action),
        number=number,
        base=_ref(attrs, "target_branch"),
        head=_ref(attrs, "source_branch"),
        sha=str(_sha(attrs, "last_commit", "id")),
    )
    return Delivery("pull_request", pr, delivery, f"refs/merge-requests/{number}/head")


def generic(doc: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """A generic push: exactly one of ``ref`` / ``branch`` / ``tag``, optional ``sha`` and
    ``before``; returns (ref, sha, before), the sha None when the ref's tip is meant."""
    given = [k for k in ("ref", "branch", "tag") if doc.get(k) is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of ref, branch or tag")
    key = given[0]
    name = _ref(doc, key)
    ref = {"ref": name, "branch": BRANCH_PREFIX + name, "tag": TAG_PREFIX + name}[key]
    if not ref.startswith("refs/"):
        raise UsageError(
            "the webhook body's ref must be a full ref (refs/heads/..., refs/tags/...)"
        )
    return ref, _sha(doc, "sha", optional=True), _sha(doc, "before", optional=True)
