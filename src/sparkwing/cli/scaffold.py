"""What ``sparkwing pipeline new`` writes: a small working pipeline module, and its entry in
``sparkwing.yaml`` added to the existing YAML text without disturbing anything else."""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sparkwing.errors import ConfigError

if TYPE_CHECKING:
    from yaml.nodes import Node

# Module names that would shadow what the runner imports (``.sparkwing/`` goes first on
# sys.path): a pipeline called "json" gets ``json_pipeline.py`` instead.
_TAKEN = frozenset(sys.stdlib_module_names) | {"sparkwing", "yaml", "click", "rich", "conftest"}

MODULE_TEMPLATE = '''"""The {name} pipeline: `build`, then `check` once build has succeeded.

Run it with `sparkwing run {name}` (inputs are flags: `--target staging`), and see its
jobs with `sparkwing pipeline describe {name}`.
"""

from dataclasses import dataclass

import sparkwing as sw


@dataclass
class Args:
    """Inputs of the pipeline, given as flags: `sparkwing run {name} --target staging`."""

    target: str = "local"


def build(ctx: sw.Context) -> dict[str, str]:
    ctx.log.info(f"building for {{ctx.args.target}}")
    ctx.sh("echo compiling")
    # A job's return value is recorded with the run and readable by the jobs that need it.
    return {{"artifact": f"app-{{ctx.args.target}}"}}


def check(ctx: sw.Context) -> None:
    artifact = ctx.output("build")["artifact"]
    ctx.sh(f"echo checking {{artifact}}")
    ctx.annotate(f"checked {{artifact}}")


@sw.pipeline("{name}")
class {cls}:
    """{doc}"""

    def plan(self, plan: sw.Plan, args: Args, rc: sw.RunContext) -> None:
        built = plan.job("build", build)
        plan.job("check", check).needs(built)
'''


def module_name(name: str) -> str:
    """The Python module (file stem) for pipeline ``name``."""
    stem = re.sub(r"\W", "_", name)
    if stem[:1].isdigit():
        stem = "p_" + stem
    return stem + "_pipeline" if stem in _TAKEN else stem


def class_name(name: str) -> str:
    """``build-deploy`` -> ``BuildDeploy``."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]
    cls = "".join(w[:1].upper() + w[1:] for w in words) or "Pipeline"
    return "Pipeline" + cls if cls[:1].isdigit() else cls


def module_source(name: str, cls: str, description: str) -> str:
    doc = description.replace("\\", "\\\\").replace('"', '\\"')
    return MODULE_TEMPLATE.format(name=name, cls=cls, doc=doc)


def _scalar(value: str) -> str:
    """``value`` as a YAML scalar that reads back as the same string (JSON quotes if needed)."""
    import yaml

    try:
        plain_ok = yaml.safe_load(value) == value and "\n" not in value and "#" not in value
    except yaml.YAMLError:
        plain_ok = False
    return value if plain_ok and value.strip() == value else json.dumps(value)


def _entry_lines(fields: dict[str, str], dash: int, key: int) -> list[str]:
    items = list(fields.items())
    first = f"{' ' * dash}-{' ' * max(key - dash - 1, 1)}{items[0][0]}: {_scalar(items[0][1])}"
    return [first] + [f"{' ' * key}{k}: {_scalar(v)}" for k, v in items[1:]]


def _end_of(node: Node) -> int:
    """The text index just after the last character of ``node``'s own content (block
    collections' end marks reach past trailing comments; their last scalar does not)."""
    from yaml.nodes import MappingNode, SequenceNode

    if isinstance(node, MappingNode):
        return max((_end_of(part) for pair in node.value for part in pair), default=0)
    if isinstance(node, SequenceNode):
        return max((_end_of(item) for item in node.value), default=0)
    return int(node.end_mark.index)


def add_pipeline_entry(text: str, file: Path, fields: dict[str, str]) -> str:
    """``text`` of ``file`` with ``fields`` (name first) appended to its ``pipelines:`` list,
    creating the list when missing. The result is parsed again before it is returned."""
    from yaml.nodes import MappingNode, ScalarNode

    from sparkwing.conf.project import parse_project
    from sparkwing.conf.yamlload import compose_text, is_null

    root = compose_text(text, file)
    if text and not text.endswith("\n"):
        text += "\n"
    if is_null(root):
        new = text + "pipelines:\n" + "\n".join(_entry_lines(fields, 2, 4)) + "\n"
    elif not isinstance(root, MappingNode) or root.flow_style:
        raise ConfigError(
            f"{file}: cannot add a pipeline to this file automatically "
            "(its top level is not a block mapping); add the entry by hand"
        )
    else:
        found = [v for k, v in root.value if isinstance(k, ScalarNode) and k.value == "pipelines"]
        col = int(root.start_mark.column)
        if not found:
            block = "\n".join(_entry_lines(fields, col + 2, col + 4))
            new = text + f"{' ' * col}pipelines:\n{block}\n"
        else:
            new = _append_to(text, file, found[0], col, fields)
    project = parse_project(new, file)
    added = project.pipeline(fields["name"])
    if added is None or added.entrypoint != fields["entrypoint"]:
        raise ConfigError(f"{file}: could not add the pipeline entry safely; add it by hand")
    return new


def _append_to(text: str, file: Path, node: Node, key_col: int, fields: dict[str, str]) -> str:
    """``text`` with an entry added to the ``pipelines:`` value ``node`` (a block or flow
    list, or empty)."""
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    from sparkwing.conf.yamlload import is_null

    if isinstance(node, SequenceNode) and node.flow_style:
        close = int(node.end_mark.index) - 1
        if text[close] != "]":
            raise ConfigError(f"{file}: cannot find the end of the pipelines list")
        inline = ", ".join(f"{k}: {_scalar(v)}" for k, v in fields.items())
        sep = ", " if node.value else ""
        return text[:close] + f"{sep}{{{inline}}}" + text[close:]
    if isinstance(node, SequenceNode):
        dash = int(node.start_mark.column)
        first = node.value[0]
        key = int(first.start_mark.column) if isinstance(first, MappingNode) else dash + 2
        end = _end_of(node)
        if end > 0 and text[end - 1] == "\n":
            at = end
        else:
            newline = text.find("\n", end)
            at = newline + 1 if newline >= 0 else len(text)
        block = "\n".join(_entry_lines(fields, dash, key)) + "\n"
        return text[:at] + block + text[at:]
    if is_null(node) and isinstance(node, ScalarNode):
        start, stop = int(node.start_mark.index), int(node.end_mark.index)
        block = "\n".join(_entry_lines(fields, key_col + 2, key_col + 4))
        return text[:start].rstrip(" \t") + "\n" + block + text[stop:]
    raise ConfigError(f"{file}: pipelines must be a list")


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step, keeping its permission bits."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
