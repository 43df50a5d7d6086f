"""A temp project driven through the real ``sparkwing`` CLI, for engine tests."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPARKWING = shutil.which("sparkwing", path=os.path.dirname(sys.executable)) or "sparkwing"


@dataclass
class Result:
    code: int
    out: str
    err: str


class Proj:
    def __init__(self, root: Path) -> None:
        self.root = root / "proj"
        self.home = root / "home"
        self._started: list[subprocess.Popen[str]] = []
        self.swhome = root / "swhome"
        (self.root / ".sparkwing").mkdir(parents=True)
        self.home.mkdir()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SPARKWING")},
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "SPARKWING_HOME": str(self.swhome),
            "NO_COLOR": "1",
        }

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def pipeline(self, code: str, yaml: str = "") -> None:
        self.write(".sparkwing/pipes.py", "import sparkwing as sw\n" + textwrap.dedent(code))
        self.write(".sparkwing/sparkwing.yaml", yaml)

    def secrets(self, text: str) -> None:
        path = self.home / ".config" / "sparkwing" / "secrets.env"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def popen(self, *args: str, **kw: Any) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [SPARKWING, *args],
            cwd=self.root,
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **kw,
        )
        self._started.append(proc)
        return proc

    def close(self) -> None:
        """End what a failed test left running (a run waiting at a gate would wait forever);
        SIGTERM lets the CLI cancel its run and end its jobs' process groups."""
        for proc in self._started:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate()

    def sw(self, *args: str, timeout: float = 120) -> Result:
        proc = subprocess.run(
            [SPARKWING, *args],
            cwd=self.root,
            env=self.env,
            text=True,
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def run_json(self, *args: str) -> tuple[int, dict[str, Any]]:
        res = self.sw("run", *args, "-o", "json")
        assert res.out.strip(), f"no JSON output; stderr: {res.err}"
        return res.code, json.loads(res.out.strip().splitlines()[-1])

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.swhome / "state.db")

    def nodes(self, doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {n["node_id"]: n for n in doc["nodes"]}
