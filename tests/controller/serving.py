"""Start `sparkwing controller serve` as its own process, as an operator would, and read the
URL it prints once it listens."""

from __future__ import annotations

import select
import subprocess
import time
from collections.abc import Mapping

from tests.conftest import sparkwing_command


def launch(args: list[str], env: Mapping[str, str]) -> tuple[subprocess.Popen[str], str]:
    """The process and its URL ("" when it did not start within a minute; the caller
    asserts, then ends the process)."""
    proc = subprocess.Popen(
        [*sparkwing_command(), *args],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = ""
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while not url and time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 1)
        if ready:
            line = proc.stdout.readline()
            if "listening on " in line:
                url = line.split("listening on ", 1)[1].strip()
    return proc, url
