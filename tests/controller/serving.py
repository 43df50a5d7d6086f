"""Start `sparkwing controller serve` as its own process, as an operator would, from a
folder whose profile "store" keeps everything on local files, and read the URL it prints
once it listens."""

from __future__ import annotations

import select
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

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


def controller_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A project folder with profile "store" (sqlite state, filesystem cache and logs, in
    the data folder): the folder and the data folder."""
    folder, data = tmp_path / "controller", tmp_path / "controller-data"
    (folder / ".sparkwing").mkdir(parents=True)
    (folder / ".sparkwing" / "sparkwing.yaml").write_text(
        "profiles:\n"
        "  store:\n"
        f'    state: {{type: sqlite, path: "{data}/state.db"}}\n'
        f'    cache: {{type: filesystem, path: "{data}/cache"}}\n'
        f'    logs: {{type: filesystem, path: "{data}/logs"}}\n'
    )
    return folder, data
