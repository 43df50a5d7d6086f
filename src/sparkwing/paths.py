"""Where the built-in local defaults live (SPEC section 3), honouring SPARKWING_HOME and XDG."""

from __future__ import annotations

import os
from pathlib import Path


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def sparkwing_home() -> Path | None:
    """``$SPARKWING_HOME`` when set: then state, cache, logs, outbox and bundles live under it."""
    return _env_path("SPARKWING_HOME")


def config_dir() -> Path:
    xdg = _env_path("XDG_CONFIG_HOME")
    return (xdg or Path.home() / ".config") / "sparkwing"


def user_profiles_file() -> Path:
    return _env_path("SPARKWING_PROFILES") or config_dir() / "profiles.yaml"


def default_state_path() -> Path:
    home = sparkwing_home()
    return home / "state.db" if home else Path.home() / ".sparkwing" / "state.db"


def default_cache_path() -> Path:
    home = sparkwing_home()
    return home / "cache" if home else Path.home() / ".cache" / "sparkwing"


def default_logs_path() -> Path:
    home = sparkwing_home()
    return home / "logs" if home else Path.home() / ".cache" / "sparkwing" / "logs"


def default_secrets_path() -> Path:
    """Masked values; the plain ``config.env`` sits beside it."""
    return config_dir() / "secrets.env"


def local_dir() -> Path:
    """Machine-local working files (outbox, bundle cache, run workspaces)."""
    home = sparkwing_home()
    return home if home else Path.home() / ".sparkwing"
