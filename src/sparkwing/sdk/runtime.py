"""Per-job runtime reached through contextvars: secrets, config, masking and plan purity.

The engine installs a :class:`Sink` for the code it runs (a job, a ``skip_if`` or memoize
key function); ``plan()`` runs with the purity flag set so side effects refuse clearly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

from sparkwing.errors import PlanPurityError, SparkwingError

if TYPE_CHECKING:
    from sparkwing.surfaces.secrets.base import SecretStore


class Sink(Protocol):
    """Where a job's side channel goes: log lines, new mask values, annotations."""

    def log(self, stream: str, msg: str) -> None: ...
    def mask(self, values: list[str]) -> None: ...
    def annotate(self, text: str) -> None: ...
    def mask_text(self, text: str) -> str: ...


class Runtime:
    """What the SDK helpers need while user code runs under the engine."""

    def __init__(self, sink: Sink, open_secrets: Callable[[], SecretStore]) -> None:
        self.sink = sink
        self._open_secrets = open_secrets
        self._store: SecretStore | None = None

    @property
    def secrets(self) -> SecretStore:
        if self._store is None:
            self._store = self._open_secrets()
        return self._store


_runtime: ContextVar[Runtime | None] = ContextVar("sparkwing_runtime", default=None)
_in_plan: ContextVar[str | None] = ContextVar("sparkwing_in_plan", default=None)
_MISSING: Any = object()


@contextmanager
def planning(pipeline: str) -> Iterator[None]:
    """Run ``plan()`` under this: helpers with side effects raise PlanPurityError."""
    token = _in_plan.set(pipeline)
    try:
        yield
    finally:
        _in_plan.reset(token)


@contextmanager
def running(runtime: Runtime) -> Iterator[None]:
    token = _runtime.set(runtime)
    try:
        yield
    finally:
        _runtime.reset(token)


def ensure_not_planning(what: str) -> None:
    pipeline = _in_plan.get()
    if pipeline is not None:
        raise PlanPurityError(
            f'{what} cannot be called inside plan() of pipeline "{pipeline}": plan() must be '
            "pure; call it inside a job"
        )


def current_runtime(what: str) -> Runtime:
    ensure_not_planning(what)
    runtime = _runtime.get()
    if runtime is None:
        raise SparkwingError(f"{what} can only be called while a job runs under sparkwing")
    return runtime


def mask_values_of(value: str) -> list[str]:
    """A value and, for multi-line values, each of its non-trivial lines: a secret printed
    across lines is masked line by line (as CI systems do)."""
    out = [value]
    if "\n" in value:
        out.extend(line.strip() for line in value.splitlines() if len(line.strip()) >= 4)
    return [v for v in out if v]


def secret(name: str) -> str:
    """The value of secret ``name`` from the profile's secrets surface, masked in all output."""
    runtime = current_runtime("sparkwing.secret()")
    found = runtime.secrets.resolve(name)
    if found is None:
        raise SparkwingError(f'secret "{name}" is not defined in {runtime.secrets.describe()}')
    runtime.sink.mask(mask_values_of(found.value))
    return found.value


def config(name: str, default: Any = _MISSING) -> Any:
    """A plain configuration value; values stored as secrets stay masked."""
    runtime = current_runtime("sparkwing.config()")
    found = runtime.secrets.resolve(name)
    if found is None:
        if default is _MISSING:
            raise SparkwingError(
                f'config value "{name}" is not defined in {runtime.secrets.describe()}'
            )
        return default
    if found.masked:
        runtime.sink.mask(mask_values_of(found.value))
    return found.value


def key(*parts: Any) -> str:
    """A stable cache key from JSON-serialisable parts (for ``memoize``)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    import hashlib  # loads OpenSSL: only once something is hashed

    return hashlib.sha256(blob.encode()).hexdigest()
