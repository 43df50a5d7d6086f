"""Profile resolution (SPEC section 3 "Resolution" 1-6): which spec each surface uses for a
run, and why. Specs stay uninterpolated; the engine applies ``interpolate_spec``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sparkwing.conf.interpolate import escape
from sparkwing.conf.model import ProfileDef
from sparkwing.conf.profiles import UserProfiles, load_user_profiles
from sparkwing.conf.project import Project
from sparkwing.conf.resolved import SURFACES, ResolvedProfile
from sparkwing.errors import ConfigError
from sparkwing.surfaces.secrets.base import SecretStore
from sparkwing.surfaces.spec import SurfaceSpec

BUILTIN_NAME = "local"
BUILTIN_FILE = Path("<built-in>")
PROFILE_ENV = "SPARKWING_PROFILE"

_HOW = {
    "flag": "from --profile",
    "env": f"from {PROFILE_ENV}",
    "project default": "project default",
}


def builtin_spec(surface: str) -> SurfaceSpec:
    """The built-in local default for ``surface`` (paths honour SPARKWING_HOME and XDG)."""
    from sparkwing import paths

    # Escaped so that interpolate_spec gives the path back unchanged even if it holds a "$".
    if surface == "state":
        return SurfaceSpec(type="sqlite", path=escape(str(paths.default_state_path())))
    if surface == "cache":
        return SurfaceSpec(type="filesystem", path=escape(str(paths.default_cache_path())))
    if surface == "logs":
        return SurfaceSpec(type="filesystem", path=escape(str(paths.default_logs_path())))
    if surface == "secrets":
        secrets = paths.default_secrets_path()
        return SurfaceSpec(
            type="filesystem",
            path=escape(str(secrets)),
            options={"plain_path": str(secrets.parent / "config.env")},
        )
    raise ValueError(f"unknown surface {surface!r}")


def builtin_profile() -> ProfileDef:
    """The built-in ``local`` profile, used when nothing is selected or ``local`` is unset."""
    return ProfileDef(
        name=BUILTIN_NAME,
        file=BUILTIN_FILE,
        line=0,
        state=builtin_spec("state"),
        cache=builtin_spec("cache"),
        logs=builtin_spec("logs"),
        secrets=builtin_spec("secrets"),
    )


def all_profiles(project: Project | None, user: UserProfiles) -> dict[str, ProfileDef]:
    """Every selectable profile by name; a name in both files is the user file's."""
    found = {BUILTIN_NAME: builtin_profile()}
    if project is not None:
        found.update(project.profiles)
    found.update(user.profiles)
    return dict(sorted(found.items()))


def _lookup(
    name: str, project: Project | None, user: UserProfiles, chain: list[str]
) -> ProfileDef | None:
    project_def = project.profiles.get(name) if project is not None else None
    found = user.profiles.get(name) or project_def
    if found is None and name == BUILTIN_NAME:
        found = builtin_profile()
    if found is None:
        return None
    note = f'profile "{name}" from {found.file}'
    if found.file == BUILTIN_FILE:
        note = f'profile "{name}": built-in local defaults'
    elif project is not None and project_def is not None and found is not project_def:
        note += f" (overrides the one in {project.file})"
    chain.append(note)
    return found


def _not_found(name: str, project: Project | None, user: UserProfiles) -> str:
    checked = f"{user.file} and {project.file}" if project is not None else str(user.file)
    available = ", ".join(all_profiles(project, user))
    return f'profile "{name}" not found (checked {checked}); available: {available}'


def _selected(
    project: Project | None, flag: str | None, env: Mapping[str, str], chain: list[str]
) -> tuple[str | None, str, str]:
    """(name, source, prefix for a not-found error) per steps 1-3; name None = built-in."""
    if flag:
        chain.append(f'--profile "{flag}"')
        return flag, "flag", ""
    chain.append("--profile not given")
    from_env = env.get(PROFILE_ENV)
    if from_env:
        chain.append(f'{PROFILE_ENV}="{from_env}"')
        return from_env, "env", ""
    chain.append(f"{PROFILE_ENV} not set")
    if project is None:
        chain.append("no project file")
    elif project.defaults.profile:
        name = project.defaults.profile
        chain.append(f'defaults.profile "{name}" in {project.file}')
        return name, "project default", f"{project.file}:{project.defaults.profile_line}: "
    else:
        chain.append(f"no defaults.profile in {project.file}")
    chain.append("built-in local defaults")
    return None, "built-in", ""


