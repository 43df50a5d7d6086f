"""EnvSecrets (type: env) and NoSecrets (type: none)."""

from __future__ import annotations

import pytest

from sparkwing.errors import NotSupportedError
from sparkwing.surfaces.open import open_secrets
from sparkwing.surfaces.secrets.base import SecretValue
from sparkwing.surfaces.secrets.env import EnvSecrets, NoSecrets
from sparkwing.surfaces.spec import SurfaceSpec


def test_resolves_prefixed_variable_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SW_SECRET_TOKEN", "abc=def\nline2")
    monkeypatch.setenv("TOKEN", "unprefixed")
    store = EnvSecrets(prefix="SW_SECRET_")
    assert store.resolve("TOKEN") == SecretValue("abc=def\nline2", masked=True)
    assert store.resolve("MISSING") is None
    assert store.resolve("") is None


def test_without_prefix_reads_the_variable_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOY_KEY", "k")
    monkeypatch.setenv("EMPTY_ONE", "")
    store = EnvSecrets()
    assert store.resolve("DEPLOY_KEY") == SecretValue("k", masked=True)
    assert store.resolve("EMPTY_ONE") == SecretValue("", masked=True)


def test_names_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWT_B", "1")
    monkeypatch.setenv("SWT_A", "2")
    monkeypatch.setenv("SWT_", "bare prefix is not a name")
    monkeypatch.setenv("OTHER_SWT_C", "3")
    assert EnvSecrets(prefix="SWT_").names() == [("A", True), ("B", True)]


def test_names_without_prefix_not_supported() -> None:
    with pytest.raises(NotSupportedError, match="prefix"):
        EnvSecrets().names()


def test_env_secrets_are_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    store = EnvSecrets(prefix="SWRO_")
    with pytest.raises(NotSupportedError, match="read-only"):
        store.set("X", "1")
    with pytest.raises(NotSupportedError, match="read-only"):
        store.delete("X")
    assert store.resolve("X") is None
    assert "SWRO_" in store.describe()


def test_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANYTHING", "x")
    store = NoSecrets()
    assert store.resolve("ANYTHING") is None
    assert store.names() == []
    with pytest.raises(NotSupportedError):
        store.set("ANYTHING", "y")


def test_open_secrets_env_and_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_SECRET_X", "v")
    env = open_secrets(SurfaceSpec(type="env", prefix="CI_SECRET_"))
    assert isinstance(env, EnvSecrets)
    assert env.resolve("X") == SecretValue("v", masked=True)
    none = open_secrets(SurfaceSpec(type="none"))
    assert isinstance(none, NoSecrets)
    assert none.resolve("X") is None
