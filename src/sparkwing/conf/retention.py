"""The ``defaults.retention`` block of the project file: how long finished runs are kept
(``max_age``), how many of each pipeline survive whatever their age (``keep_last``) and
how often a controller applies it (``interval``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sparkwing.errors import PlanError

# Parsing needs the YAML loader; the parsed value (kept by conf.parsecache) does not, so a
# run whose project file is unchanged never imports it.
if TYPE_CHECKING:
    from yaml.nodes import Node

    from sparkwing.conf.yamlload import Reader

RETENTION_KEYS: tuple[str, ...] = ("max_age", "keep_last", "interval")
DEFAULT_INTERVAL_SECONDS = 3600.0


@dataclass(frozen=True)
class Retention:
    """Seconds for the durations; None where the file does not set the rule."""

    max_age: float | None = None
    keep_last: int | None = None
    interval: float = DEFAULT_INTERVAL_SECONDS
    line: int = 0


def parse_retention(reader: Reader, node: Node) -> Retention:
    from sparkwing.conf.yamlload import line_of
    from sparkwing.sdk.durations import parse_duration

    where = "defaults.retention"
    fields = reader.fields(node, where, RETENTION_KEYS)
    values: dict[str, float | None] = {"max_age": None, "interval": DEFAULT_INTERVAL_SECONDS}
    for key in ("max_age", "interval"):
        if key not in fields:
            continue
        raw = reader.value(fields[key].value, f"{where}.{key}")
        try:
            if not isinstance(raw, str | int | float) or isinstance(raw, bool):
                raise PlanError(f"{where}.{key}: expected a duration like '90d', got {raw!r}")
            seconds = parse_duration(raw, f"{where}.{key}")
        except PlanError as exc:
            raise reader.error(fields[key].value, str(exc)) from None
        if seconds <= 0:
            raise reader.error(fields[key].value, f"{where}.{key} must be longer than 0s")
        values[key] = seconds
    keep_last = None
    if "keep_last" in fields:
        raw = reader.value(fields["keep_last"].value, f"{where}.keep_last")
        if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
            raise reader.error(
                fields["keep_last"].value,
                f"{where}.keep_last must be a whole number of runs (0 or more), got {raw!r}",
            )
        keep_last = raw
    if values["max_age"] is None and keep_last is None:
        raise reader.error(node, f"{where} needs max_age, keep_last or both")
    interval = values["interval"]
    assert interval is not None
    return Retention(
        max_age=values["max_age"], keep_last=keep_last, interval=interval, line=line_of(node)
    )


# The JSON Schema of the block (conf/schema.py puts it under defaults).
SCHEMA = {
    "type": "object",
    "description": "Which finished runs `sparkwing runs prune`, `doctor --fix` and a controller "
    "remove, with their logs, memo entries and unreferenced artifacts.",
    "properties": {
        "max_age": {
            "type": ["string", "number"],
            "description": "Prune finished runs created longer ago than this (90d, 12h, seconds).",
        },
        "keep_last": {
            "type": "integer",
            "minimum": 0,
            "description": "Always keep this many newest finished runs of each pipeline.",
        },
        "interval": {
            "type": ["string", "number"],
            "description": "How often a controller applies the policy (default 1h).",
        },
    },
    "anyOf": [{"required": ["max_age"]}, {"required": ["keep_last"]}],
    "additionalProperties": False,
}