def _pin(
    project: Project | None, pipeline: str | None, user: UserProfiles, chain: list[str]
) -> ProfileDef | None:
    if not pipeline or project is None:
        return None
    entry = project.pipeline(pipeline)
    if entry is None:
        chain.append(f'pipeline "{pipeline}" is not listed in {project.file}')
        return None
    if entry.profile is None:
        chain.append(f'pipeline "{pipeline}" pins no profile')
        return None
    chain.append(f'pipeline "{pipeline}" pins profile "{entry.profile}"')
    pin = _lookup(entry.profile, project, user, chain)
    if pin is None:
        raise ConfigError(
            f'{project.file}:{entry.line}: pipeline "{pipeline}": '
            f'profile "{entry.profile}" is not declared'
        )
    return pin


def _origin(profile: ProfileDef, surface: str) -> str:
    if getattr(profile, surface) is None:
        return f'profile "{profile.name}" via its controller'
    return f'profile "{profile.name}"'


def resolve_profile(
    project: Project | None,
    *,
    flag: str | None,
    env: Mapping[str, str],
    pipeline: str | None,
    user: UserProfiles | None = None,
) -> ResolvedProfile:
    """The profile a run of ``pipeline`` uses, each surface's spec, and why."""
    if user is None:
        user = load_user_profiles()
    chain: list[str] = []
    name, source, error_prefix = _selected(project, flag, env, chain)
    base: ProfileDef | None = None
    if name is not None:
        base = _lookup(name, project, user, chain)
        if base is None:
            raise ConfigError(error_prefix + _not_found(name, project, user))
    pin = _pin(project, pipeline, user, chain)

    specs: dict[str, SurfaceSpec] = {}
    reasons: dict[str, str] = {}
    for surface in SURFACES:
        pinned = pin.declared(surface) if pin is not None else None
        own = base.declared(surface) if base is not None else None
        if pin is not None and pinned is not None:
            specs[surface] = pinned
            reasons[surface] = f"pipeline pin: {_origin(pin, surface)}"
        elif base is not None and own is not None and base.file != BUILTIN_FILE:
            specs[surface] = own
            reasons[surface] = f"{_origin(base, surface)} ({_HOW[source]})"
        else:
            specs[surface] = builtin_spec(surface)
            reasons[surface] = "built-in default"
            if base is not None and base.file != BUILTIN_FILE:
                reasons[surface] += f' (profile "{base.name}" does not declare {surface})'
    notify = pin.notify if pin is not None and pin.notify else base.notify if base else ()
    return ResolvedProfile(
        name=name or BUILTIN_NAME,
        source=source,
        reasons=reasons,
        chain=chain,
        notify=notify,
        **specs,
    )


def resolve_url_source(
    spec: SurfaceSpec,
    secrets: SecretStore | None,
    env: Mapping[str, str],
    *,
    surface: str = "state",
) -> str:
    """The DSN for a postgres/mysql spec: ``url``, else ``url_source`` (``env:VAR`` or a
    secret NAME looked up in ``secrets``). A missing or empty source is a ConfigError."""
    if spec.url:
        return spec.url
    source = spec.url_source
    if not source:
        raise ConfigError(f"{surface} backend type={spec.type} requires url or url_source")
    prefix = f'{surface} backend: url_source "{source}"'
    if source.startswith("env:"):
        var = source[4:]
        value = env.get(var)
        if value is None:
            raise ConfigError(f"{prefix}: environment variable {var} is not set")
        if not value:
            raise ConfigError(f"{prefix}: environment variable {var} is empty")
        return value
    if secrets is None:
        raise ConfigError(f"{prefix}: no secrets store is available to resolve it")
    secret = secrets.resolve(source)
    if secret is None:
        raise ConfigError(f"{prefix}: secret {source} is not defined in {secrets.describe()}")
    if not secret.value:
        raise ConfigError(f"{prefix}: secret {source} is empty in {secrets.describe()}")
    return secret.value
