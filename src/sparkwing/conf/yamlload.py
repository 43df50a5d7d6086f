"""Strict YAML reading for config files: one composed node tree, errors as one-line
``ConfigError`` messages that carry ``file:line``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sparkwing.errors import ConfigError

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

_TAG = "tag:yaml.org,2002:"
_NULL, _STR, _MAP, _SEQ, _MERGE = (_TAG + t for t in ("null", "str", "map", "seq", "merge"))
# Scalars kept as text: a date in args should reach the pipeline as the string written.
_AS_TEXT = {_STR, _TAG + "timestamp"}
_CONSTRUCTED = {_TAG + t for t in ("bool", "int", "float")}


class Entry(NamedTuple):
    """One ``key: value`` pair of a mapping, with the key's node for its line number."""

    key: str
    key_node: Node
    value: Node


def line_of(node: Node) -> int:
    return int(node.start_mark.line) + 1


def kind_of(node: Node) -> str:
    """What a user would call this node's type, for "must be X (got Y)" messages."""
    tag = str(node.tag)
    if isinstance(node, MappingNode) and tag == _MAP:
        return "a mapping"
    if isinstance(node, SequenceNode) and tag == _SEQ:
        return "a list"
    return tag[len(_TAG) :] if tag.startswith(_TAG) else f"tag {tag}"


def is_null(node: Node | None) -> bool:
    return node is None or (isinstance(node, ScalarNode) and node.tag == _NULL)


