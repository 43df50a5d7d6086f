"""Run progress for the CI a run happens inside: under GitHub Actions each job's log is a
collapsible ``::group::`` (a failed job adds an ``::error``; secrets are announced with
``::add-mask::``; a Markdown summary goes to ``$GITHUB_STEP_SUMMARY``), under Buildkite a
``---`` group (``+++``, expanded, for a failed job).

Parallel jobs' lines would interleave, and a group must be contiguous, so each job's lines
are held until it ends and then printed as one group."""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from typing import Any, TextIO

from sparkwing import _log
from sparkwing.engine.clock import parse_iso
from sparkwing.engine.display import SYMBOLS, Display
from sparkwing.engine.masking import Masker
from sparkwing.engine.termsafe import safe_lines, safe_text
from sparkwing.sdk.durations import format_duration
from sparkwing.surfaces.state.base import NodeRecord, RunRecord

FINAL = frozenset(SYMBOLS)
log = _log.get(__name__)

# A job's lines are held until it ends; past this many only its first and last lines are
# kept, so a job printing gigabytes cannot grow the runner without bound.
HEAD_LINES = 1000
TAIL_LINES = 4000


class _Held:
    """One job's held lines: all of them up to a cap, then the head and a rolling tail."""

    def __init__(self) -> None:
        self.head: list[str] = []
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.dropped = 0

    def add(self, lines: list[str]) -> None:
        for line in lines:
            if len(self.head) < HEAD_LINES:
                self.head.append(line)
                continue
            if len(self.tail) == TAIL_LINES:
                self.dropped += 1
            self.tail.append(line)

    def lines(self, run_id: str, node_id: str) -> list[str]:
        gap = []
        if self.dropped:
            gap = [
                f"... {self.dropped} lines not shown here; the whole log: "
                f"sparkwing runs logs {run_id} --job {node_id}"
            ]
        return [*self.head, *gap, *self.tail]


def ci_kind(env: dict[str, str] | os._Environ[str] | None = None) -> str | None:
    """``github`` or ``buildkite`` when the run happens inside that CI, else None."""
    env = os.environ if env is None else env
    # GitHub's runner always sets both; requiring the run id too keeps a stray
    # GITHUB_ACTIONS=true on a laptop from printing secrets as ``::add-mask::`` lines.
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_RUN_ID"):
        return "github"
    if env.get("BUILDKITE") == "true":
        return "buildkite"
    return None


def _escape_data(text: str) -> str:
    # GitHub's workflow-command escaping: a message may not break the command's line.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _duration(rec: NodeRecord) -> float | None:
    if not (rec.started_at and rec.finished_at):
        return None
    try:
        return (parse_iso(rec.finished_at) - parse_iso(rec.started_at)).total_seconds()
    except ValueError:
        return None


