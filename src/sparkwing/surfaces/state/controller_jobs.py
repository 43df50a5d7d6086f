"""The controller state backend's job queue: every JobQueue call as an HTTP request to the
controller's ``/v1/jobs`` operations (present when the controller's own store has one)."""

from __future__ import annotations

from dataclasses import asdict
from typing import cast

from sparkwing.controller.client import ControllerClient, segment
from sparkwing.ids import check_segment
from sparkwing.surfaces.state.jobqueue import (
    JobClaim,
    JobEntry,
    JobQueue,
    JobRef,
    JobResult,
    QueuedJob,
    Renewal,
)


def _path(ref: JobRef, action: str) -> str:
    run = segment(check_segment(ref.run_id, "run id"))
    node = segment(check_segment(ref.node_id, "node id"))
    return f"/v1/jobs/{run}/{node}/{action}"


class ControllerJobs(JobQueue):
    def __init__(self, client: ControllerClient) -> None:
        self.client = client
        self._supported: bool | None = None

    def supported(self) -> bool:
        """Whether the controller's store has a job queue (asked once per handle; an older
        controller without the operation has none)."""
        if self._supported is None:
            doc = self.client.call(
                "GET", "/v1/jobs/capability", what="probe the job queue", missing=True
            )
            self._supported = bool(doc and doc.get("ok"))
        return self._supported

    def enqueue(self, job: QueuedJob) -> None:
        ref = job.ref
        check_segment(ref.run_id, "run id")
        check_segment(ref.node_id, "node id")
        body = {**asdict(ref), "labels": list(job.labels), "spec": job.spec}
        self.client.call("POST", "/v1/jobs", what="queue a job", body=body)

    def claim(self, worker: str, labels: list[str], lease_seconds: float) -> JobClaim | None:
        body = {"worker": worker, "labels": list(labels), "lease_seconds": lease_seconds}
        doc = self.client.call("POST", "/v1/jobs/claim", what="claim a job", body=body)["claim"]
        if doc is None:
            return None
        return JobClaim(
            ref=JobRef(**doc["ref"]),
            labels=list(doc["labels"]),
            spec=doc["spec"],
            worker=doc["worker"],
            claim=int(doc["claim"]),
            expires_at=float(doc["expires_at"]),
            previous_worker=doc.get("previous_worker"),
        )

    def renew(self, ref: JobRef, worker: str, claim: int, lease_seconds: float) -> Renewal:
        body = {
            "attempt": ref.attempt,
            "worker": worker,
            "claim": claim,
            "lease_seconds": lease_seconds,
        }
        doc = self.client.call("POST", _path(ref, "renew"), what="renew a job", body=body)
        return cast(Renewal, doc["renewal"])

    def complete(self, ref: JobRef, worker: str, claim: int, result: JobResult) -> bool:
        body = {
            "attempt": ref.attempt,
            "worker": worker,
            "claim": claim,
            "result": result.to_dict(),
        }
        doc = self.client.call("POST", _path(ref, "complete"), what="complete a job", body=body)
        return bool(doc["ok"])

    def cancel(self, ref: JobRef, reason: str) -> None:
        body = {"attempt": ref.attempt, "reason": reason}
        self.client.call("POST", _path(ref, "cancel"), what="cancel a job", body=body)

    def entries(self, run_id: str) -> list[JobEntry]:
        path = "/v1/jobs/" + segment(check_segment(run_id, "run id"))
        doc = self.client.call("GET", path, what="list a run's jobs")
        return [JobEntry.from_dict(e) for e in doc["jobs"]]
