"""A bytecode cache for the methods ``@dataclass`` generates in sparkwing's own modules.

CPython's dataclasses write each class's ``__init__``, ``__repr__``, ``__eq__``, ... as source
text and compile it with ``exec()`` when the class is created, in every process that imports
it: on this project's 2-core machines about 0.6-0.9 ms per class, some 50 ms (a quarter) of a
one-job run's start-up. That text depends only on the class's fields and options, so its
compiled form can be kept the way a ``.pyc`` keeps a module's: :func:`install` hands the
dataclasses module an ``exec`` that looks the text up in a marshal file beside sparkwing's
``.pyc`` files and compiles only what it has not seen; the code objects are the ones
``compile()`` returns for that same text, so the classes are exactly what they were.

The dataclasses module imports ``inspect`` (with ``ast``, ``dis`` and ``tokenize``: some 6 ms
of start-up) for one call, a signature for the docstring of a class that has none. Every
class of sparkwing's has one, so :func:`install` hands dataclasses a stand-in that imports
the real module on first use; every other importer of ``inspect`` gets the real one.

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
import types
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


# Bumped when what is cached changes meaning (2: compiled without this module's
# ``from __future__`` flags, which ``compile`` and ``exec`` would otherwise inherit).
_FORMAT = b"sw2\n"


def _magic() -> bytes:
    import importlib._bootstrap_external as external  # frozen: already loaded, no cost

    return bytes(external.MAGIC_NUMBER) + _FORMAT


def _compile(source: str) -> Any:
    # dont_inherit: this module's ``from __future__ import annotations`` must not reach the
    # generated methods (their annotations would turn into the text "_type_x").
    return compile(source, "<string>", "exec", dont_inherit=True)


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
            code = _compile(source)
            _codes[source] = code
            _dirty = True
        _used.add(source)
        source = code
    elif isinstance(source, str):
        source = _compile(source)  # as the dataclasses module's own exec would compile it
    builtins.exec(source, globals_, locals_)


class _DeferredInspect(types.ModuleType):
    """What the dataclasses module gets for ``inspect`` when it is first imported here: the
    real module is imported, and put in its place, on the first attribute asked for."""

    def __getattr__(self, name: str) -> Any:
        import importlib

        real = importlib.import_module("inspect")
        dataclasses = sys.modules.get("dataclasses")
        if dataclasses is not None and getattr(dataclasses, "inspect", None) is self:
            dataclasses.inspect = real  # type: ignore[attr-defined]
        return getattr(real, name)


def _import_dataclasses() -> Any:
    """``import dataclasses``, without importing ``inspect`` yet if neither is loaded."""
    if "dataclasses" in sys.modules or "inspect" in sys.modules:
        import dataclasses

        return dataclasses
    stand_in = _DeferredInspect("inspect")
    sys.modules["inspect"] = stand_in
    try:
        import dataclasses
    finally:
        # Only dataclasses holds the stand-in: the next ``import inspect`` is the real one.
        if sys.modules.get("inspect") is stand_in:
            del sys.modules["inspect"]
    return dataclasses


def install() -> None:
    """Route the dataclasses module's ``exec`` through the cache (idempotent); the file is
    saved at exit, and by :func:`save` where a process ends with ``os._exit``."""
    global _installed
    if _installed:
        return
    _installed = True
    import atexit

    dataclasses = _import_dataclasses()

    # dataclasses calls the name ``exec`` from its own globals (3.11 to 3.13): shadowing it
    # there changes nothing else, for no other module.
    dataclasses.exec = _exec
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
