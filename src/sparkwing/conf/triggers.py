"""The ``on:`` entry of a pipeline in ``sparkwing.yaml``: push and pull-request filters and
cron schedules, parsed strictly (unknown keys, a bad cron or an unknown time zone is one
error naming the file, line and key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

# Parsing needs the YAML loader; the parsed values (kept by conf.parsecache) do not, so a run
# whose project file is unchanged never imports it.
if TYPE_CHECKING:
    from yaml.nodes import Node

    from sparkwing.conf.yamlload import Entry, Reader

ON_KEYS: tuple[str, ...] = ("push", "pull_request", "schedule")
PUSH_KEYS: tuple[str, ...] = ("branches", "tags", "paths")
PULL_REQUEST_KEYS: tuple[str, ...] = ("branches", "paths", "types")
SCHEDULE_KEYS: tuple[str, ...] = ("cron", "timezone")
# Pull-request actions a filter may name (GitLab's merge-request actions are mapped onto them).
PULL_REQUEST_TYPES: tuple[str, ...] = (
    "opened",
    "synchronize",
    "reopened",
    "closed",
    "edited",
    "ready_for_review",
)
DEFAULT_PULL_REQUEST_TYPES: tuple[str, ...] = ("opened", "synchronize", "reopened")
DEFAULT_TIMEZONE = "UTC"


@dataclass(frozen=True)
class PushFilter:
    """Which pushes start the pipeline; a list left out (None) does not filter."""

    branches: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    paths: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PullRequestFilter:
    """Which pull requests start the pipeline: ``branches`` are base (target) branches."""

    branches: tuple[str, ...] | None = None
    paths: tuple[str, ...] | None = None
    types: tuple[str, ...] = DEFAULT_PULL_REQUEST_TYPES


@dataclass(frozen=True)
class Schedule:
    """A cron expression (five fields, or ``@daily`` and friends) read in ``timezone``."""

    cron: str
    timezone: str = DEFAULT_TIMEZONE


@dataclass(frozen=True)
class Triggers:
    """What starts a pipeline by itself; None for an event means that event never does."""

    push: PushFilter | None = None
    pull_request: PullRequestFilter | None = None
    schedule: tuple[Schedule, ...] = ()


def parse_on(reader: Reader, node: Node, where: str) -> Triggers | None:
    """The ``on:`` mapping of a pipeline entry (``where`` names the entry)."""
    from sparkwing.conf.yamlload import is_null

    if is_null(node):
        return None
    fields = reader.fields(node, f"{where} on", ON_KEYS)
    push = pull_request = None
    schedule: tuple[Schedule, ...] = ()
    if "push" in fields:
        push_where = f"{where} on.push"
        got = reader.fields(fields["push"].value, push_where, PUSH_KEYS)
        push = PushFilter(
            branches=_patterns(reader, got, "branches", push_where),
            tags=_patterns(reader, got, "tags", push_where),
            paths=_patterns(reader, got, "paths", push_where),
        )
    if "pull_request" in fields:
        pr_where = f"{where} on.pull_request"
        got = reader.fields(fields["pull_request"].value, pr_where, PULL_REQUEST_KEYS)
        types = _types(reader, got["types"].value, pr_where) if "types" in got else None
        pull_request = PullRequestFilter(
            branches=_patterns(reader, got, "branches", pr_where),
            paths=_patterns(reader, got, "paths", pr_where),
            types=types or DEFAULT_PULL_REQUEST_TYPES,
        )
    if "schedule" in fields:
        schedule = _schedules(reader, fields["schedule"].value, f"{where} on.schedule")
    if push is None and pull_request is None and not schedule:
        return None
    return Triggers(push=push, pull_request=pull_request, schedule=schedule)


def _strings(reader: Reader, node: Node, where: str) -> tuple[str, ...]:
    items = reader.sequence(node, where)
    if not items:
        raise reader.error(node, f"{where} is an empty list (leave it out to match everything)")
    out = []
    for item in items:
        value = reader.string(item, f"{where} entries")
        if value is None or value in ("", "!"):
            raise reader.error(item, f"{where} has an empty pattern")
        out.append(value)
    return tuple(out)


def _patterns(
    reader: Reader, fields: dict[str, Entry], key: str, where: str
) -> tuple[str, ...] | None:
    entry = fields.get(key)
    return None if entry is None else _strings(reader, entry.value, f"{where}.{key}")


def _types(reader: Reader, node: Node, where: str) -> tuple[str, ...]:
    values = _strings(reader, node, f"{where}.types")
    for value in values:
        if value not in PULL_REQUEST_TYPES:
            raise reader.error(
                node,
                f"{where}.types: unknown type {value!r} "
                f"(expected one of: {', '.join(PULL_REQUEST_TYPES)})",
            )
    return values


def _schedules(reader: Reader, node: Node, where: str) -> tuple[Schedule, ...]:
    items = reader.sequence(node, where)
    if not items:
        raise reader.error(node, f"{where} is an empty list")
    out = []
    for index, item in enumerate(items):
        item_where = f"{where}[{index}]"
        got = reader.fields(item, item_where, SCHEDULE_KEYS)
        if "cron" not in got:
            raise reader.error(item, f'{item_where} is missing required key "cron"')
        cron = reader.string(got["cron"].value, f"{item_where}.cron") or ""
        problem = cron_problem(cron)
        if problem:
            raise reader.error(got["cron"].value, f"{item_where}.cron {cron!r}: {problem}")
        timezone = DEFAULT_TIMEZONE
        if "timezone" in got:
            timezone = reader.string(got["timezone"].value, f"{item_where}.timezone") or ""
            problem = timezone_problem(timezone)
            if problem:
                raise reader.error(
                    got["timezone"].value, f"{item_where}.timezone {timezone!r}: {problem}"
                )
        out.append(Schedule(cron=cron, timezone=timezone))
    return tuple(out)


def cron_problem(cron: str) -> str | None:
    """Why ``cron`` is not a schedule we accept (None when it is)."""
    from croniter import croniter

    text = cron.strip()
    if not text:
        return "empty cron expression"
    if not text.startswith("@") and len(text.split()) != 5:
        return "a cron expression has five fields (minute hour day month weekday)"
    if not croniter.is_valid(text):
        return "not a valid cron expression"
    return None


def timezone_problem(name: str) -> str | None:
    """Why ``name`` is not an IANA time zone this machine knows (None when it is)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not name:
        return "empty time zone"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return "unknown time zone (use an IANA name such as Europe/Paris or UTC)"
    return None
