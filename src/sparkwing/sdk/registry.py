"""The pipeline registry: the one piece of global state, filled by ``@sparkwing.pipeline``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from sparkwing.errors import UsageError

T = TypeVar("T")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class PipelineDef:
    """A registered pipeline: ``obj`` is a class with ``plan(self, plan, args, rc)`` or a
    function ``plan(plan, args, rc)``."""

    name: str
    obj: Any
    description: str | None = None

    @property
    def entrypoint(self) -> str:
        return str(getattr(self.obj, "__name__", self.name))


_REGISTRY: dict[str, PipelineDef] = {}


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower().replace("_", "-")


@overload
def pipeline(name: T) -> T: ...
@overload
def pipeline(name: str | None = None, *, description: str | None = None) -> Callable[[T], T]: ...


def pipeline(name: Any = None, *, description: str | None = None) -> Any:
    """Register a pipeline class or plan function.

    ``@pipeline("build")`` names it; bare ``@pipeline`` uses the kebab-cased class/function
    name. A ``sparkwing.yaml`` entry may also bind a name to it with ``entrypoint:``.
    """

    def register(obj: T, pname: str | None = name if isinstance(name, str) else None) -> T:
        final = pname or _kebab(getattr(obj, "__name__", "pipeline"))
        if not _NAME_RE.match(final):
            raise UsageError(f"pipeline name {final!r} must match {_NAME_RE.pattern}")
        doc = description or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0] or None
        existing = _REGISTRY.get(final)
        if existing is not None and existing.obj is not obj:
            raise UsageError(
                f'pipeline "{final}" is registered twice ({_where(existing.obj)} and {_where(obj)})'
            )
        _REGISTRY[final] = PipelineDef(final, obj, doc)
        return obj

    if name is not None and not isinstance(name, str):
        return register(name, None)
    return register


def _where(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"


def registered() -> dict[str, PipelineDef]:
    return dict(_REGISTRY)


def find_entrypoint(entrypoint: str) -> PipelineDef | None:
    """A registered pipeline whose class/function name (or registered name) is ``entrypoint``."""
    for pdef in _REGISTRY.values():
        if pdef.entrypoint == entrypoint or pdef.name == entrypoint:
            return pdef
    return None
