"""Loggers that import :mod:`logging` the first time one is used, not when a module
defining one is imported.

Importing ``logging`` (with the ``traceback``, ``string`` and ``threading`` it pulls in)
costs several milliseconds, more than a one-job run can spare, and most runs never log a
record. Modules write ``log = _log.get("sparkwing.engine")`` and use ``log`` as a logger;
:func:`install_diagnostics` puts the CLI's stderr handler in place when ``logging`` is
loaded (at once if it already is), so no record is ever emitted before it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import logging

_pending: list[Callable[[], None]] = []


class _Lazy:
    __slots__ = ("_name", "_real")

    def __init__(self, name: str) -> None:
        self._name = name
        self._real: Any = None

    def __getattr__(self, attr: str) -> Any:
        real = self._real
        if real is None:
            real = self._real = _logger(self._name)
        return getattr(real, attr)


def _logger(name: str) -> logging.Logger:
    import logging

    while _pending:
        _pending.pop(0)()
    return logging.getLogger(name)


def get(name: str) -> logging.Logger:
    """The logger ``name``, loaded on first use."""
    return cast("logging.Logger", _Lazy(name))


def install_diagnostics(mode: Callable[[], str] | None = None) -> None:
    """The CLI's stderr handler on the ``sparkwing`` logger (see :mod:`sparkwing.diagnostics`):
    now if ``logging`` is loaded, else just before the first record can be logged."""

    def install() -> None:
        from sparkwing import diagnostics

        if mode is None:
            diagnostics.install()
        else:
            diagnostics.install(mode)

    if "logging" in sys.modules:
        install()
    else:
        _pending.append(install)
