"""A spec's printable location and run-record form never carry credentials: an http cache's
URL is shown and kept without user, password or query string."""

from __future__ import annotations

from sparkwing.surfaces.spec import SurfaceSpec, public_url


def test_http_url_is_shown_without_credentials() -> None:
    spec = SurfaceSpec("http", url="https://ci:hunter22@cache.example:8443/team/?sig=abc#x")
    assert spec.describe() == "http:https://cache.example:8443/team/"
    record = spec.to_record()
    assert record == {"type": "http", "url": "https://cache.example:8443/team/"}
    assert "hunter22" not in repr(record) and "sig=abc" not in repr(record)
    assert SurfaceSpec.from_record(record).url == "https://cache.example:8443/team/"


def test_a_dsn_is_never_shown_or_recorded() -> None:
    spec = SurfaceSpec("postgres", url="postgresql://u:pw@db/x")
    assert spec.describe() == "postgres:<redacted>"
    assert "url" not in spec.to_record()


def test_not_a_url() -> None:
    assert public_url("ftp://") is None
    assert public_url("http://[::1") is None
    assert SurfaceSpec("http", url="nonsense").describe() == "http"
