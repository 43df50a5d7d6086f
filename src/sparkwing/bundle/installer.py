"""Installs a pipeline's requirements into a bundle folder with ``uv pip install --target``
when uv is on PATH, else ``pip install --target`` of this interpreter.

``SPARKWING_INSTALLER=pip`` or ``=uv`` forces one. A failure is one line naming the
requirement that could not be installed; the installer's whole output is kept in a log file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from sparkwing.bundle.requirements import Requirements
from sparkwing.errors import ConfigError, UsageError

_PIP_PATTERNS = (
    re.compile(r"Could not find a version that satisfies the requirement (.+?)(?: \(from |$)"),
    re.compile(r"No matching distribution found for (.+?)\s*$"),
    re.compile(r"Invalid requirement: '?(.+?)'?(?::|$)"),
    re.compile(r"Could not install requirement (.+?) because"),
)
_UV_MARK = "\u00d7"  # uv starts its error reports with a multiplication sign
_UV_PATTERNS = (
    re.compile(r"you require (.+?), we can conclude"),
    re.compile(r"Because (\S+?) was not found"),
    re.compile(r"Failed to (?:download|build|fetch)(?: and build)? `(.+?)`"),
    re.compile(r"Failed to parse: `(.+?)`"),
)
# pip announces each requirement before working on it: the last one is where it failed.
_COLLECTING = re.compile(r"^Collecting (\S+)")


def choose() -> tuple[str, list[str]]:
    """(name, command prefix up to and including ``install``) of the installer to use."""
    wanted = os.environ.get("SPARKWING_INSTALLER", "").strip().lower()
    if wanted not in ("", "uv", "pip"):
        raise UsageError(f"SPARKWING_INSTALLER={wanted!r}: expected uv or pip")
    uv = shutil.which("uv") if wanted in ("", "uv") else None
    if uv:
        return "uv", [uv, "pip", "install", "--python", sys.executable]
    if wanted == "uv":
        raise UsageError("SPARKWING_INSTALLER=uv but uv is not on PATH")
    return "pip", [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-input",
        "--disable-pip-version-check",
        "--no-compile",
        "--no-warn-script-location",
    ]


def _uv_export(sparkwing_dir: Path, dest: Path) -> Path:
    uv = shutil.which("uv")
    if uv is None:
        raise ConfigError(
            f"{sparkwing_dir / 'uv.lock'}: installing from uv.lock needs uv on PATH "
            "(or export it: uv export --format requirements-txt -o .sparkwing/requirements.lock)"
        )
    out = dest / "uv-export.txt"
    argv = [uv, "export", "--frozen", "--no-emit-project", "--no-header", "--format"]
    proc = subprocess.run(
        [*argv, "requirements-txt", "--output-file", str(out)],
        cwd=sparkwing_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise ConfigError(f"{sparkwing_dir / 'uv.lock'}: uv export failed: {last}")
    return out


def _arguments(req: Requirements, sparkwing_dir: Path, work: Path) -> list[str]:
    if req.source in ("requirements.txt", "requirements.lock"):
        return ["-r", str(sparkwing_dir / req.source)]
    if req.source == "uv.lock":
        return ["-r", str(_uv_export(sparkwing_dir, work)), "--no-deps"]
    listing = work / "requirements.in"
    listing.write_text("\n".join(req.lines) + "\n", encoding="utf-8")
    # A lock is complete: its pins are installed as they are, nothing else is resolved.
    return ["-r", str(listing), *(["--no-deps"] if req.source == "pylock.toml" else [])]


def failing_requirement(output: str) -> str | None:
    """The requirement an installer's output says it could not install, if it names one."""
    lines = [line.strip() for line in output.splitlines()]
    for line in lines:
        for pattern in (*_PIP_PATTERNS, *_UV_PATTERNS):
            match = pattern.search(line)
            if match:
                return match.group(1).strip().strip("'\"`")
    collecting = [m.group(1) for m in map(_COLLECTING.match, lines) if m]
    return collecting[-1] if collecting else None


def _last_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("ERROR:", "error:", _UV_MARK)):
            return line.lstrip(_UV_MARK).strip()
    return lines[-1] if lines else "no output"


def install(req: Requirements, sparkwing_dir: Path, target: Path, log_path: Path) -> str:
    """Install ``req`` into ``target``; returns the installer's name. On failure raises
    ConfigError naming the failing requirement (the full output stays in ``log_path``)."""
    name, command = choose()
    work = target.parent
    argv = [*command, "--target", str(target), *_arguments(req, sparkwing_dir, work)]
    env = dict(os.environ)
    env["PYTHONNOUSERSITE"] = "1"
    env.pop("PIP_USER", None)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        log.write(("$ " + " ".join(argv) + "\n").encode())
        log.flush()
        try:
            proc = subprocess.run(
                argv,
                cwd=sparkwing_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                check=False,
            )
        except OSError as exc:
            raise UsageError(f"cannot start the installer {argv[0]}: {exc}") from None
    if proc.returncode == 0:
        return name
    output = log_path.read_text(encoding="utf-8", errors="replace")
    where = sparkwing_dir / (req.source or "requirements.txt")
    failing = failing_requirement(output)
    what = f'requirement "{failing}"' if failing else "the requirements"
    raise ConfigError(
        f"{where}: {name} could not install {what}: {_last_error(output)} (log: {log_path})"
    )
