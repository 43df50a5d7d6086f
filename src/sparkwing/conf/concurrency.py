"""A pipeline entry's ``concurrency:`` (group and on_busy): strict parsing at load, and the
group name of one run, with ``${PIPELINE_NAME}`` and the run's input values substituted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sparkwing.conf.interpolate import TemplateError, parse
from sparkwing.conf.model import ON_BUSY, ConcurrencyDef
from sparkwing.errors import ConfigError, InvalidKeyError
from sparkwing.ids import check_segment

# A run only names its group (group_name); parsing, which needs the YAML loader, imports it.
if TYPE_CHECKING:
    from yaml.nodes import Node

    from sparkwing.conf.yamlload import Entry, Reader

CONCURRENCY_KEYS: tuple[str, ...] = ("group", "on_busy")
PIPELINE_VARIABLE = "PIPELINE_NAME"


def parse_concurrency(reader: Reader, entry: Entry, where: str) -> ConcurrencyDef:
    """``entry`` (the ``concurrency`` key of pipeline entry ``where``) as a ConcurrencyDef."""
    where = f"{where} concurrency"
    fields = reader.fields(entry.value, where, CONCURRENCY_KEYS)
    if "group" not in fields:
        raise reader.error(entry.key_node, f'{where} is missing required key "group"')
    group_node: Node = fields["group"].value
    group = reader.string(group_node, f"{where}.group")
    if not group:
        raise reader.error(group_node, f"{where}.group must not be empty")
    try:
        parse(group, names=None)
    except TemplateError as exc:
        raise reader.error(group_node, f"{where}.group: {exc}") from None
    on_busy = "queue"
    if "on_busy" in fields:
        node = fields["on_busy"].value
        on_busy = reader.string(node, f"{where}.on_busy") or ""
        if on_busy not in ON_BUSY:
            raise reader.error(
                node, f'{where}.on_busy "{on_busy}" must be one of: {", ".join(ON_BUSY)}'
            )
    return ConcurrencyDef(group=group, on_busy=on_busy, where=f"{reader.file}:{_line(entry)}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def group_name(template: str, pipeline: str, inputs: Mapping[str, Any], where: str = "") -> str:
    """The group one run of ``pipeline`` joins: ``${PIPELINE_NAME}`` and ``${INPUT}`` (the
    run's input values) substituted; a variable with no value is a ConfigError naming it."""
    prefix = f"{where}: " if where else ""
    about = f'{prefix}pipeline "{pipeline}" concurrency group "{template}"'
    try:
        parts = parse(template, names=None)
    except TemplateError as exc:
        raise ConfigError(f"{about}: {exc}") from None
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif part[0] == PIPELINE_VARIABLE:
            out.append(pipeline)
        elif part[0] in inputs:
            out.append(_text(inputs[part[0]]))
        else:
            known = ", ".join("${" + n + "}" for n in (PIPELINE_VARIABLE, *sorted(inputs)))
            raise ConfigError(
                f"{about}: unknown variable ${{{part[0]}}} (known here: {known}; "
                "write $$ for a literal $)"
            )
    name = "".join(out)
    try:
        return check_segment(name, "concurrency group")
    except InvalidKeyError as exc:
        raise ConfigError(f"{about}: {exc}") from None


def _line(entry: Entry) -> int:
    from sparkwing.conf.yamlload import line_of

    return line_of(entry.key_node)
