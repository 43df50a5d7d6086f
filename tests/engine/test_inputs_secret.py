"""Secret inputs in :mod:`sparkwing.sdk.inputs`: what a SecretStr shows, what a run records
for a secret input (``***``, or the ``secret:NAME`` it was given as) and what is masked."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field

import pytest

from sparkwing.errors import UsageError
from sparkwing.sdk.inputs import SecretStr, build_args, describe_inputs, secret_values


@dataclass
class Args:
    token: SecretStr
    password: str = field(default="", metadata={"secret": True})
    fallback: SecretStr | None = None
    region: str = "eu"


def test_secret_str_shows_the_mask_and_gives_the_value() -> None:
    secret = SecretStr("hunter2-value")
    assert (str(secret), repr(secret), f"{secret}", f"{secret!s:>5}") == (
        "***",
        "SecretStr('***')",
        "***",
        "  ***",
    )
    assert secret.get() == "hunter2-value"
    assert secret == SecretStr("hunter2-value") and secret != SecretStr("other")
    assert secret != "hunter2-value"  # never equal to (and so never found as) the plain text
    assert bool(secret) and not SecretStr("")
    assert pickle.loads(pickle.dumps(secret)).get() == "hunter2-value"


def test_a_run_records_secret_inputs_masked() -> None:
    args, plain = build_args(
        Args, "p", cli=["--token", "tok-123456", "--password=pw-987654", "--region", "us"]
    )
    assert isinstance(args.token, SecretStr) and args.token.get() == "tok-123456"
    assert args.password == "pw-987654" and args.fallback is None
    assert plain == {"token": "***", "password": "***", "fallback": None, "region": "us"}
    assert secret_values(Args, args) == ["tok-123456", "pw-987654"]


def test_a_reference_is_looked_up_and_recorded_as_given() -> None:
    store = {"DEPLOY": "from-the-store"}
    args, plain = build_args(
        Args,
        "p",
        cli=["--token", "secret:DEPLOY"],
        yaml_args={"password": "secret:DEPLOY"},
        resolve_secret=store.get,
    )
    assert args.token.get() == "from-the-store" and args.password == "from-the-store"
    assert plain["token"] == plain["password"] == "secret:DEPLOY"
    with pytest.raises(UsageError, match='secret "MISSING" is not defined'):
        build_args(Args, "p", cli=["--token", "secret:MISSING"], resolve_secret=store.get)
    with pytest.raises(UsageError, match="needs a secret name"):
        build_args(Args, "p", cli=["--token", "secret:"], resolve_secret=store.get)


def test_describe_marks_secret_inputs_and_hides_their_defaults() -> None:
    @dataclass
    class WithDefault:
        key: SecretStr = field(default_factory=lambda: SecretStr("default-secret"))

    @dataclass
    class PlainDefault:
        key: SecretStr = "plain-default"  # type: ignore[assignment]

    args, plain = build_args(PlainDefault, "p")
    assert isinstance(args.key, SecretStr) and args.key.get() == "plain-default"
    assert plain == {"key": "***"}
    (shown,) = describe_inputs(WithDefault)
    assert shown["secret"] is True and shown["default"] == "***" and shown["type"] == "str"
    by_name = {i["name"]: i for i in describe_inputs(Args)}
    assert [n for n, i in by_name.items() if i["secret"]] == ["token", "password", "fallback"]