class GroupedDisplay(Display):
    """Each job's lines printed as one group when the job ends (see the module docstring)."""

    def __init__(self, kind: str, stream: TextIO | None = None) -> None:
        self.kind = kind
        self.out = stream or sys.stdout
        self._held: dict[str, _Held] = {}
        self._masker: Masker | None = None
        self._announced: set[str] = set()
        self._done: set[str] = set()
        self._t0 = time.monotonic()
        self._run_id = ""

    def watch(self, masker: Masker) -> None:
        self._masker = masker

    def _announce_masks(self) -> None:
        if self.kind != "github" or self._masker is None:
            return
        for value in self._masker.values:
            if value not in self._announced:
                self._announced.add(value)
                for line in value.splitlines() or [value]:
                    if line.strip():
                        self.out.write(f"::add-mask::{_escape_data(line)}\n")

    def waiting(self, text: str) -> None:
        self.out.write(f"waiting: {safe_text(text)}\n")
        self.out.flush()

    def start(self, run: RunRecord, nodes: list[str]) -> None:
        self._t0 = time.monotonic()
        self._run_id = run.run_id
        self.out.write(f"run {run.run_id} ({run.pipeline}, {len(nodes)} jobs)\n")
        self.out.flush()

    def notify(self, kind: str, payload: Any) -> None:
        self._announce_masks()
        if kind == "log":
            node, _stream, msg = payload
            self._held.setdefault(node, _Held()).add(safe_lines(msg))
        elif kind == "annotation":
            node, text = payload
            self._held.setdefault(node, _Held()).add([f"* {safe_text(text)}"])
        elif kind == "node":
            self._node(payload)
        self.out.flush()

    def _node(self, rec: NodeRecord) -> None:
        if rec.status not in FINAL or rec.node_id in self._done:
            return
        self._done.add(rec.node_id)
        took = _duration(rec)
        shown = f" ({SYMBOLS[rec.status]}{', ' + format_duration(took) if took else ''})"
        title = f"{rec.node_id}{shown}"
        held = self._held.pop(rec.node_id, None)
        lines = held.lines(self._run_id, rec.node_id) if held else []
        failed = rec.status == "failed"
        if self.kind == "github":
            self.out.write(f"::group::{_escape_data(title)}\n")
            self.out.writelines(f"{line}\n" for line in lines)
            self.out.write("::endgroup::\n")
            if failed:
                reason = rec.reason or "failed"
                name = _escape_property(f"job {rec.node_id} failed")
                self.out.write(f"::error title={name}::{_escape_data(safe_text(reason))}\n")
        else:
            self.out.write(f"{'+++' if failed else '---'} {title}\n")
            self.out.writelines(f"{line}\n" for line in lines)
            if failed and rec.reason:
                self.out.write(f"failed: {safe_text(rec.reason)}\n")

    def finish(self, run: RunRecord, nodes: list[NodeRecord]) -> None:
        self._announce_masks()
        for node_id in list(self._held):  # lines of jobs that never reached a final status
            lines = self._held.pop(node_id).lines(self._run_id, node_id)
            header = f"::group::{node_id}" if self.kind == "github" else f"--- {node_id}"
            self.out.write(header + "\n")
            self.out.writelines(f"{line}\n" for line in lines)
            if self.kind == "github":
                self.out.write("::endgroup::\n")
        took = format_duration(time.monotonic() - self._t0)
        reason = f" ({safe_text(run.reason)})" if run.reason else ""
        self.out.write(f"run {run.run_id} {run.status}{reason} in {took}\n")
        self.out.flush()
        if self.kind == "github":
            summary = os.environ.get("GITHUB_STEP_SUMMARY")
            if summary:
                write_step_summary(summary, run, nodes)


def step_summary(run: RunRecord, nodes: list[NodeRecord]) -> str:
    """The run as Markdown: its outcome, then a table of jobs with status and duration."""
    icon = {
        "success": "✅",
        "failed": "❌",
        "cancelled": "⚪",
        "cached": "♻️",
        "reused": "♻️",
        "skipped": "⏭️",
    }
    reason = f": {safe_text(run.reason)}" if run.reason else ""
    rows = [
        f"### sparkwing run `{run.run_id}` ({run.pipeline}): {run.status}{reason}",
        "",
        "| job | status | duration | reason |",
        "| --- | --- | --- | --- |",
    ]
    for rec in nodes:
        took = _duration(rec)
        cell = (safe_text(rec.reason or "") if rec.status != "success" else "").replace("|", "\\|")
        rows.append(
            f"| `{rec.node_id}` | {icon.get(rec.status, '')} {rec.status} | "
            f"{format_duration(took) if took is not None else '-'} | {cell} |"
        )
    rows += ["", f"Details: `sparkwing runs status --run {run.run_id}`", ""]
    return "\n".join(rows)


def write_step_summary(path: str, run: RunRecord, nodes: list[NodeRecord]) -> None:
    """Appended, as GitHub expects: several runs in one step each add their summary. A file
    that cannot be written costs the summary only, never the run's outcome."""
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(step_summary(run, nodes) + "\n")
    except OSError as exc:
        log.warning("could not write the step summary to %s: %s", path, exc.strerror or exc)
