"""How ``sparkwing run P --sw-dry-run`` shows its preview: one JSON document, or the plan's
levels and what each job would do, as lines."""

from __future__ import annotations

import json
from typing import Any

import click


def show_preview(doc: dict[str, Any], output: str) -> None:
    """A dry run's plan: one JSON document, or its levels and jobs as lines."""
    from sparkwing.engine.termsafe import safe_text

    if output == "json":
        click.echo(json.dumps(doc, ensure_ascii=False, default=str))
        return
    if output == "quiet":
        return
    source = f" (earlier outcomes from {doc['reused_from']})" if doc.get("reused_from") else ""
    click.echo(f"dry run of {doc['pipeline']}: nothing runs, nothing is recorded{source}")
    jobs = {job["id"]: job for job in doc["jobs"]}
    for number, level in enumerate(doc["levels"], start=1):
        click.echo(f"level {number}:")
        for job_id in level:
            job = jobs[job_id]
            click.echo(f"  {job_id}: {job['action']}  {safe_text(str(job['does']))}")
            for line in _preview_details(job):
                click.echo(f"      {safe_text(line)}")
    if doc.get("not_run"):
        click.echo(f"not in this run: {', '.join(doc['not_run'])}")


def _preview_details(job: dict[str, Any]) -> list[str]:
    lines = []
    if job.get("needs"):
        lines.append(f"needs {', '.join(job['needs'])}")
    if job.get("reused_from"):
        lines.append(f"reuses its {job['reused_status']} outcome in {job['reused_from']}")
    memo = job.get("memo")
    if memo:
        if memo.get("error"):
            lines.append(f"memoize key not known before the run: {memo['error']}")
        else:
            lines.append(f"memoize key {memo['key'][:12]}: {'hit' if memo['hit'] else 'miss'}")
    for consumed in job.get("consumes") or []:
        where = consumed["from"]
        lines.append(f"consumes the artifacts of {consumed['job']} ({where})")
    if job.get("outputs"):
        lines.append(f"outputs {', '.join(job['outputs'])}")
    if job.get("approval"):
        lines.append(f"waits for approval: {job['approval']}")
    return lines
