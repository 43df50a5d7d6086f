"""Reading a legacy ``.sparkwing/backends.yaml`` (sparkwing < 0.5: ``defaults:`` and
``environments:``) as the equivalent ``profiles:``, for ``sparkwing profile migrate``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from yaml.nodes import MappingNode, ScalarNode

from sparkwing.conf.model import ControllerDef, ProfileDef
from sparkwing.conf.project import LEGACY_FILES, PROJECT_FILE
from sparkwing.conf.resolved import SURFACES
from sparkwing.conf.specs import SPEC_KEYS, parse_profiles
from sparkwing.conf.yamlload import Reader, compose_text, is_null, read_text
from sparkwing.errors import ConfigError
from sparkwing.surfaces import registry
from sparkwing.surfaces.spec import SurfaceSpec

BACKENDS_FILE = "backends.yaml"
LEGACY_TOP_KEYS: tuple[str, ...] = ("defaults", "environments")
DEFAULT_PROFILE = "default"
MIGRATED_SUFFIX = ".migrated"
REDACTED = "<redacted>"

_MAP_TAG = "tag:yaml.org,2002:map"
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True)
class LegacyConfig:
    """What ``backends.yaml`` converts to. ``default_profile`` is set when it had
    ``defaults:``; ``manual`` are the other legacy files, which need folding by hand."""

    file: Path
    project_file: Path
    profiles: dict[str, ProfileDef] = field(default_factory=dict)
    default_profile: str | None = None
    manual: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def migrated_name(self) -> Path:
        return self.file.with_name(self.file.name + MIGRATED_SUFFIX)


def other_legacy_files(project_dir: Path) -> list[Path]:
    """Legacy files besides ``backends.yaml``: nothing converts them automatically."""
    names = [n for n in LEGACY_FILES if n != BACKENDS_FILE]
    return [project_dir / n for n in names if (project_dir / n).exists()]


def read_legacy(project_dir: Path) -> LegacyConfig:
    """Parse ``project_dir/backends.yaml``; each ``environments:`` entry becomes a profile and
    ``defaults:`` a profile named ``default``. Specs are validated exactly as profiles are,
    with errors naming the legacy file and line; keys with no equivalent become warnings."""
    file = project_dir / BACKENDS_FILE
    reader = Reader(file, strict=False)
    root = compose_text(read_text(file), file)
    top = reader.fields(root, "the top level", LEGACY_TOP_KEYS)
    profiles: dict[str, ProfileDef] = {}
    default_profile = None
    if "defaults" in top and not is_null(top["defaults"].value):
        entry = top["defaults"]
        # `defaults:` has a profile's shape: parse it as a one-entry `profiles:` mapping.
        key = ScalarNode(
            _STR_TAG, DEFAULT_PROFILE, entry.key_node.start_mark, entry.key_node.end_mark
        )
        wrapped = MappingNode(
            _MAP_TAG, [(key, entry.value)], entry.value.start_mark, entry.value.end_mark
        )
        profiles.update(parse_profiles(reader, wrapped))
        default_profile = DEFAULT_PROFILE
    if "environments" in top:
        environments = parse_profiles(reader, top["environments"].value)
        if DEFAULT_PROFILE in environments and default_profile is not None:
            raise ConfigError(
                f"{file}:{environments[DEFAULT_PROFILE].line}: environment "
                f'"{DEFAULT_PROFILE}" clashes with the profile made from defaults: '
                "(rename the environment first)"
            )
        profiles.update(environments)
    warnings = [f"{w} (not migrated)" for w in reader.warnings()]
    return LegacyConfig(
        file=file,
        project_file=project_dir / PROJECT_FILE,
        profiles=profiles,
        default_profile=default_profile,
        manual=other_legacy_files(project_dir),
        warnings=warnings,
    )


def _safe_url(url: str) -> str:
    """A controller URL without any user:password part."""
    try:
        parts = urlsplit(url)
        has_userinfo = parts.username is not None or parts.password is not None
    except ValueError:
        return REDACTED
    return REDACTED if has_userinfo else url


def spec_data(spec: SurfaceSpec, controller: ControllerDef | None, redact: bool) -> dict[str, Any]:
    """``spec`` as it would be written in a ``profiles:`` entry. Values a controller spec
    inherited from the profile's ``controller:`` are left out again."""
    out: dict[str, Any] = {}
    for key in SPEC_KEYS:
        value = getattr(spec, key)
        if value is None:
            continue
        if spec.type in registry.types_with("controller") and controller is not None:
            inherited = {"url": controller.url, "token": controller.token}
            inherited["token_env"] = controller.token_env
            if key in inherited and inherited[key] == value:
                continue
        if redact and key == "token":
            value = REDACTED
        elif redact and key == "url":
            value = REDACTED if spec.type in registry.types_with("dsn") else _safe_url(value)
        out[key] = value
    if spec.binaries is not None:
        out["binaries"] = spec_data(spec.binaries, controller, redact)
    return out


def profile_data(profile: ProfileDef, redact: bool) -> dict[str, Any]:
    """A profile as plain data for YAML/JSON; ``redact`` hides tokens and DSNs."""
    out: dict[str, Any] = {}
    if profile.controller is not None:
        ctl = profile.controller
        data: dict[str, Any] = {"url": _safe_url(ctl.url) if redact else ctl.url}
        if ctl.token is not None:
            data["token"] = REDACTED if redact else ctl.token
        if ctl.token_env is not None:
            data["token_env"] = ctl.token_env
        out["controller"] = data
    for surface in SURFACES:
        spec: SurfaceSpec | None = getattr(profile, surface)
        if spec is not None:
            out[surface] = spec_data(spec, profile.controller, redact)
    return out


def holds_credentials(profile: ProfileDef) -> bool:
    """Whether the profile carries a token or a DSN in clear."""
    if profile.controller is not None and profile.controller.token:
        return True
    specs = [getattr(profile, s) for s in SURFACES]
    return any(
        s is not None and (s.token or (s.url and s.type in registry.types_with("dsn")))
        for s in specs
    )


def render(legacy: LegacyConfig, redact: bool) -> str:
    """The ``profiles:`` block (and ``defaults: {profile: default}``) as YAML text."""
    import yaml

    doc: dict[str, Any] = {
        "profiles": {name: profile_data(p, redact) for name, p in legacy.profiles.items()}
    }
    if legacy.default_profile is not None:
        doc["defaults"] = {"profile": legacy.default_profile}
    text: str = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return text
