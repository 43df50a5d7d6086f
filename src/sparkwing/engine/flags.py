"""The engine's own flags of a run (``--sw-parallel 2``, ``-o quiet`` ...), described once for
``sparkwing run``'s options and for a queued run's arguments, and the one scraper that pulls
such flags out of the arguments after a pipeline's name (the rest are its inputs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sparkwing.errors import UsageError


@dataclass(frozen=True)
class Flag:
    """One option: its spellings, where its value goes, and how a value is checked."""

    opts: tuple[str, ...]
    dest: str
    help: str = ""
    metavar: str | None = None
    is_flag: bool = False
    multiple: bool = False
    choices: tuple[str, ...] | None = None
    minimum: int | None = None
    default: Any = None

    def convert(self, value: str) -> Any:
        name = self.opts[-1]
        if self.choices is not None and value not in self.choices:
            raise UsageError(f"{name}: {value!r} is not one of {', '.join(self.choices)}")
        if self.minimum is not None:
            try:
                number = int(value)
            except ValueError:
                raise UsageError(f"{name}: {value!r} is not a whole number") from None
            if number < self.minimum:
                raise UsageError(f"{name}: {number} is less than {self.minimum}")
            return number
        return value


RUN_FLAGS: tuple[Flag, ...] = (
    Flag(
        ("--sw-parallel",),
        "parallel",
        "Run at most N jobs at once (default: CPU count).",
        metavar="N",
        minimum=1,
    ),
    Flag(
        ("-o", "--output"),
        "output",
        "Progress: live on a terminal, plain lines otherwise; json prints one "
        "document with the run and its jobs at the end.",
        choices=("auto", "plain", "json", "quiet"),
        default="auto",
    ),
    Flag(
        ("--sw-pause-before",),
        "pause_before",
        "Pause before JOB starts, until `sparkwing runs resume` (repeatable).",
        metavar="JOB",
        multiple=True,
    ),
    Flag(
        ("--sw-pause-on-failure",),
        "pause_on_failure",
        "Pause a job that failed (after its retries) with its workspace kept; "
        "`sparkwing runs resume` runs it again, `--abort` cancels the run.",
        is_flag=True,
    ),
    Flag(
        ("--sw-no-bundle-cache",),
        "no_bundle_cache",
        "Rebuild the pipeline bundle (reinstall its requirements) instead of reusing one.",
        is_flag=True,
    ),
    Flag(
        ("--sw-dispatch",),
        "dispatch",
        "Send every job to `sparkwing worker`s sharing this profile's state (a job whose "
        ".requires() labels this machine lacks goes to one anyway).",
        is_flag=True,
    ),
    Flag(
        ("--sw-label",),
        "labels",
        "A label this machine has (repeatable; also SPARKWING_LABELS): jobs that "
        ".requires() only such labels run here.",
        metavar="LABEL",
        multiple=True,
    ),
)

PROFILE_FLAG = Flag(("--profile",), "profile", metavar="NAME")

# Engine flags start with this; an unknown one is an error rather than a pipeline input.
ENGINE_PREFIX = "--sw-"


def by_spelling(flags: Sequence[Flag]) -> dict[str, Flag]:
    return {spelling: flag for flag in flags for spelling in flag.opts}


def take_flags(
    args: Sequence[str],
    flags: Mapping[str, Flag],
    options: dict[str, Any],
    *,
    convert: Callable[[Flag, str], Any] | None = None,
    reserved: str | None = ENGINE_PREFIX,
) -> list[str]:
    """Pull ``flags`` (by spelling) out of ``args`` into ``options`` (they win over values
    already there, a repeatable one adds to them) and return the other arguments in order.

    ``convert`` checks a value (default: the flag's own check); an argument starting with
    ``reserved`` that is not one of ``flags`` is an error, not an input."""
    check = convert or (lambda flag, value: flag.convert(value))
    rest: list[str] = []
    i = 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        flag = flags.get(name)
        if flag is None:
            if reserved and name.startswith(reserved):
                own = ", ".join(sorted(f for f in flags if f.startswith(reserved)))
                raise UsageError(f"unknown engine flag {name} (engine flags: {own})")
            rest.append(args[i])
            i += 1
            continue
        if flag.is_flag:
            options[flag.dest] = True
        else:
            if not eq:
                if i + 1 >= len(args):
                    raise UsageError(f"option {name} requires a value")
                i += 1
                value = args[i]
            converted = check(flag, value)
            if flag.multiple:
                options[flag.dest] = (*options.get(flag.dest, ()), converted)
            else:
                options[flag.dest] = converted
        i += 1
    return rest


def defaults(flags: Sequence[Flag]) -> dict[str, Any]:
    """Each flag's value when it is not given."""
    return {f.dest: (() if f.multiple else False if f.is_flag else f.default) for f in flags}
