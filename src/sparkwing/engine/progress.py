"""Which display a run's progress gets: the ``-o`` mode, and for plain or terminal output
inside GitHub Actions or Buildkite, that CI's log groups (:mod:`sparkwing.engine.cidisplay`)."""

from __future__ import annotations

from sparkwing.engine.display import Display, JsonDisplay, PlainDisplay, TtyDisplay


def make_display(mode: str) -> Display:
    if mode == "json":
        return JsonDisplay()
    if mode == "quiet":
        return Display()
    from sparkwing.engine.cidisplay import GroupedDisplay, ci_kind

    kind = ci_kind()
    if kind is not None:
        return GroupedDisplay(kind)
    if mode == "tty":
        return TtyDisplay()
    return PlainDisplay()
