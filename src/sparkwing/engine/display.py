"""Live progress of a run: rich status on a terminal, plain lines otherwise, or nothing
until a final JSON document (``-o json``)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from sparkwing.engine.masking import Masker
from sparkwing.engine.termsafe import safe_lines, safe_text
from sparkwing.sdk.durations import format_duration
from sparkwing.surfaces.state.base import NodeRecord, RunRecord

SYMBOLS = {
    "success": "ok",
    "failed": "FAILED",
    "cached": "cached",
    "reused": "reused",
    "skipped": "skipped",
    "cancelled": "cancelled",
}
STYLES = {
    "success": "green",
    "failed": "bold red",
    "cached": "cyan",
    "reused": "cyan",
    "skipped": "dim",
    "cancelled": "yellow",
    "running": "blue",
}


class Display:
    """Base: receives recorder notifications; prints nothing."""

    def start(self, run: RunRecord, nodes: list[str]) -> None: ...

    def watch(self, masker: Masker) -> None:
        """The run's masker, for displays that announce secrets to the CI they run in."""

    def notify(self, kind: str, payload: Any) -> None: ...

    def waiting(self, text: str) -> None:
        """Before the run starts: what it waits for (a busy concurrency group)."""

    def tick(self) -> None: ...

    def finish(self, run: RunRecord, nodes: list[NodeRecord]) -> None: ...


class PlainDisplay(Display):
    def __init__(self, stream: TextIO | None = None, show_logs: bool = True) -> None:
        self.out = stream or sys.stdout
        self.show_logs = show_logs
        self._width = 8
        self._started: dict[str, float] = {}
        self._t0 = time.monotonic()
        self._last_status: dict[str, tuple[str, str | None]] = {}

    def start(self, run: RunRecord, nodes: list[str]) -> None:
        self._t0 = time.monotonic()
        self._width = min(24, max((len(n) for n in nodes), default=8))
        self.out.write(
            f"run {run.run_id} ({run.pipeline}, profile {run.profile}, "
            f"{len(nodes)} job{'s' if len(nodes) != 1 else ''})\n"
        )
        self.out.flush()

    def waiting(self, text: str) -> None:
        self.out.write(f"waiting: {safe_text(text)}\n")
        self.out.flush()

    def notify(self, kind: str, payload: Any) -> None:
        if kind == "log" and self.show_logs:
            node, _stream, msg = payload
            for line in safe_lines(msg):
                self.out.write(f"{node:<{self._width}} | {line}\n")
        elif kind == "node":
            self._node(payload)
        elif kind == "annotation":
            node, text = payload
            self.out.write(f"{node:<{self._width}} * {safe_text(text)}\n")
        elif kind == "tick":
            # Once a scheduler turn, before it waits: what the turn wrote appears together,
            # with one write instead of one per line (two or more a job).
            self.out.flush()

    def _node(self, rec: NodeRecord) -> None:
        key = (rec.status, rec.reason)
        if self._last_status.get(rec.node_id) == key:
            return
        self._last_status[rec.node_id] = key
        if rec.status == "running":
            if rec.reason is None:
                self._started[rec.node_id] = time.monotonic()
                attempt = f" (attempt {rec.attempt})" if rec.attempt > 1 else ""
                self.out.write(f"{rec.node_id:<{self._width}} > started{attempt}\n")
            else:
                self.out.write(f"{rec.node_id:<{self._width}} ~ {safe_text(rec.reason)}\n")
        elif rec.status in ("approval_pending", "paused"):
            self.out.write(f"{rec.node_id:<{self._width}} ? {safe_text(rec.reason or '')}\n")
        elif rec.status in SYMBOLS:
            took = ""
            if rec.node_id in self._started:
                took = f" in {format_duration(time.monotonic() - self._started[rec.node_id])}"
            reason = f": {safe_text(rec.reason)}" if rec.reason and rec.status != "success" else ""
            self.out.write(f"{rec.node_id:<{self._width}} = {SYMBOLS[rec.status]}{took}{reason}\n")

    def finish(self, run: RunRecord, nodes: list[NodeRecord]) -> None:
        counts: dict[str, int] = {}
        for n in nodes:
            counts[n.status] = counts.get(n.status, 0) + 1
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        took = format_duration(time.monotonic() - self._t0)
        reason = f" ({safe_text(run.reason)})" if run.reason else ""
        self.out.write(f"run {run.run_id} {run.status}{reason} in {took}: {summary}\n")
        if run.status != "success":
            self.out.write(f"  see: sparkwing runs errors --run {run.run_id}\n")
        self.out.flush()


