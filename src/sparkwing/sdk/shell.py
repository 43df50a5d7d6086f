"""``ctx.sh`` / ``ctx.exec``: run a command, stream its output into the job log, capture stdout."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkwing.errors import CommandError
from sparkwing.sdk.runtime import Sink


@dataclass(frozen=True)
class ShellResult:
    """A finished command. ``stdout`` is the captured standard output (stderr is only logged)."""

    command: str
    returncode: int
    stdout: str
    stderr: str

    def capture(self) -> str:
        """Standard output with surrounding whitespace removed."""
        return self.stdout.strip()

    def lines(self) -> list[str]:
        """Non-empty lines of standard output."""
        return [line for line in self.stdout.splitlines() if line.strip()]

    def json(self) -> Any:
        """Standard output parsed as JSON."""
        return json.loads(self.stdout)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_command(
    sink: Sink,
    argv: Sequence[str] | str,
    *,
    shell: bool,
    check: bool = True,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    log: bool = True,
) -> ShellResult:
    import subprocess  # here, not at import: most jobs never start a command

    display = argv if isinstance(argv, str) else shlex.join(argv)
    if log:
        sink.log("info", sink.mask_text(f"$ {display}"))
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update({k: str(v) for k, v in env.items()})
    proc = subprocess.Popen(
        argv if not shell else ["/bin/sh", "-c", str(argv)],
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=full_env,
    )
    if input is not None and proc.stdin is not None:
        try:
            proc.stdin.write(input.encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
    out_parts: list[bytes] = []
    err_parts: list[bytes] = []
    _pump(proc, sink, out_parts, err_parts, log)
    rc = proc.wait()
    stdout = b"".join(out_parts).decode(errors="replace")
    stderr = b"".join(err_parts).decode(errors="replace")
    result = ShellResult(display, rc, stdout, stderr)
    if check and rc != 0:
        tail = (stderr or stdout).strip().splitlines()[-5:]
        excerpt = ("; last output: " + " | ".join(tail)) if tail else ""
        raise CommandError(
            sink.mask_text(f"command failed with exit code {rc}: {display}{excerpt}"),
            rc,
            sink.mask_text(stdout + stderr),
        )
    return result


def _pump(
    proc: Any,
    sink: Sink,
    out_parts: list[bytes],
    err_parts: list[bytes],
    log: bool,
) -> None:
    """Read stdout and stderr together so neither pipe fills, logging whole lines as they come."""
    import selectors

    sel = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    pending = {"stdout": b"", "stderr": b""}
    sel.register(proc.stdout, selectors.EVENT_READ, ("stdout", out_parts))
    sel.register(proc.stderr, selectors.EVENT_READ, ("stderr", err_parts))
    open_streams = 2
    while open_streams:
        for skey, _ in sel.select():
            stream, parts = skey.data
            chunk = os.read(skey.fd, 65536)
            if not chunk:
                sel.unregister(skey.fileobj)
                open_streams -= 1
                if pending[stream] and log:
                    sink.log(stream, sink.mask_text(pending[stream].decode(errors="replace")))
                pending[stream] = b""
                continue
            parts.append(chunk)
            if not log:
                continue
            data = pending[stream] + chunk
            *lines, rest = data.split(b"\n")
            pending[stream] = rest
            for line in lines:
                sink.log(stream, sink.mask_text(line.decode(errors="replace")))
    sel.close()
