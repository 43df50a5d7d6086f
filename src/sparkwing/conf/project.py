"""Finding ``.sparkwing/`` and strictly parsing its ``sparkwing.yaml`` (SPEC section 3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkwing.conf.model import Defaults, PipelineEntry, ProfileDef
from sparkwing.conf.parsecache import cached_parse
from sparkwing.errors import ConfigError, InvalidKeyError, UsageError
from sparkwing.ids import check_labels, check_segment

# The YAML parser is imported only when a file is parsed: a run whose project file is
# unchanged since it was last parsed (see parsecache) never loads it.
if TYPE_CHECKING:
    from yaml.nodes import Node

    from sparkwing.conf.yamlload import Entry, Reader

PROJECT_DIR = ".sparkwing"
PROJECT_FILE = "sparkwing.yaml"
LEGACY_FILES: tuple[str, ...] = ("backends.yaml", "pipelines.yaml", "runners.yaml", "sources.yaml")
TOP_KEYS: tuple[str, ...] = ("defaults", "profiles", "pipelines")
DEFAULTS_KEYS: tuple[str, ...] = ("profile", "args", "retention")
PIPELINE_KEYS: tuple[str, ...] = (
    "name",
    "entrypoint",
    "profile",
    "description",
    "args",
    "requires",
    "on",
    "concurrency",
)


@dataclass(frozen=True)
class Project:
    """A project: ``root`` holds ``.sparkwing/`` (``dir``); ``file`` may not exist."""

    root: Path
    dir: Path
    file: Path
    pipelines: list[PipelineEntry] = field(default_factory=list)
    defaults: Defaults = field(default_factory=Defaults)
    profiles: dict[str, ProfileDef] = field(default_factory=dict)

    def pipeline(self, name: str) -> PipelineEntry | None:
        return next((p for p in self.pipelines if p.name == name), None)


def find_project_dir(cwd: Path, explicit_dir: Path | None = None) -> Path | None:
    """The nearest ``.sparkwing/`` at or above ``cwd`` (or ``explicit_dir``, from ``-C``)."""
    start = cwd
    if explicit_dir is not None:
        start = cwd / explicit_dir
        if not start.is_dir():
            raise UsageError(f"-C {explicit_dir}: no such directory")
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / PROJECT_DIR
        if candidate.is_dir():
            return candidate
    return None


def legacy_files(project_dir: Path) -> list[Path]:
    """Pre-0.5 config files still present in ``project_dir`` (``sparkwing profile migrate``)."""
    return [project_dir / name for name in LEGACY_FILES if (project_dir / name).exists()]


def find_project(cwd: Path, explicit_dir: Path | None = None) -> Project | None:
    """The project around ``cwd``, parsed; None when there is no ``.sparkwing/`` above it."""
    project_dir = find_project_dir(cwd, explicit_dir)
    if project_dir is None:
        return None
    legacy = legacy_files(project_dir)
    if legacy:
        names = ", ".join(p.name for p in legacy)
        raise ConfigError(
            f"{legacy[0]}: legacy config file(s) {names} in {project_dir}: fold them into "
            f"{PROJECT_FILE} (`sparkwing profile migrate` prints the converted config)"
        )
    return load_project(project_dir)


def load_project(project_dir: Path) -> Project:
    """Parse ``project_dir/sparkwing.yaml``; a missing file is an empty project."""
    file = project_dir / PROJECT_FILE
    if not file.exists():
        return Project(root=file.parent.parent, dir=file.parent, file=file)
    return cached_parse(file, _read_project)


def _read_project(file: Path) -> Project:
    from sparkwing.conf.yamlload import read_text

    return parse_project(read_text(file), file)


def parse_project(text: str, file: Path) -> Project:
    """Parse the text of a project file that lives (or would live) at ``file``."""
    from sparkwing.conf.specs import parse_profiles
    from sparkwing.conf.yamlload import Reader, compose_text

    reader = Reader(file, strict=True)
    root = compose_text(text, file)
    entries = reader.fields(root, "the top level", TOP_KEYS)
    defaults = Defaults()
    if "defaults" in entries:
        defaults = _defaults(reader, entries["defaults"].value)
    profiles = {}
    if "profiles" in entries:
        profiles = parse_profiles(reader, entries["profiles"].value)
    pipelines = []
    if "pipelines" in entries:
        pipelines = _pipelines(reader, entries["pipelines"].value)
    return Project(
        root=file.parent.parent,
        dir=file.parent,
        file=file,
        pipelines=pipelines,
        defaults=defaults,
        profiles=profiles,
    )


def _defaults(reader: Reader, node: Node) -> Defaults:
    from sparkwing.conf.yamlload import line_of

    fields = reader.fields(node, "defaults", DEFAULTS_KEYS)
    profile, line = None, 0
    if "profile" in fields:
        profile = reader.string(fields["profile"].value, "defaults.profile") or None
        line = line_of(fields["profile"].key_node)
    args = _args(reader, fields["args"].value, "defaults.args") if "args" in fields else {}
    retention = None
    if "retention" in fields:
        from sparkwing.conf.retention import parse_retention

        retention = parse_retention(reader, fields["retention"].value)
    return Defaults(profile=profile, args=args, profile_line=line, retention=retention)


def _pipelines(reader: Reader, node: Node) -> list[PipelineEntry]:
    from sparkwing.conf.yamlload import line_of

    out: list[PipelineEntry] = []
    first_line: dict[str, int] = {}
    for index, item in enumerate(reader.sequence(node, "pipelines")):
        entries = reader.mapping(item, f"pipelines[{index}]")
        by_key = {e.key: e for e in entries}
        name = _required(reader, item, by_key, "name", f"pipelines[{index}]")
        where = f'pipeline "{name}"'
        try:
            check_segment(name, "pipeline name")
        except InvalidKeyError as exc:
            raise reader.error(by_key["name"].value, str(exc)) from None
        if name in first_line:
            raise reader.error(
                by_key["name"].value,
                f'duplicate pipeline name "{name}" (first at line {first_line[name]})',
            )
        first_line[name] = line_of(item)
        reader.check_keys(entries, where, PIPELINE_KEYS)
        entrypoint = _required(reader, item, by_key, "entrypoint", where)
        profile = description = None
        if "profile" in by_key:
            profile = reader.string(by_key["profile"].value, f"{where} profile") or None
        if "description" in by_key:
            description = reader.string(by_key["description"].value, f"{where} description")
        args = _args(reader, by_key["args"].value, f"{where} args") if "args" in by_key else {}
        requires: tuple[str, ...] = ()
        if "requires" in by_key:
            requires = _labels(reader, by_key["requires"].value, f"{where} requires")
        on = None
        if "on" in by_key:
            from sparkwing.conf.triggers import parse_on

            on = parse_on(reader, by_key["on"].value, where)
        concurrency = None
        if "concurrency" in by_key:
            from sparkwing.conf.concurrency import parse_concurrency

            concurrency = parse_concurrency(reader, by_key["concurrency"], where)
        out.append(
            PipelineEntry(
                name=name,
                entrypoint=entrypoint,
                profile=profile,
                description=description,
                args=args,
                requires=requires,
                line=line_of(item),
                on=on,
                concurrency=concurrency,
            )
        )
    return out


def _required(reader: Reader, item: Node, by_key: dict[str, Entry], key: str, where: str) -> str:
    entry = by_key.get(key)
    if entry is None:
        raise reader.error(item, f'{where} is missing required key "{key}"')
    value = reader.string(entry.value, f"{where} {key}")
    if not value:
        raise reader.error(item, f'{where} has an empty "{key}"')
    return value


def _labels(reader: Reader, node: Node, where: str) -> tuple[str, ...]:
    """Runner labels a queued run of the pipeline needs of its worker."""
    labels = []
    for item in reader.sequence(node, where):
        label = reader.string(item, where)
        try:
            labels += check_labels([label or ""], f"{where} label")
        except InvalidKeyError as exc:
            raise reader.error(item, str(exc)) from None
    return tuple(sorted(set(labels)))


def _args(reader: Reader, node: Node, where: str) -> dict[str, Any]:
    return {e.key: reader.value(e.value, where) for e in reader.mapping(node, where)}
