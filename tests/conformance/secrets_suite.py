"""The SecretStore conformance suite for writable backends: subclass SecretsConformance.

A subclass provides a ``secrets`` fixture: a fresh, empty, writable store that can hold
both masked secrets and plain (unmasked) config values.
"""

from __future__ import annotations

import pytest

from sparkwing.errors import SparkwingError
from sparkwing.surfaces.secrets.base import SecretStore, SecretValue

AWKWARD_VALUES = [
    "",
    "plain",
    "with spaces  ",
    "  leading",
    "line one\nline two\n",
    "windows\r\nline",
    "a=b=c",
    "hash # not a comment",
    "#starts-with-hash",
    'double " quote',
    "single ' quote",
    "both ' and \" quotes",
    "back\\slash \\n not a newline",
    "dollar $HOME ${VAR} `cmd`",
    "unicode ✓ héllo 日本 🚀",
    "tab\tseparated",
    "trailing backslash \\",
    "'fully single quoted'",
    '"fully double quoted"',
    "export X=1",
]


class SecretsConformance:
    def test_missing_name_resolves_to_none(self, secrets: SecretStore) -> None:
        assert secrets.resolve("NOT_DEFINED") is None
        assert secrets.names() == []

    def test_set_and_resolve_masked(self, secrets: SecretStore) -> None:
        secrets.set("API_TOKEN", "s3cr3t")
        assert secrets.resolve("API_TOKEN") == SecretValue("s3cr3t", masked=True)

    def test_set_plain_value(self, secrets: SecretStore) -> None:
        secrets.set("REGION", "eu-west-1", masked=False)
        assert secrets.resolve("REGION") == SecretValue("eu-west-1", masked=False)

    def test_names_sorted_with_masked_flag(self, secrets: SecretStore) -> None:
        secrets.set("ZED", "1")
        secrets.set("ALPHA", "2", masked=False)
        secrets.set("MIDDLE", "3")
        assert secrets.names() == [("ALPHA", False), ("MIDDLE", True), ("ZED", True)]

    def test_overwrite_keeps_others(self, secrets: SecretStore) -> None:
        secrets.set("A", "1")
        secrets.set("B", "2")
        secrets.set("C", "3", masked=False)
        secrets.set("B", "two")
        assert secrets.resolve("A") == SecretValue("1", True)
        assert secrets.resolve("B") == SecretValue("two", True)
        assert secrets.resolve("C") == SecretValue("3", False)

    def test_changing_masked_flag_moves_the_value(self, secrets: SecretStore) -> None:
        secrets.set("X", "masked")
        secrets.set("X", "now plain", masked=False)
        assert secrets.resolve("X") == SecretValue("now plain", masked=False)
        assert secrets.names() == [("X", False)]
        secrets.set("X", "masked again", masked=True)
        assert secrets.resolve("X") == SecretValue("masked again", masked=True)
        assert secrets.names() == [("X", True)]

    def test_delete(self, secrets: SecretStore) -> None:
        secrets.set("GONE", "x")
        secrets.set("PLAIN_GONE", "y", masked=False)
        secrets.set("KEPT", "z")
        assert secrets.delete("GONE") is True
        assert secrets.delete("PLAIN_GONE") is True
        assert secrets.resolve("GONE") is None
        assert secrets.resolve("PLAIN_GONE") is None
        assert secrets.delete("GONE") is False
        assert secrets.delete("NEVER_SET") is False
        assert secrets.names() == [("KEPT", True)]

    @pytest.mark.parametrize("masked", [True, False], ids=["masked", "plain"])
    @pytest.mark.parametrize("value", AWKWARD_VALUES)
    def test_awkward_values_roundtrip(self, secrets: SecretStore, value: str, masked: bool) -> None:
        secrets.set("BEFORE", "b")
        secrets.set("VALUE", value, masked=masked)
        secrets.set("AFTER", "a")
        assert secrets.resolve("VALUE") == SecretValue(value, masked=masked)
        assert secrets.resolve("BEFORE") == SecretValue("b", True)
        assert secrets.resolve("AFTER") == SecretValue("a", True)

    def test_all_awkward_values_together(self, secrets: SecretStore) -> None:
        for i, value in enumerate(AWKWARD_VALUES):
            secrets.set(f"V{i}", value, masked=i % 2 == 0)
        for i, value in enumerate(AWKWARD_VALUES):
            assert secrets.resolve(f"V{i}") == SecretValue(value, masked=i % 2 == 0)

    @pytest.mark.parametrize("bad", ["", "1ABC", "A-B", "A B", "A=B", "A.B", "A\nB", "a/b"])
    def test_invalid_names_rejected(self, secrets: SecretStore, bad: str) -> None:
        with pytest.raises(SparkwingError):
            secrets.set(bad, "x")
        assert secrets.names() == []