class TtyDisplay(PlainDisplay):
    """Log lines scroll above a live footer listing running jobs."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.live import Live

        self.console = Console(highlight=False)
        self.live = Live(
            console=self.console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._status: dict[str, str] = {}
        self._last_refresh = 0.0

    def start(self, run: RunRecord, nodes: list[str]) -> None:
        self._t0 = time.monotonic()
        self._width = min(24, max((len(n) for n in nodes), default=8))
        self._status = {n: "pending" for n in nodes}
        self.console.print(
            f"[bold]run[/] {run.run_id} [dim]({run.pipeline}, profile "
            f"{run.profile}, {len(nodes)} jobs)[/]"
        )
        self.live.start()

    def waiting(self, text: str) -> None:
        from rich.markup import escape

        self.console.print(f"[bold magenta]waiting:[/] {escape(safe_text(text))}")

    def notify(self, kind: str, payload: Any) -> None:
        from rich.markup import escape

        if kind == "tick":
            pass
        elif kind == "log":
            node, stream, msg = payload
            style = "red" if stream in ("stderr", "error") else "yellow" if stream == "warn" else ""
            for line in safe_lines(msg):
                text = escape(line)
                self.live.console.print(
                    f"[dim]{escape(node):<{self._width}} |[/] "
                    f"{f'[{style}]{text}[/]' if style else text}"
                )
        elif kind == "annotation":
            node, text = payload
            self.live.console.print(
                f"[bold]{escape(node)}[/] [magenta]* {escape(safe_text(text))}[/]"
            )
        elif kind == "node":
            rec: NodeRecord = payload
            self._status[rec.node_id] = rec.status
            if rec.status == "running" and rec.reason is None:
                self._started.setdefault(rec.node_id, time.monotonic())
            if rec.status in ("approval_pending", "paused"):
                self.live.console.print(
                    f"[bold magenta]{'waiting':>9}[/] "
                    f"[bold]{escape(rec.node_id)}[/] {escape(safe_text(rec.reason or ''))}"
                )
            if rec.status in SYMBOLS:
                took = ""
                if rec.node_id in self._started:
                    took = f" {format_duration(time.monotonic() - self._started[rec.node_id])}"
                reason = (
                    f": {escape(safe_text(rec.reason))}"
                    if rec.reason and rec.status != "success"
                    else ""
                )
                style = STYLES[rec.status]
                self.live.console.print(
                    f"[{style}]{SYMBOLS[rec.status]:>9}[/] "
                    f"[bold]{escape(rec.node_id)}[/][dim]{took}[/]{reason}"
                )
        self.tick()

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._last_refresh < 0.1:
            return
        self._last_refresh = now
        from rich.text import Text

        running = [n for n, s in self._status.items() if s == "running"]
        waiting = [n for n, s in self._status.items() if s in ("approval_pending", "paused")]
        done = sum(1 for s in self._status.values() if s in SYMBOLS)
        line = Text(f"{done}/{len(self._status)} done", style="bold")
        if running:
            shown = ", ".join(running[:6]) + (" ..." if len(running) > 6 else "")
            line.append(f"  running: {shown}", style="blue")
        if waiting:
            line.append(f"  waiting: {', '.join(waiting[:6])}", style="magenta")
        line.append(f"  {format_duration(now - self._t0)}", style="dim")
        self.live.update(line, refresh=True)

    def finish(self, run: RunRecord, nodes: list[NodeRecord]) -> None:
        self.live.stop()
        style = STYLES.get(run.status, "bold")
        counts: dict[str, int] = {}
        for n in nodes:
            counts[n.status] = counts.get(n.status, 0) + 1
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        from rich.markup import escape

        reason = f" ({escape(safe_text(run.reason))})" if run.reason else ""
        self.console.print(
            f"[{style}]run {run.run_id} {run.status}[/]{reason} in "
            f"{format_duration(time.monotonic() - self._t0)}: {summary}"
        )
        if run.status != "success":
            self.console.print(f"  see: sparkwing runs errors --run {run.run_id}")


class JsonDisplay(Display):
    def finish(self, run: RunRecord, nodes: list[NodeRecord]) -> None:
        doc = {"run": run.to_dict(), "nodes": [n.to_dict() for n in nodes]}
        sys.stdout.write(json.dumps(doc, default=str) + "\n")
        sys.stdout.flush()