def compose_text(text: str, file: Path) -> Node | None:
    """The root node of ``text`` (None when the document is empty)."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else str(file)
        parts = [p for p in (exc.context, exc.problem) if p]
        raise ConfigError(f"{where}: invalid YAML: {'; '.join(parts)}") from None
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        raise ConfigError(
            f"{file}:{line}:{col}: invalid YAML: unacceptable character #x{exc.character:04x}: "
            f"{exc.reason}"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{file}: invalid YAML: nested too deeply") from None
    except UnicodeEncodeError as exc:
        raise ConfigError(f"{file}: invalid YAML: {exc.reason}") from None


def read_text(file: Path) -> str:
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not valid UTF-8 (byte {exc.start})") from None


@dataclass
class Reader:
    """Walks one file's nodes. ``strict`` turns unknown keys into errors; otherwise they
    are ignored and reported by :meth:`warnings`."""

    file: Path
    strict: bool = True
    _warned: list[tuple[int, str]] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """``file:line: ...`` messages in file order (the walk visits nodes out of order)."""
        return [f"{self.file}:{line}: {msg}" for line, msg in sorted(self._warned)]

    def error(self, node: Node | None, message: str) -> ConfigError:
        where = f"{self.file}:{line_of(node)}" if node is not None else str(self.file)
        return ConfigError(f"{where}: {message}")

    def mapping(
        self, node: Node | None, where: str, _merging: frozenset[int] = frozenset()
    ) -> list[Entry]:
        """The entries of a mapping (null = empty), merge keys applied, duplicates refused."""
        if is_null(node):
            return []
        assert node is not None
        if not isinstance(node, MappingNode) or node.tag != _MAP:
            raise self.error(node, f"{where} must be a mapping (got {kind_of(node)})")
        if id(node) in _merging:
            raise self.error(node, f"recursive merge (<<) in {where}")
        entries: list[Entry] = []
        seen: dict[str, int] = {}
        merged: list[Entry] = []
        for key_node, value in node.value:
            if key_node.tag == _MERGE:
                sources = value.value if isinstance(value, SequenceNode) else [value]
                for source in sources:
                    if not isinstance(source, MappingNode):
                        raise self.error(source, f"merge (<<) in {where} takes mappings only")
                    merged.extend(self.mapping(source, where, _merging | {id(node)}))
                continue
            key = self._key(key_node, where)
            if key in seen:
                raise self.error(
                    key_node, f'duplicate key "{key}" in {where} (first at line {seen[key]})'
                )
            seen[key] = line_of(key_node)
            entries.append(Entry(key, key_node, value))
        for entry in merged:
            # Explicit keys win over merged ones, and earlier merge sources over later ones.
            if entry.key not in seen:
                seen[entry.key] = line_of(entry.key_node)
                entries.append(entry)
        return entries

    def _key(self, node: Node, where: str) -> str:
        # A key is taken as written: `on:` or `yes:` must not turn into a boolean.
        if not isinstance(node, ScalarNode) or node.tag not in (_STR, *_CONSTRUCTED, _NULL):
            raise self.error(node, f"keys in {where} must be strings (got {kind_of(node)})")
        return str(node.value)

    def check_keys(self, entries: Sequence[Entry], where: str, allowed: Sequence[str]) -> None:
        """Refuse (strict) or warn about (lenient) keys outside ``allowed``."""
        for entry in entries:
            if entry.key in allowed:
                continue
            message = (
                f'unknown key "{entry.key}" in {where} (expected one of: {", ".join(allowed)})'
            )
            if self.strict:
                raise self.error(entry.key_node, message)
            self._warned.append((line_of(entry.key_node), message))

    def fields(self, node: Node | None, where: str, allowed: Sequence[str]) -> dict[str, Entry]:
        """A mapping with a fixed key set, keyed by name; unknown keys handled per mode."""
        entries = self.mapping(node, where)
        self.check_keys(entries, where, allowed)
        return {e.key: e for e in entries if e.key in allowed}

    def sequence(self, node: Node | None, where: str) -> list[Node]:
        if is_null(node):
            return []
        assert node is not None
        if not isinstance(node, SequenceNode) or node.tag != _SEQ:
            raise self.error(node, f"{where} must be a list (got {kind_of(node)})")
        return list(node.value)

    def string(self, node: Node | None, where: str) -> str | None:
        """A string value; null means absent. Numbers must be quoted to count as text."""
        if is_null(node):
            return None
        assert node is not None
        if not isinstance(node, ScalarNode) or node.tag != _STR:
            raise self.error(node, f"{where} must be a string (got {kind_of(node)})")
        return str(node.value)

    def value(self, node: Node, where: str) -> Any:
        """Plain Python data (str, int, float, bool, None, list, dict) for free-form args."""
        return _Converter(self, where).convert(node)


@dataclass
class _Converter:
    reader: Reader
    where: str
    done: dict[int, Any] = field(default_factory=dict)
    active: set[int] = field(default_factory=set)
    constructor: yaml.constructor.SafeConstructor = field(
        default_factory=yaml.constructor.SafeConstructor
    )

    def convert(self, node: Node) -> Any:
        # Aliases share nodes: memoising keeps alias-heavy input linear and cycles detectable.
        if id(node) in self.done:
            return self.done[id(node)]
        if id(node) in self.active:
            raise self.reader.error(node, f"recursive alias in {self.where}")
        self.active.add(id(node))
        try:
            result = self._convert(node)
        except RecursionError:
            raise self.reader.error(node, f"{self.where} is nested too deeply") from None
        self.active.discard(id(node))
        self.done[id(node)] = result
        return result

    def _convert(self, node: Node) -> Any:
        if isinstance(node, MappingNode):
            entries = self.reader.mapping(node, self.where)
            return {e.key: self.convert(e.value) for e in entries}
        if isinstance(node, SequenceNode):
            return [self.convert(item) for item in self.reader.sequence(node, self.where)]
        tag = str(node.tag)
        if tag == _NULL:
            return None
        if tag in _AS_TEXT:
            return str(node.value)
        if tag in _CONSTRUCTED:
            # PyYAML's own rules for bool/int/float text (``0x1f``, ``1_000``, ``.inf``, ``yes``).
            return self.constructor.construct_object(node)
        raise self.reader.error(node, f"unsupported YAML tag {tag} in {self.where}")
