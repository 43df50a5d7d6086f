"""A bytecode cache for the methods ``@dataclass`` generates in sparkwing's own modules.

CPython's dataclasses write each class's ``__init__``, ``__repr__``, ``__eq__``, ... as source
text and compile it with ``exec()`` when the class is created, in every process that imports
it: on this project's 2-core machines about 0.6-0.9 ms per class, some 50 ms (a quarter) of a
one-job run's start-up. That text depends only on the class's fields and options, so its
compiled form can be kept the way a ``.pyc`` keeps a module's: :func:`install` hands the
dataclasses module an ``exec`` that looks the text up in a marshal file beside sparkwing's
``.pyc`` files and compiles only what it has not seen; the code objects are the ones
``compile()`` returns for that same text, so the classes are exactly what they were.

It keeps the ``.pyc`` rules: nothing is written under ``PYTHONDONTWRITEBYTECODE`` or where
the folder is not writable, a file is written whole (a temporary file renamed over it) or
not at all, and a file that does not read back (another interpreter's, truncated, foreign)
is ignored and replaced. Code of other packages (a pipeline's own dataclasses) is compiled
as usual.
"""

from __future__ import annotations

import builtins
import marshal
import os
import sys
from typing import Any

# Past this many entries a save keeps only what this process used (edits to a dataclass
# leave its old text behind; this bounds the file).
MAX_ENTRIES = 2000

_codes: dict[str, Any] = {}
_used: set[str] = set()
_dirty = False
_loaded = False
_installed = False


def _path() -> str:
    # Tests point it elsewhere, so they neither read nor replace the installation's file.
    folder = os.environ.get("SPARKWING_TEST_GENCACHE_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "__pycache__"
    )
    return os.path.join(folder, f"dataclasses.{sys.implementation.cache_tag}.marshal")


def _magic() -> bytes:
    import importlib._bootstrap_external as external  # frozen: already loaded, no cost

    return bytes(external.MAGIC_NUMBER)


def _read() -> dict[str, Any]:
    try:
        with open(_path(), "rb") as fh:
            data = fh.read()
    except OSError:
        return {}
    magic = _magic()
    if not data.startswith(magic):
        return {}
    try:
        doc = marshal.loads(data[len(magic) :])
    except (EOFError, ValueError, TypeError):
        return {}
    if not isinstance(doc, dict):
        return {}
    return {k: v for k, v in doc.items() if isinstance(k, str) and hasattr(v, "co_code")}


def _exec(source: Any, globals_: Any = None, locals_: Any = None) -> None:
    """``exec`` for the dataclasses module: sparkwing's generated text runs from the cache."""
    global _dirty, _loaded
    name = globals_.get("__name__", "") if isinstance(globals_, dict) else ""
    if isinstance(source, str) and (name == "sparkwing" or name.startswith("sparkwing.")):
        if not _loaded:
            _loaded = True
            _codes.update(_read())
        code = _codes.get(source)
        if code is None:
            code = compile(source, "<string>", "exec")
            _codes[source] = code
            _dirty = True
        _used.add(source)
        source = code
    builtins.exec(source, globals_, locals_)


def install() -> None:
    """Route the dataclasses module's ``exec`` through the cache (idempotent); the file is
    saved at exit, and by :func:`save` where a process ends with ``os._exit``."""
    global _installed
    if _installed:
        return
    _installed = True
    import atexit
    import dataclasses

    # dataclasses calls the name ``exec`` from its own globals (3.11 to 3.13): shadowing it
    # there changes nothing else, for no other module.
    dataclasses.exec = _exec  # type: ignore[attr-defined]
    atexit.register(save)


def save() -> None:
    """Write what was compiled since the file was read (best effort; never raises)."""
    global _dirty
    if not _dirty or sys.dont_write_bytecode:
        return
    _dirty = False
    path = _path()
    merged = {**_read(), **_codes}
    if len(merged) > MAX_ENTRIES:
        merged = {k: v for k, v in _codes.items() if k in _used}
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(_magic())
            marshal.dump(merged, fh)
        os.replace(tmp, path)
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
