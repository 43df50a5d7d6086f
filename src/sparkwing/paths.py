"""Where the built-in local defaults live (SPEC section 3), honouring SPARKWING_HOME and XDG,
and how files there are created: private to the user (0600 files in 0700 folders)."""

from __future__ import annotations

import errno
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


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700; existing folders are left
    as they are (a folder the user chose to share stays shared)."""
    if path.is_dir():
        return
    if path.parent != path:
        make_private_dirs(path.parent)
    try:
        os.mkdir(path, PRIVATE_DIR_MODE)
    except FileExistsError:
        if not path.is_dir():  # a file stands where the folder should be
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path)) from None


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists. SQLite gives a database's
    -wal and -shm files the database file's mode, so pre-creating it covers them too."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)
