"""Sparkwing: pipelines-as-code CI/CD. This module is the public SDK.

Names are loaded on first use (PEP 562) so that ``import sparkwing`` and the CLI's start-up
stay cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sparkwing.__about__ import __version__

if TYPE_CHECKING:
    from sparkwing.errors import (
        CommandError as CommandError,
    )
    from sparkwing.errors import (
        PlanError as PlanError,
    )
    from sparkwing.errors import (
        PlanPurityError as PlanPurityError,
    )
    from sparkwing.errors import (
        SparkwingError as SparkwingError,
    )
    from sparkwing.sdk.context import Context as Context
    from sparkwing.sdk.context import Git as Git
    from sparkwing.sdk.context import RunContext as RunContext
    from sparkwing.sdk.inputs import SecretStr as SecretStr
    from sparkwing.sdk.plan import Job as Job
    from sparkwing.sdk.plan import Plan as Plan
    from sparkwing.sdk.registry import pipeline as pipeline
    from sparkwing.sdk.runtime import config as config
    from sparkwing.sdk.runtime import key as key
    from sparkwing.sdk.runtime import secret as secret
    from sparkwing.sdk.shell import ShellResult as ShellResult

_EXPORTS = {
    "pipeline": "sparkwing.sdk.registry",
    "Plan": "sparkwing.sdk.plan",
    "Job": "sparkwing.sdk.plan",
    "Context": "sparkwing.sdk.context",
    "RunContext": "sparkwing.sdk.context",
    "Git": "sparkwing.sdk.context",
    "ShellResult": "sparkwing.sdk.shell",
    "SecretStr": "sparkwing.sdk.inputs",
    "secret": "sparkwing.sdk.runtime",
    "config": "sparkwing.sdk.runtime",
    "key": "sparkwing.sdk.runtime",
    "SparkwingError": "sparkwing.errors",
    "CommandError": "sparkwing.errors",
    "PlanError": "sparkwing.errors",
    "PlanPurityError": "sparkwing.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sparkwing' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
