"""Telling a profile's ``notify`` endpoints about a finished run: one JSON POST per endpoint
whose ``on`` lists the run's status, sent by a detached process (neither the run nor the
command that started it waits for a slow endpoint), retried under the shared policy within a
time budget. An endpoint that cannot be reached is a ``notify_failed`` event on the run.

The body holds the run's id, pipeline, status, reason, times and profile name; never a URL,
a token or a secret (a URL with a token comes from ``url_source`` and stays in the sender)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sparkwing import _log
from sparkwing.__about__ import __version__
from sparkwing.conf.notify import check_url
from sparkwing.conf.notifydef import NotifyDef
from sparkwing.engine.clock import now_iso
from sparkwing.errors import ConfigError, SparkwingError
from sparkwing.retry import RetryPolicy
from sparkwing.status import FINAL_RUN_STATUSES
from sparkwing.surfaces.secrets.base import SecretStore
from sparkwing.surfaces.spec import SurfaceSpec
from sparkwing.surfaces.state.base import NewEvent, RunRecord

log = _log.get("sparkwing.engine")

# All deliveries of one run together end within this budget, however the endpoints behave.
BUDGET_SECONDS = 60.0
ATTEMPT_TIMEOUT_SECONDS = 10.0


class DeliveryError(Exception):
    """One failed attempt; ``transient``: worth another try (no answer, 5xx, 429)."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


POLICY = RetryPolicy(
    deadline=BUDGET_SECONDS,
    initial=0.5,
    maximum=10.0,
    transient=lambda exc: isinstance(exc, DeliveryError) and exc.transient,
)


@dataclass(frozen=True)
class Target:
    """One endpoint to post to: ``label`` names it in events without its URL."""

    label: str
    url: str


def payload(run: RunRecord, profile: str) -> dict[str, Any]:
    return {
        "event": "run_finished",
        "run_id": run.run_id,
        "pipeline": run.pipeline,
        "status": run.status,
        "reason": run.reason,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "trigger": run.trigger,
        "profile": profile,
    }


def label(index: int, url: str) -> str:
    return f"notify[{index}] ({urlsplit(url).hostname or '?'})"


def resolve_url(target: NotifyDef, secrets: SecretStore | None, env: Mapping[str, str]) -> str:
    """The URL ``target`` posts to; a source that is unset, empty or not a URL is a
    ConfigError that never repeats its value."""
    from sparkwing.conf.resolve import resolve_url_source

    if target.url:
        return target.url
    spec = SurfaceSpec(type="webhook", url_source=target.url_source)
    url = resolve_url_source(spec, secrets, env, surface="notify")
    if check_url(url) is not None:
        raise ConfigError(f'notify: url_source "{target.url_source}" does not hold an http(s) URL')
    return url


def announce(
    notify: tuple[NotifyDef, ...],
    surfaces: Mapping[str, SurfaceSpec],
    run_id: str,
    profile: str,
    env: Mapping[str, str],
) -> None:
    """Hand the finished run ``run_id`` to a detached sender for each endpoint of ``notify``
    whose ``on`` names its status. Never raises: a problem is logged and, where the run is
    recorded, a ``notify_failed`` event."""
    if not notify:
        return
    from sparkwing.surfaces.session import Surfaces

    try:
        with Surfaces(dict(surfaces)) as opened:
            run = opened.state.get_run(run_id)
            if run is None or run.status not in FINAL_RUN_STATUSES:
                return  # never recorded (it failed before it started): nothing to announce
            targets: list[Target] = []
            failures: list[NewEvent] = []
            for index, entry in enumerate(notify):
                if run.status not in entry.on:
                    continue
                try:
                    needs_secrets = entry.url_source and not entry.url_source.startswith("env:")
                    url = resolve_url(entry, opened.secrets if needs_secrets else None, env)
                except SparkwingError as exc:
                    failures.append(_failed(f"notify[{index}]", str(exc)))
                    continue
                targets.append(Target(label(index, url), url))
            if failures:
                opened.state.append_events(run_id, failures)
            if targets:
                _spawn(payload(run, profile), targets, surfaces, run_id)
    except Exception as exc:  # a run's outcome never depends on its notifications
        log.warning("run %s: could not send its notifications: %s", run_id, exc)


def _failed(what: str, why: str) -> NewEvent:
    return NewEvent("notify_failed", now_iso(), data={"target": what, "error": why})


def _spawn(
    body: dict[str, Any], targets: list[Target], surfaces: Mapping[str, SurfaceSpec], run_id: str
) -> None:
    from sparkwing.engine.runspec import spec_to_dict

    job = {
        "run_id": run_id,
        "payload": body,
        "targets": [{"label": t.label, "url": t.url} for t in targets],
        # Where to record a failed delivery (the secrets resolve a postgres url_source).
        "surfaces": {k: spec_to_dict(surfaces[k]) for k in ("state", "secrets") if k in surfaces},
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "sparkwing.engine.notify"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own session: it outlives the command that started it and no Ctrl-C reaches it.
        start_new_session=True,
    )
    assert proc.stdin is not None
    try:  # the URLs travel on stdin, never on a command line others can read
        proc.stdin.write(json.dumps(job).encode())
        proc.stdin.close()
    except BrokenPipeError:
        log.warning("run %s: the notification sender exited at once", run_id)


def deliver(url: str, body: dict[str, Any], delivery: str) -> None:
    """POST ``body`` to ``url`` under :data:`POLICY`; raises the last DeliveryError."""
    import httpx

    headers = {
        "User-Agent": f"sparkwing/{__version__}",
        "X-Sparkwing-Event": "run_finished",
        # The same on every retry, so an endpoint can drop a delivery it already took.
        "X-Sparkwing-Delivery": delivery,
    }
    timeout = httpx.Timeout(ATTEMPT_TIMEOUT_SECONDS)
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:

        def attempt(_n: int) -> None:
            try:
                answer = client.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:  # no answer: its type only (messages hold URLs)
                raise DeliveryError(f"no answer ({type(exc).__name__})", True) from None
            code = answer.status_code
            if code >= 400:
                raise DeliveryError(f"HTTP {code}", code >= 500 or code == 429)

        POLICY.call(attempt)


def send(job: dict[str, Any]) -> int:
    """Deliver ``job`` (what :func:`_spawn` wrote) and record each failure on the run."""
    from sparkwing.engine.runspec import spec_from_dict
    from sparkwing.surfaces.session import Surfaces

    run_id = str(job["run_id"])

    def one(index: int, target: dict[str, Any]) -> NewEvent | None:
        try:
            deliver(str(target["url"]), job["payload"], f"{run_id}-{index}")
        except DeliveryError as exc:
            return _failed(str(target["label"]), str(exc))
        return None

    # Side by side: a slow endpoint does not eat another's budget.
    with ThreadPoolExecutor(max_workers=max(1, len(job["targets"]))) as pool:
        outcomes = list(pool.map(one, range(len(job["targets"])), job["targets"]))
    failures = [event for event in outcomes if event is not None]
    if failures:
        specs = {k: spec_from_dict(v) for k, v in job["surfaces"].items()}
        try:
            with Surfaces(specs) as opened:
                opened.state.append_events(run_id, failures)
        except Exception as exc:
            log.warning("run %s: could not record failed notifications: %s", run_id, exc)
    return 1 if failures else 0


def main() -> None:
    """Entry of the detached sender: the job as JSON on stdin."""
    sys.exit(send(json.loads(sys.stdin.read())))


if __name__ == "__main__":
    main()
