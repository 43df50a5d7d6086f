"""The user profiles file (``profiles.yaml``): same profile schema as the project file, but
unknown keys are warnings, not errors, so an older sparkwing can read a newer file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sparkwing.conf.model import ProfileDef
from sparkwing.conf.parsecache import cached_parse

USER_TOP_KEYS: tuple[str, ...] = ("profiles",)


@dataclass(frozen=True)
class UserProfiles:
    """Profiles from ``file`` (which may not exist) and ``file:line: ...`` warnings to print."""

    file: Path
    profiles: dict[str, ProfileDef] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def load_user_profiles(path: Path | None = None) -> UserProfiles:
    """Read the user profiles file (default: :func:`sparkwing.paths.user_profiles_file`)."""
    if path is None:
        from sparkwing.paths import user_profiles_file

        path = user_profiles_file()
    if not path.exists():
        return UserProfiles(file=path)
    return cached_parse(path, _read_user_profiles)


def _read_user_profiles(file: Path) -> UserProfiles:
    from sparkwing.conf.yamlload import read_text

    return parse_user_profiles(read_text(file), file)


def parse_user_profiles(text: str, file: Path) -> UserProfiles:
    # The YAML parser only when a file is parsed (see load_user_profiles).
    from sparkwing.conf.specs import parse_profiles
    from sparkwing.conf.yamlload import Reader, compose_text

    reader = Reader(file, strict=False)
    root = compose_text(text, file)
    entries = reader.fields(root, "the top level", USER_TOP_KEYS)
    profiles = parse_profiles(reader, entries["profiles"].value) if "profiles" in entries else {}
    return UserProfiles(file=file, profiles=profiles, warnings=reader.warnings())
