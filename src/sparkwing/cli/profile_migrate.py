"""``sparkwing profile migrate``: print the ``profiles:`` a legacy ``backends.yaml`` becomes,
or (``--write``) merge them into ``sparkwing.yaml`` keeping the rest of its text, then
rename the legacy file to ``backends.yaml.migrated``."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sparkwing.cli.common import emit_json, workdir
from sparkwing.cli.profileinfo import group_option, output_option

if TYPE_CHECKING:
    from yaml.nodes import Node

    from sparkwing.conf.migrate import LegacyConfig
    from sparkwing.conf.project import Project


def _block(entries: dict[str, Any], indent: int) -> str:
    """``entries`` as block YAML, every line indented by ``indent``; ends with a newline."""
    import yaml

    dumped: str = yaml.safe_dump(
        entries, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    pad = " " * indent
    return "".join(pad + line if line.strip() else line for line in dumped.splitlines(True))


def _replace_value(text: str, node: Node, block: str) -> str:
    """``text`` with the flow or empty value ``node`` replaced by ``block`` on the lines
    after its key."""
    start, stop = int(node.start_mark.index), int(node.end_mark.index)
    return text[:start].rstrip(" \t") + "\n" + block.rstrip("\n") + text[stop:]


def add_top_entries(text: str, file: Path, key: str, entries: dict[str, Any]) -> str:
    """``text`` of ``file`` with ``entries`` added to its top-level mapping ``key`` (created
    when missing). Everything else in the text is kept as it was, comments included."""
    from yaml.nodes import MappingNode, ScalarNode

    from sparkwing.cli.scaffold import _end_of
    from sparkwing.conf.yamlload import Reader, compose_text, is_null
    from sparkwing.errors import ConfigError

    root = compose_text(text, file)
    if text and not text.endswith("\n"):
        text += "\n"
    if is_null(root):
        return text + f"{key}:\n" + _block(entries, 2)
    if not isinstance(root, MappingNode) or root.flow_style:
        raise ConfigError(
            f"{file}: cannot merge into this file automatically (its top level is not a "
            "block mapping); add the printed block by hand"
        )
    col = int(root.start_mark.column)
    found = [v for k, v in root.value if isinstance(k, ScalarNode) and k.value == key]
    if not found:
        return text + f"{' ' * col}{key}:\n" + _block(entries, col + 2)
    node = found[0]
    if is_null(node):
        return _replace_value(text, node, _block(entries, col + 2))
    if not isinstance(node, MappingNode):
        raise ConfigError(f"{file}: {key} must be a mapping")
    if node.flow_style or not node.value:
        existing = Reader(file).value(node, key)
        return _replace_value(text, node, _block({**existing, **entries}, col + 2))
    indent = int(node.value[0][0].start_mark.column)
    end = _end_of(node)
    if text[end - 1 : end] == "\n":
        at = end
    else:
        newline = text.find("\n", end)
        at = newline + 1 if newline >= 0 else len(text)
    return text[:at] + _block(entries, indent) + text[at:]


def _comparable(project: Project) -> tuple[Any, ...]:
    """What a merge must keep: pipelines and defaults, ignoring where they sit in the text."""
    from sparkwing.conf.migrate import profile_data

    pipelines = [dataclasses.replace(p, line=0) for p in project.pipelines]
    profiles = {n: profile_data(p, redact=False) for n, p in project.profiles.items()}
    return pipelines, project.defaults.profile, project.defaults.args, profiles


def merged_project_text(legacy: LegacyConfig, text: str) -> tuple[str, list[str]]:
    """The project file's new text and warnings; refuses name clashes and any merge that
    would change something besides adding the migrated profiles."""
    from sparkwing.conf.migrate import profile_data
    from sparkwing.conf.project import parse_project
    from sparkwing.errors import ConfigError

    file = legacy.project_file
    before = parse_project(text, file)
    clashes = sorted(set(before.profiles) & set(legacy.profiles))
    if clashes:
        names = ", ".join(f'"{n}"' for n in clashes)
        raise ConfigError(
            f"{file}: cannot migrate {legacy.file.name}: profile(s) {names} already exist in "
            f"{file.name}; rename or remove them there first (nothing was changed)"
        )
    warnings = []
    new = text
    profiles = {n: profile_data(p, redact=False) for n, p in legacy.profiles.items()}
    if profiles:
        new = add_top_entries(new, file, "profiles", profiles)
    default = legacy.default_profile
    if default is not None and before.defaults.profile:
        warnings.append(
            f'{file}: defaults.profile stays "{before.defaults.profile}"; the legacy defaults: '
            f'are the profile "{default}" (select it with --profile {default})'
        )
    elif default is not None:
        new = add_top_entries(new, file, "defaults", {"profile": default})
    after = parse_project(new, file)
    expected = dataclasses.replace(
        before,
        profiles={**before.profiles, **legacy.profiles},
        defaults=dataclasses.replace(before.defaults, profile=before.defaults.profile or default),
    )
    if _comparable(after) != _comparable(expected):
        raise ConfigError(
            f"{file}: could not merge the migrated profiles safely; add the block printed by "
            "`sparkwing profile migrate` by hand (nothing was changed)"
        )
    return new, warnings


@click.command("migrate")
@click.option(
    "--write",
    is_flag=True,
    help="Merge the profiles into .sparkwing/sparkwing.yaml and rename backends.yaml to "
    "backends.yaml.migrated (without it, only print them).",
)
@output_option
@click.pass_context
def migrate_cmd(ctx: click.Context, write: bool, output: str | None) -> None:
    """Convert a legacy .sparkwing/backends.yaml (`defaults:` and `environments:`) into
    profiles: each environment becomes a profile, `defaults:` the profile `default` (and
    `defaults.profile: default`). Other legacy files (pipelines.yaml, runners.yaml,
    sources.yaml) are named for folding by hand."""
    from sparkwing.conf.migrate import BACKENDS_FILE, other_legacy_files, read_legacy, render
    from sparkwing.conf.project import find_project_dir
    from sparkwing.errors import UsageError

    output = group_option(ctx, "output", output)
    start = workdir(ctx)
    project_dir = find_project_dir(start)
    if project_dir is None:
        raise UsageError(f"no .sparkwing/ folder found in {start} or any parent")
    doc: dict[str, Any] = {
        "legacy_file": None,
        "project_file": str(project_dir / "sparkwing.yaml"),
        "profiles": {},
        "defaults_profile": None,
        "yaml": "",
        "written": False,
        "renamed_to": None,
        "manual": [str(p) for p in other_legacy_files(project_dir)],
        "warnings": [],
    }
    if not (project_dir / BACKENDS_FILE).exists():
        _report(doc, output, f"nothing to convert: no {BACKENDS_FILE} in {project_dir}")
        return
    legacy = read_legacy(project_dir)
    doc.update(
        legacy_file=str(legacy.file),
        profiles=_redacted_profiles(legacy),
        defaults_profile=legacy.default_profile,
        yaml=render(legacy, redact=True),
        warnings=list(legacy.warnings),
    )
    if write:
        doc["warnings"] += _write(legacy)
        doc.update(written=True, renamed_to=str(legacy.migrated_name))
        names = ", ".join(legacy.profiles) or "none"
        message = (
            f"added profiles ({names}) to {legacy.project_file}; "
            f"renamed {legacy.file.name} to {legacy.migrated_name.name}"
        )
    else:
        message = _preview(legacy, doc["yaml"])
    _report(doc, output, message)


def _redacted_profiles(legacy: LegacyConfig) -> dict[str, Any]:
    from sparkwing.conf.migrate import profile_data

    return {n: profile_data(p, redact=True) for n, p in legacy.profiles.items()}


def _write(legacy: LegacyConfig) -> list[str]:
    from sparkwing.cli.scaffold import write_atomic
    from sparkwing.conf.migrate import holds_credentials
    from sparkwing.conf.yamlload import read_text
    from sparkwing.errors import ConfigError
    from sparkwing.paths import user_profiles_file

    target = legacy.migrated_name
    if target.exists():
        raise ConfigError(
            f"{target}: already exists; move it away before migrating {legacy.file.name} again"
        )
    file = legacy.project_file
    text = read_text(file) if file.exists() else ""
    new, warnings = merged_project_text(legacy, text)
    write_atomic(file, new)
    os.rename(legacy.file, target)
    for name, profile in legacy.profiles.items():
        if holds_credentials(profile):
            warnings.append(
                f'{file}: profile "{name}" holds a token or database URL in the project file; '
                f"move it to {user_profiles_file()} or use token_env / url_source"
            )
    return warnings


def _preview(legacy: LegacyConfig, yaml_text: str) -> str:
    from sparkwing.conf.migrate import REDACTED

    lines = [
        f"# Converted from {legacy.file}.",
        f"# Add it to {legacy.project_file}, or run `sparkwing profile migrate --write`",
        f"# to merge it there and rename {legacy.file.name}.",
    ]
    if REDACTED in yaml_text:
        lines.append(f"# Tokens and database URLs show as {REDACTED}; --write keeps the real ones.")
    return "\n".join(lines) + "\n" + yaml_text.rstrip("\n")


def _report(doc: dict[str, Any], output: str | None, message: str) -> None:
    for warning in doc["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    if doc["manual"]:
        names = ", ".join(Path(p).name for p in doc["manual"])
        click.echo(
            f"warning: {names} cannot be converted automatically: fold them into "
            "sparkwing.yaml by hand and delete them (sparkwing refuses the project until then)",
            err=True,
        )
    if output == "json":
        emit_json(doc)
    else:
        click.echo(message)
