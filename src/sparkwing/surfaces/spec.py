"""The resolved description of one surface: what :mod:`sparkwing.surfaces.open` consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sparkwing.surfaces import registry


@dataclass(frozen=True)
class SurfaceSpec:
    """One surface's backend after profile resolution, interpolation and ``~`` expansion.

    ``type`` is one of the types SPEC section 3 lists for the surface. Fields a type does
    not use are None. ``binaries`` is only meaningful on a cache spec.
    """

    type: str
    path: str | None = None
    bucket: str | None = None
    prefix: str | None = None
    # repr=False: a DSN or token must never reach a traceback or a log through repr().
    url: str | None = field(default=None, repr=False)
    url_source: str | None = None
    token: str | None = field(default=None, repr=False)
    token_env: str | None = None
    binaries: SurfaceSpec | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """A location safe to print and to store in a run record: never a token or DSN."""
        if self.type in registry.types_with("dsn"):
            return (
                f"{self.type}:{self.url_source}" if self.url_source else f"{self.type}:<redacted>"
            )
        if self.bucket:
            return f"{self.type}://{self.bucket}/{self.prefix or ''}"
        if self.path:
            return f"{self.type}:{self.path}"
        if self.url and self._url_is_location():
            shown = public_url(self.url)
            return f"{self.type}:{shown}{self.prefix or ''}" if shown else self.type
        return self.type

    def _url_is_location(self) -> bool:
        # A DSN holds a password; a controller's URL is the profile's, shown by its host
        # elsewhere. Any other url (an http cache) is where the data lives.
        hidden = registry.types_with("dsn") | registry.types_with("controller")
        return self.type not in hidden

    def to_record(self) -> dict[str, Any]:
        """The parts of the spec a run record keeps so readers can find data later (no secrets)."""
        out: dict[str, Any] = {"type": self.type}
        for name in ("path", "bucket", "prefix", "url_source"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.url and self._url_is_location():
            shown = public_url(self.url)  # without credentials, which a record must not keep
            if shown:
                out["url"] = shown
        if self.binaries is not None:
            out["binaries"] = self.binaries.to_record()
        return out

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> SurfaceSpec:
        binaries = data.get("binaries")
        return cls(
            type=str(data["type"]),
            path=data.get("path"),
            bucket=data.get("bucket"),
            prefix=data.get("prefix"),
            url=data.get("url"),
            url_source=data.get("url_source"),
            binaries=cls.from_record(binaries) if isinstance(binaries, dict) else None,
        )


def public_url(url: str) -> str | None:
    """``url`` without user, password, query or fragment (they may carry credentials), or
    None when it is not a URL with a host."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return None
    if not (parts.scheme and parts.hostname):
        return None
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path or '/'}"
