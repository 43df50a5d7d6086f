"""Controller-stored secrets, encrypted at rest with AES-256-GCM under the operator's key.

Each value is sealed with a fresh nonce and its name and masked flag as associated data, so
a sealed value cannot be moved to another name or flag. A key-check row tells a wrong key
apart from a missing secret at start-up.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sparkwing.controller.metadb import MetaDB
from sparkwing.errors import ConfigError, StorageError
from sparkwing.surfaces.secrets.base import SecretStore, SecretValue
from sparkwing.surfaces.secrets.controller import check_name

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_ENV = "SPARKWING_CONTROLLER_KEY"
_KEY_CHECK = "key-check"
_CHECK_PLAINTEXT = b"sparkwing controller key check"


def generate_key() -> str:
    """A new key, base64 (what SPARKWING_CONTROLLER_KEY or a --key-file holds)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def load_key(env: Mapping[str, str], key_file: Path | None) -> bytes:
    """The 32-byte key from ``--key-file`` (base64 text) or $SPARKWING_CONTROLLER_KEY."""
    how = (
        f"set {KEY_ENV} to a base64 key of 32 random bytes, or pass --key-file "
        "(create one with `sparkwing controller keygen`)"
    )
    if key_file is not None:
        try:
            text = key_file.expanduser().read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the controller key file {key_file}: {exc}") from None
        source = f"key file {key_file}"
    else:
        text = env.get(KEY_ENV, "").strip()
        source = KEY_ENV
        if not text:
            raise ConfigError(f"the controller needs a key to encrypt secrets: {how}")
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{source} is not valid base64: {how}") from None
    if len(key) != 32:
        raise ConfigError(f"{source} holds {len(key)} bytes, expected 32: {how}")
    return key


class Vault(SecretStore):
    """Secrets in the controller database, sealed with AES-GCM."""

    def __init__(self, db: MetaDB, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.db = db
        self._aead: AESGCM = AESGCM(key)
        self._check_key()

    def _seal(self, plaintext: bytes, aad: bytes) -> str:
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, plaintext, aad)).decode()

    def _open(self, sealed: str, aad: bytes) -> bytes | None:
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.b64decode(sealed)
            return self._aead.decrypt(raw[:12], raw[12:], aad)
        except (InvalidTag, binascii.Error, ValueError):
            return None

    def _check_key(self) -> None:
        rows = self.db.query("SELECT value FROM controller_meta WHERE key = ?", (_KEY_CHECK,))
        if rows:
            if self._open(str(rows[0][0]), _KEY_CHECK.encode()) != _CHECK_PLAINTEXT:
                raise ConfigError(
                    f"the controller key does not match the one the secrets in "
                    f"{self.db.describe()} were stored with"
                )
            return
        sealed = self._seal(_CHECK_PLAINTEXT, _KEY_CHECK.encode())
        # A peer starting at the same moment may have written its own check: re-verify.
        self.db.execute(
            "INSERT INTO controller_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            (_KEY_CHECK, sealed),
        )
        self._check_key()

    @staticmethod
    def _aad(name: str, masked: bool) -> bytes:
        return f"{name}\x00{int(masked)}".encode()

    def resolve(self, name: str) -> SecretValue | None:
        check_name(name)
        rows = self.db.query(
            "SELECT masked, sealed FROM controller_secrets WHERE name = ?", (name,)
        )
        if not rows:
            return None
        masked = bool(rows[0][0])
        plain = self._open(str(rows[0][1]), self._aad(name, masked))
        if plain is None:
            raise StorageError(f"secret {name} in {self.describe()} failed to decrypt")
        return SecretValue(plain.decode("utf-8", "surrogatepass"), masked=masked)

    def names(self) -> list[tuple[str, bool]]:
        rows = self.db.query("SELECT name, masked FROM controller_secrets ORDER BY name")
        return [(str(name), bool(masked)) for name, masked in rows]

    def set(self, name: str, value: str, masked: bool = True) -> None:
        check_name(name)
        sealed = self._seal(value.encode("utf-8", "surrogatepass"), self._aad(name, masked))
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.db.execute(
            "INSERT INTO controller_secrets (name, masked, sealed, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET masked = excluded.masked,"
            " sealed = excluded.sealed, updated_at = excluded.updated_at",
            (name, int(masked), sealed, now),
        )

    def delete(self, name: str) -> bool:
        check_name(name)
        return self.db.execute("DELETE FROM controller_secrets WHERE name = ?", (name,)) > 0

    def describe(self) -> str:
        return f"controller secrets ({self.db.describe()}, encrypted)"
