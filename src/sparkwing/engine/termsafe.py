"""Job text made safe for a terminal: control characters shown escaped, so a job's output
can never move the cursor, erase, overwrite or recolour another line."""

from __future__ import annotations

import re

# C0 controls except tab, DEL and the C1 controls (U+0080-U+009F: some terminals read
# U+009B as a CSI introducer). Newline is handled by the callers that split lines.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\x{ord(char):02x}"


def safe_text(text: str) -> str:
    """``text`` on one line with every control character but tab escaped (``\\x1b``, ``\\r``)."""
    return _CONTROL.sub(_escape, text)


def safe_lines(text: str) -> list[str]:
    """``text`` split at newlines, each line made safe with :func:`safe_text`. A ``\\r``
    right before a newline (CRLF output) is dropped: it cannot overwrite anything there."""
    return [safe_text(line.removesuffix("\r")) for line in text.split("\n")]
