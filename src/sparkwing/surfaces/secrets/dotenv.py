"""Dotenv secrets: masked values in one dotenv file, plain config values in another.

Files are parsed like common dotenv tools (comments, ``export``, quotes, escapes,
multi-line double quotes) and rewritten atomically with mode 0600, keeping other lines.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from sparkwing.errors import ConfigError, UsageError
from sparkwing.surfaces.secrets.base import SecretStore, SecretValue

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LINE_RE = re.compile(r"^[ \t]*(?:export[ \t]+)?([^=\s#]*)[ \t]*=[ \t]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$", "`": "`"}
_SAFE_RE = re.compile(r"^[A-Za-z0-9_./:@+,%^-]*$")


@dataclass(frozen=True)
class Entry:
    """One ``KEY=value`` assignment spanning lines ``start`` to ``end`` (exclusive)."""

    name: str
    value: str
    start: int
    end: int


def _double_quoted(text: str, pos: int) -> tuple[str, int] | None:
    """Decode a double-quoted value whose opening quote is at ``pos - 1``."""
    out: list[str] = []
    while pos < len(text):
        c = text[pos]
        if c == '"':
            return "".join(out), pos + 1
        if c == "\\" and pos + 1 < len(text):
            nxt = text[pos + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            pos += 2
            continue
        out.append(c)
        pos += 1
    return None


def _lines(text: str) -> list[str]:
    # Only "\n" ends a line: str.splitlines would also split on \f, \u2028 and friends.
    return [line for line in re.split(r"(?<=\n)", text) if line]


def parse_dotenv(text: str, source: str = "<dotenv>") -> list[Entry]:
    """Assignments in ``text`` in file order; raises ConfigError naming ``source:line``."""
    lines = _lines(text)
    entries: list[Entry] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        m = _LINE_RE.match(line)
        if not m:
            raise ConfigError(f"{source}:{i + 1}: expected KEY=value")
        name = m.group(1)
        if not NAME_RE.match(name):
            raise ConfigError(
                f"{source}:{i + 1}: {name!r} is not a valid name (letters, digits, _)"
            )
        # A quoted value may run over several lines: parse from here to the end of file.
        rest = "".join(lines[i:])
        pos = m.end()
        quote = rest[pos] if pos < len(rest) else ""
        if quote in ("'", '"'):
            if quote == '"':
                decoded = _double_quoted(rest, pos + 1)
            else:
                close = rest.find("'", pos + 1)
                decoded = (rest[pos + 1 : close], close + 1) if close >= 0 else None
            if decoded is None:
                raise ConfigError(f"{source}:{i + 1}: unterminated {quote} quote for {name}")
            value, after = decoded
            line_end = rest.find("\n", after)
            trailer = rest[after : line_end if line_end >= 0 else len(rest)].strip()
            if trailer and not trailer.startswith("#"):
                raise ConfigError(f"{source}:{i + 1}: unexpected text after the quoted value")
            consumed = rest[: line_end + 1 if line_end >= 0 else len(rest)]
            span = len(_lines(consumed))
        else:
            raw = line[pos:].rstrip("\r\n")
            comment = re.search(r"[ \t]#", raw)
            value = (raw[: comment.start()] if comment else raw).strip()
            span = 1
        entries.append(Entry(name=name, value=value, start=i, end=i + span))
        i += span
    return entries


def quote_value(value: str) -> str:
    """A dotenv literal that parses back to exactly ``value``."""
    if _SAFE_RE.match(value):
        return value
    if "'" not in value and "\n" not in value and "\r" not in value:
        return f"'{value}'"
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("$", "\\$")
        .replace("`", "\\`")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )
    return f'"{escaped}"'


def _check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise UsageError(f"secret name {name!r} must be letters, digits and '_' (not first digit)")
    return name


class DotenvFile:
    """One dotenv file: read its entries, rewrite assignments atomically (mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()

    def _text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def entries(self) -> list[Entry]:
        return parse_dotenv(self._text(), str(self.path))

    def values(self) -> dict[str, str]:
        return {e.name: e.value for e in self.entries()}  # the last assignment wins

    def update(self, name: str, value: str | None) -> bool:
        """Set (or with None remove) ``name``; True if the file had it. Other lines stay."""
        text = self._text()
        lines = _lines(text)
        spans = [e for e in parse_dotenv(text, str(self.path)) if e.name == name]
        if value is None and not spans:
            return False
        new_line = f"{name}={quote_value(value)}\n" if value is not None else None
        drop = {n for e in spans for n in range(e.start, e.end)}
        out: list[str] = []
        for n, line in enumerate(lines):
            if spans and n == spans[0].start and new_line is not None:
                out.append(new_line)  # replace the first assignment in place
            if n not in drop:
                out.append(line)
        if not spans and new_line is not None:
            if out and not out[-1].endswith("\n"):
                out.append("\n")
            out.append(new_line)
        self._write("".join(out))
        return bool(spans)

    def _write(self, text: str) -> None:
        parent = self.path.parent
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = parent / f".{self.path.name}.tmp-{secrets.token_hex(6)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)


class DotenvSecrets(SecretStore):
    """Masked secrets in ``path``; plain config values (masked=False) in ``plain_path``."""

    def __init__(self, path: Path, plain_path: Path | None = None) -> None:
        self.secrets_file = DotenvFile(path)
        self.plain_file = DotenvFile(plain_path) if plain_path is not None else None

    @property
    def path(self) -> Path:
        return self.secrets_file.path

    @property
    def plain_path(self) -> Path | None:
        return self.plain_file.path if self.plain_file else None

    def resolve(self, name: str) -> SecretValue | None:
        value = self.secrets_file.values().get(name)
        if value is not None:
            return SecretValue(value, masked=True)
        if self.plain_file is not None:
            value = self.plain_file.values().get(name)
            if value is not None:
                return SecretValue(value, masked=False)
        return None

    def names(self) -> list[tuple[str, bool]]:
        found = {name: False for name in (self.plain_file.values() if self.plain_file else {})}
        found.update({name: True for name in self.secrets_file.values()})
        return sorted(found.items())

    def set(self, name: str, value: str, masked: bool = True) -> None:
        _check_name(name)
        if masked:
            target, other = self.secrets_file, self.plain_file
        else:
            if self.plain_file is None:
                raise UsageError(f"{self.describe()} has no plain config file for unmasked values")
            target, other = self.plain_file, self.secrets_file
        target.update(name, value)
        # A name lives in one file only, so the masked flag always matches the last set.
        if other is not None:
            other.update(name, None)

    def delete(self, name: str) -> bool:
        _check_name(name)
        removed = self.secrets_file.update(name, None)
        if self.plain_file is not None:
            removed = self.plain_file.update(name, None) or removed
        return removed

    def describe(self) -> str:
        where = f"dotenv secrets {self.path}"
        return f"{where} (plain values: {self.plain_path})" if self.plain_path else where
