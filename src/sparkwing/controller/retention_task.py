"""The controller's retention schedule: a background task of the app's lifespan that prunes
its own stores by the project's ``defaults.retention`` every ``interval``, logging each round."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparkwing.conf.retention import Retention
    from sparkwing.controller.backend import Backend
    from sparkwing.engine.retention import Policy, Result

log = logging.getLogger("sparkwing.controller.retention")


def prune_once(backend: Backend, policy: Policy) -> Result:
    """One round over the controller's state, cache and logs. Logs are always the
    controller's own: a location a run record names is the runner's, never opened here."""
    from sparkwing.engine.pruner import Pruner

    return Pruner(backend.state, backend.cache, lambda _run: backend.logs).prune(policy)


async def run_schedule(backend: Backend, retention: Retention) -> None:
    """Prune now, then every ``retention.interval`` seconds, until cancelled. A failed round
    is logged and the next one tried on time."""
    from sparkwing.engine.retention import Policy

    policy = Policy(retention.max_age, retention.keep_last)
    log.info("retention: pruning runs %s every %gs", policy.describe(), retention.interval)
    while True:
        try:
            result = await asyncio.to_thread(prune_once, backend, policy)
        except Exception as exc:  # one bad round must not end the schedule
            log.warning("retention round failed: %s", " ".join(str(exc).split()))
        else:
            log.info(
                "retention round: pruned %d run(s), kept %d, removed %d artifact object(s)",
                len(result.runs),
                result.kept,
                result.manifests + result.blobs,
            )
        await asyncio.sleep(retention.interval)
