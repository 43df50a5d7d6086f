"""A profile's ``notify:`` list, parsed strictly at load (each URL checked)."""

from __future__ import annotations

from urllib.parse import urlsplit

from yaml.nodes import Node

from sparkwing.conf.notifydef import NotifyDef
from sparkwing.conf.yamlload import Entry, Reader

NOTIFY_KEYS: tuple[str, ...] = ("url", "url_source", "on")
NOTIFY_ON: tuple[str, ...] = ("failed", "success", "cancelled")


def check_url(url: str) -> str | None:
    """Why ``url`` cannot be posted to, or None: http(s), a host, no spaces or controls."""
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


def parse_notify(reader: Reader, entry: Entry, where: str) -> tuple[NotifyDef, ...]:
    """``entry`` (a profile's ``notify`` key) as NotifyDefs."""
    out: list[NotifyDef] = []
    for index, item in enumerate(reader.sequence(entry.value, f"{where} notify")):
        at = f"{where} notify[{index}]"
        fields = reader.fields(item, at, NOTIFY_KEYS)
        url = reader.string(fields["url"].value, f"{at}.url") if "url" in fields else None
        source = None
        if "url_source" in fields:
            source = reader.string(fields["url_source"].value, f"{at}.url_source")
        if bool(url) == bool(source):
            raise reader.error(item, f"{at} needs exactly one of url or url_source")
        if url:
            problem = check_url(url)
            if problem is None and "$" in url:
                problem = "must not hold ${...}: give a URL with a token as url_source"
            if problem:
                raise reader.error(fields["url"].value, f"{at}.url {problem}")
        if source is not None and source.startswith("env:") and not source[4:]:
            node = fields["url_source"].value
            raise reader.error(node, f'{at}: url_source "{source}" names no environment variable')
        on = NOTIFY_ON
        if "on" in fields:
            on = _statuses(reader, fields["on"].value, at)
        out.append(NotifyDef(on=on, url=url or None, url_source=source))
    return tuple(out)


def _statuses(reader: Reader, node: Node, at: str) -> tuple[str, ...]:
    found: list[str] = []
    for item in reader.sequence(node, f"{at}.on"):
        status = reader.string(item, f"{at}.on") or ""
        if status not in NOTIFY_ON:
            raise reader.error(item, f'{at}.on: "{status}" is not one of {", ".join(NOTIFY_ON)}')
        if status not in found:
            found.append(status)
    if not found:
        raise reader.error(node, f"{at}.on must name at least one of {', '.join(NOTIFY_ON)}")
    return tuple(found)
