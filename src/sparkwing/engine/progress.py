"""Which display a run's progress gets: the ``-o`` mode, and for plain or terminal output
inside GitHub Actions or Buildkite, that CI's log groups (:mod:`sparkwing.engine.cidisplay`)."""

from __future__ import annotations

from typing import Any

from sparkwing.engine.display import Display, JsonDisplay, PlainDisplay, TtyDisplay
from sparkwing.engine.masking import Masker
from sparkwing.surfaces.state.base import NodeRecord, RunRecord


def make_display(mode: str) -> Display:
    if mode == "json":
        return Unplugged(JsonDisplay())
    if mode == "quiet":
        return Display()
    from sparkwing.engine.cidisplay import GroupedDisplay, ci_kind

    kind = ci_kind()
    if kind is not None:
        return Unplugged(GroupedDisplay(kind))
    if mode == "tty":
        return Unplugged(TtyDisplay())
    return Unplugged(PlainDisplay())


class Unplugged(Display):
    """A display that goes quiet once its output is closed (``sparkwing run ... | head``):
    the run goes on and is recorded as usual, only what it prints stops. Without this the
    first line written to a closed pipe ended the runner as an internal error."""

    def __init__(self, inner: Display) -> None:
        self.inner: Display | None = inner

    def _call(self, name: str, *args: Any) -> None:
        inner = self.inner
        if inner is None:
            return
        try:
            getattr(inner, name)(*args)
        except BrokenPipeError:  # the reader went away; any other error is a bug to see
            self.inner = None

    def start(self, run: RunRecord, nodes: list[str]) -> None:
        self._call("start", run, nodes)

    def watch(self, masker: Masker) -> None:
        self._call("watch", masker)

    def notify(self, kind: str, payload: Any) -> None:
        self._call("notify", kind, payload)

    def waiting(self, text: str) -> None:
        self._call("waiting", text)

    def tick(self) -> None:
        self._call("tick")

    def finish(self, run: RunRecord, nodes: list[NodeRecord]) -> None:
        self._call("finish", run, nodes)
