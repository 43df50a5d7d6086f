"""The one list of backends: for each surface and type, what to import (lazily) to open it,
which spec fields it needs and what it supports.

The factory (``surfaces.open``), config validation (``conf.specs``), the JSON Schemas,
``profile check`` and ``doctor`` all read this table. It imports nothing from sparkwing, so
any module may consult it without pulling a backend (or an import cycle) in. A new backend
is one module, one entry here and one conformance fixture.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

SURFACES: tuple[str, ...] = ("state", "cache", "logs", "secrets")

# Capabilities a backend may declare. The backends still answer at run time (a store's
# conditional writes are probed, a controller asks its server); these are what a type can
# offer at best, for docs, `profile check` and `doctor`.
CAPABILITIES: dict[str, str] = {
    "conditional_writes": "put-if-absent / put-if-match, what memoize and gates coordinate by",
    "probed": "conditional writes are probed once per store: some endpoints ignore them",
    "gates": "approval gates",
    "queue": "the run queue `sparkwing worker` drains",
    "binaries": "a `binaries:` cache of its own for pipeline bundles",
    "local_path": "keeps its data under a local `path` (doctor checks it is writable)",
    "controller": "a profile's `controller:` entry supplies url and token when left out",
    "dsn": "its url is a connection string that may hold a password: never shown",
}

# The object stores every shared surface can sit on: written here once, with the adapter
# class (``from_env(bucket, prefix, role=, retry=)``) each one opens.
OBJECT_STORES: dict[str, str] = {
    "s3": "sparkwing.surfaces.objectstore.s3:S3ObjectStore",
    "gcs": "sparkwing.surfaces.objectstore.gcs:GcsObjectStore",
    "azure-blob": "sparkwing.surfaces.objectstore.azure:AzureObjectStore",
}


@dataclass(frozen=True)
class Backend:
    """One backend type of one surface.

    ``opener`` is ``"module:attribute"``, a callable taking the resolved spec (state
    openers also take the profile's secret store) and returning the opened surface; None
    means the type is recognized but not implemented in this build. ``required`` fields
    must all be set; of each group in ``one_of`` exactly one must be set.
    """

    surface: str
    type: str
    opener: str | None
    required: tuple[str, ...] = ()
    one_of: tuple[tuple[str, ...], ...] = ()
    optional: tuple[str, ...] = ()
    supports: frozenset[str] = frozenset()

    @property
    def implemented(self) -> bool:
        return self.opener is not None

    @property
    def object_store(self) -> bool:
        return self.type in OBJECT_STORES

    def has(self, capability: str) -> bool:
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}")
        return capability in self.supports

    def load(self) -> Callable[..., Any]:
        """The opener, imported now (never at registry import: drivers stay unloaded)."""
        if self.opener is None:
            raise LookupError(f"{self.surface} backend type {self.type!r} is not implemented")
        return load(self.opener)

    def missing(self, values: Mapping[str, object]) -> str | None:
        """What the spec ``values`` lack, worded as SPEC's errors after
        ``<surface> backend``; None when nothing is missing."""
        for name in self.required:
            if not values.get(name):
                return f" type={self.type} requires {name}"
        for group in self.one_of:
            given = [name for name in group if values.get(name)]
            if len(given) > 1:
                return f" type={self.type} accepts only one of {' or '.join(group)}"
            if not given:
                return f" type={self.type} requires {' or '.join(group)}"
        return None


def load(dotted: str) -> Callable[..., Any]:
    """Import ``"module:attribute"`` (the attribute may be dotted) and return it."""
    module, _, attribute = dotted.partition(":")
    found: Any = importlib.import_module(module)
    for name in attribute.split("."):
        found = getattr(found, name)
    if not callable(found):
        raise TypeError(f"{dotted} is not callable")
    return cast(Callable[..., Any], found)


_OPENERS = "sparkwing.surfaces.openers"
_SHARED = frozenset({"conditional_writes", "probed"})


def _object_stores(surface: str, opener: str, extra: frozenset[str]) -> list[Backend]:
    return [
        Backend(
            surface,
            name,
            opener,
            required=("bucket",),
            optional=("prefix",),
            supports=_SHARED | extra,
        )
        for name in OBJECT_STORES
    ]


def _on_disk(surface: str, type_: str, opener: str, extra: frozenset[str] = frozenset()) -> Backend:
    return Backend(
        surface,
        type_,
        opener,
        required=("path",),
        optional=("prefix",) if surface == "cache" else (),
        supports=frozenset({"local_path"}) | extra,
    )


def _controller(surface: str, opener: str, extra: frozenset[str] = frozenset()) -> Backend:
    return Backend(
        surface,
        "controller",
        opener,
        required=("url",),
        optional=("token", "token_env"),
        supports=frozenset({"controller"}) | extra,
    )


_BACKENDS: tuple[Backend, ...] = (
    # -- state
    Backend(
        "state",
        "sqlite",
        f"{_OPENERS}:sqlite_state",
        optional=("path",),
        supports=frozenset({"conditional_writes", "gates", "queue", "local_path"}),
    ),
    Backend(
        "state",
        "postgres",
        f"{_OPENERS}:postgres_state",
        one_of=(("url", "url_source"),),
        supports=frozenset({"conditional_writes", "gates", "queue", "dsn"}),
    ),
    *_object_stores("state", f"{_OPENERS}:objectstore_state", frozenset({"gates"})),
    _controller(
        "state",
        f"{_OPENERS}:controller_state",
        frozenset({"conditional_writes", "gates", "queue"}),
    ),
    Backend("state", "mysql", None, one_of=(("url", "url_source"),), supports=frozenset({"dsn"})),
    # -- cache
    _on_disk(
        "cache",
        "filesystem",
        f"{_OPENERS}:filesystem_cache",
        frozenset({"conditional_writes", "binaries"}),
    ),
    *_object_stores("cache", f"{_OPENERS}:objectstore_cache", frozenset({"binaries"})),
    _controller(
        "cache",
        f"{_OPENERS}:controller_cache",
        frozenset({"conditional_writes", "binaries"}),
    ),
    # Plain HTTP (nginx WebDAV, an artifact server): preconditions are sent, probed, and
    # ignored by the servers this targets.
    Backend(
        "cache",
        "http",
        "sparkwing.surfaces.cache.http:open_http_cache",
        required=("url",),
        optional=("prefix", "token", "token_env"),
        supports=frozenset({"probed", "binaries"}),
    ),
    # -- logs
    _on_disk("logs", "filesystem", f"{_OPENERS}:filesystem_logs"),
    *_object_stores("logs", f"{_OPENERS}:objectstore_logs", frozenset()),
    _controller("logs", f"{_OPENERS}:controller_logs"),
    Backend("logs", "stdout", f"{_OPENERS}:stdout_logs"),
    # -- secrets
    _on_disk("secrets", "filesystem", f"{_OPENERS}:dotenv_secrets"),
    _on_disk("secrets", "dotenv", f"{_OPENERS}:dotenv_secrets"),
    Backend("secrets", "env", f"{_OPENERS}:env_secrets", optional=("prefix",)),
    _controller("secrets", f"{_OPENERS}:controller_secrets"),
    Backend("secrets", "none", f"{_OPENERS}:no_secrets"),
)

# A cache's `binaries:` spec is a cache spec of its own, without a nested `binaries:`.
_ALIASES: dict[str, str] = {"cache.binaries": "cache"}


def _surface(surface: str) -> str:
    name = _ALIASES.get(surface, surface)
    if name not in SURFACES:
        raise ValueError(f"unknown surface {surface!r}")
    return name


def backends(surface: str | None = None) -> tuple[Backend, ...]:
    """Every backend (of ``surface``), in the order SPEC lists them."""
    if surface is None:
        return _BACKENDS
    name = _surface(surface)
    return tuple(b for b in _BACKENDS if b.surface == name)


def types(surface: str) -> tuple[str, ...]:
    """The type names ``surface`` recognizes (``cache.binaries`` is a cache)."""
    return tuple(b.type for b in backends(surface))


def backend(surface: str, type_: str) -> Backend | None:
    """The entry for ``type_`` on ``surface``; None when the type is not recognized."""
    name = _surface(surface)
    for entry in _BACKENDS:
        if entry.surface == name and entry.type == type_:
            return entry
    return None


def supports(surface: str, type_: str, capability: str) -> bool:
    """Whether ``type_`` on ``surface`` declares ``capability`` (False when unknown)."""
    entry = backend(surface, type_)
    return entry is not None and entry.has(capability)


def types_with(capability: str) -> frozenset[str]:
    """The types that declare ``capability`` on any surface (for code that holds a spec
    without knowing its surface)."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}")
    return frozenset(b.type for b in _BACKENDS if capability in b.supports)
