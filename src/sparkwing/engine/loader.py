"""Imports a project's pipeline modules from ``.sparkwing/`` and finds the pipeline to run."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sparkwing.errors import UsageError
from sparkwing.sdk.registry import PipelineDef, find_entrypoint, registered


def import_project(
    sparkwing_dir: Path, announce: Callable[[Path], None] | None = None
) -> dict[str, Any]:
    """Import every top-level module of ``.sparkwing/`` (sorted); returns them by name.

    The folder goes first on ``sys.path`` so pipeline modules can import each other and
    their helper packages. ``announce`` hears each module's path before it is imported, so
    a module that ends the process outright (``os._exit``) can still be named.
    """
    folder = str(sparkwing_dir)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    modules: dict[str, Any] = {}
    for path in sorted(sparkwing_dir.glob("*.py")):
        name = path.stem
        if name.startswith(("_", "test_")) or name == "conftest":
            continue
        if announce is not None:
            announce(path)
        try:
            modules[name] = importlib.import_module(name)
        except SystemExit as exc:
            # A module must not decide the run's exit code (a false green for code 0).
            raise UsageError(
                f"pipeline module {_where(exc, path)} called sys.exit({exc.code!r}) "
                "while being imported"
            ) from None
        except Exception as exc:
            raise UsageError(
                f"failed to import {_where(exc, path)}: {type(exc).__name__}: {exc}"
            ) from None
    return modules


def _where(exc: BaseException, default: Path) -> str:
    """The innermost frame inside the project, so the user sees their own line."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    import traceback  # only for a failed import

    frames = traceback.extract_tb(exc.__traceback__)
    root = str(default.parent)
    for frame in reversed(frames):
        if frame.filename.startswith(root):
            return f"{frame.filename}:{frame.lineno}"
    return str(default)


def find_pipeline(
    name: str, entrypoint: str | None, modules: dict[str, Any], yaml_names: list[str]
) -> PipelineDef:
    if entrypoint:
        pdef = find_entrypoint(entrypoint)
        if pdef is None:
            for module in modules.values():
                obj = getattr(module, entrypoint, None)
                if obj is not None and (callable(obj) or hasattr(obj, "plan")):
                    pdef = PipelineDef(name, obj)
                    break
        if pdef is None:
            known = ", ".join(sorted(p.entrypoint for p in registered().values())) or "none"
            raise UsageError(
                f'pipeline "{name}": entrypoint "{entrypoint}" was not found in .sparkwing/ '
                f"(registered: {known})"
            )
        return PipelineDef(name, pdef.obj, pdef.description)
    pdef = registered().get(name)
    if pdef is None:
        available = sorted(set(registered()) | set(yaml_names))
        raise UsageError(f'unknown pipeline "{name}" (available: {", ".join(available) or "none"})')
    return pdef
