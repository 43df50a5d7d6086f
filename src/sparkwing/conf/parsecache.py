"""Parsed config files kept in sparkwing's local folder, keyed by the file's stat, so a
command reading an unchanged project or profiles file skips YAML (and importing its parser).

Only values without credentials are kept: a literal token or URL (which may hold a
password) in a profile makes that file parsed every time instead."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sparkwing import _log
from sparkwing.__about__ import __version__
from sparkwing.paths import PRIVATE_FILE_MODE, local_dir, make_private_dirs

log = _log.get("sparkwing.conf")

T = TypeVar("T")

# A file changed less than this long ago may change again within the same timestamp tick
# (same size, same mtime): its parse is not kept, as git treats a "racily clean" file.
RACY_SECONDS = 2.0
# Field names whose values are credentials, or may hold them (a DSN's password).
_CREDENTIALS = frozenset({"token", "url"})


def cached_parse(file: Path, parse: Callable[[Path], T]) -> T:
    """``parse(file)``, or what it returned the last time for the same file contents (same
    path, inode, size, modification and change times, sparkwing version and parser)."""
    try:
        st = os.stat(file)
    except OSError:
        return parse(file)  # the parser reports the problem in its own words
    if not file.is_absolute():
        return parse(file)  # the parsed value holds the path as given
    import hashlib

    parser = f"{parse.__module__}.{parse.__qualname__}"
    key: tuple[Any, ...] = (__version__, parser, str(file), st.st_dev, st.st_ino)
    key += (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    where = _cache_dir() / (hashlib.sha256(repr(key[:3]).encode()).hexdigest()[:40] + ".pickle")
    found = _load(where, key)
    if found is not None:
        return found  # type: ignore[no-any-return]
    value = parse(file)
    # Any later write sets the modification time to the present, so a file last modified
    # before the racy window cannot change without its key changing.
    settled = time.time_ns() - st.st_mtime_ns > RACY_SECONDS * 1e9
    if settled and not _holds_credentials(value):
        _store(where, key, value)
    return value


def _cache_dir() -> Path:
    return local_dir() / "parsed-config"


def _load(where: Path, key: tuple[Any, ...]) -> Any:
    import pickle

    try:
        with open(where, "rb") as fh:
            stored_key, value = pickle.load(fh)
    except FileNotFoundError:
        return None
    except Exception as exc:  # unreadable or from another version: parse again
        log.debug("ignoring parsed config %s: %s", where, exc)
        return None
    return value if stored_key == key else None


def _store(where: Path, key: tuple[Any, ...], value: Any) -> None:
    """Write atomically, private to the user; a failure only costs the next parse."""
    import pickle

    tmp = where.with_name(f".{where.name}.{os.getpid()}")
    try:
        make_private_dirs(where.parent)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        with open(fd, "wb") as fh:
            pickle.dump((key, value), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, where)
    except (OSError, pickle.PicklingError) as exc:
        log.debug("could not keep parsed config %s: %s", where, exc)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _holds_credentials(value: Any) -> bool:
    """Whether a parsed value carries a literal token or URL anywhere inside it."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            inner = getattr(value, f.name)
            if f.name in _CREDENTIALS and inner:
                return True
            if _holds_credentials(inner):
                return True
        return False
    if isinstance(value, dict):
        return any(_holds_credentials(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_credentials(v) for v in value)
    return False
