"""The tally project's CI pipeline: resolve -> lint + test + smoke -> build -> publish.

Run it with `sparkwing run ci` from anywhere in this folder (or `sparkwing -C DIR run ci`).
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sparkwing as sw

import _lint
import _wheel

PY = shlex.quote(sys.executable)  # jobs use the interpreter sparkwing runs on
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)\s*(;.*)?$")


@dataclass
class CiArgs:
    """Inputs: `--python-version 3.10`, `--skip-tests` (or `--skip-tests false`)."""

    python_version: Literal["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"] = "3.11"
    skip_tests: bool = False


@sw.pipeline("ci")
class CI:
    """Lint, test, build and verify the tally wheel."""

    def plan(self, plan: sw.Plan, args: CiArgs, rc: sw.RunContext) -> None:
        # plan() only describes the DAG; it must not run commands or read secrets.
        resolve = plan.job("resolve", resolve_deps).memoize(lockfile_key, ttl="7d")
        lint = plan.job("lint", lint_sources)
        test = (
            plan.job("test", run_tests)
            .needs(resolve)
            .env(PYTHONPATH="src", PYTHONDONTWRITEBYTECODE="1")
            .retry(1, backoff="2s")
            .timeout("5m")
            .skip_if(lambda ctx: ctx.args.skip_tests)
        )
        smoke = plan.job("smoke", f"{PY} -m tally --top 3 README.md").env(
            PYTHONPATH="src", PYTHONDONTWRITEBYTECODE="1"
        )
        build = plan.job("build", build_wheel).needs(resolve, lint, test, smoke).outputs("dist/**")
        plan.job("publish", publish).consumes(build)


def lockfile_key(ctx: sw.Context) -> str:
    """The memoize key of `resolve`: changes exactly when requirements.lock changes."""
    lock = (ctx.workdir / "requirements.lock").read_bytes()
    return sw.key("resolve", hashlib.sha256(lock).hexdigest())


def resolve_deps(ctx: sw.Context) -> dict[str, Any]:
    """Check every requirement is pinned and return them (a stand-in for a slow resolver)."""
    requires: list[str] = []
    seen: set[str] = set()
    lock = ctx.workdir / "requirements.lock"
    for number, raw in enumerate(lock.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        if match is None:
            raise sw.SparkwingError(f"requirements.lock:{number}: not pinned as name==version")
        name = match.group(1).lower()
        if name in seen:
            raise sw.SparkwingError(f"requirements.lock:{number}: {name} is pinned twice")
        seen.add(name)
        marker = (match.group(3) or "").lstrip(";").strip()
        requires.append(f"{name}=={match.group(2)}" + (f"; {marker}" if marker else ""))
    ctx.log.info(f"resolved {len(requires)} pinned requirement(s)")
    return {"requires": requires}


def lint_sources(ctx: sw.Context) -> int:
    major, minor = (int(part) for part in ctx.args.python_version.split("."))
    files = _lint.python_files(ctx.workdir, ["src", "tests"])
    found = [p for f in files for p in _lint.problems(f.relative_to(ctx.workdir), (major, minor))]
    for problem in found:
        ctx.log.error(problem)
    if found:
        raise sw.SparkwingError(f"lint: {len(found)} problem(s)")
    ctx.log.info(f"{len(files)} files clean for Python {ctx.args.python_version}")
    return len(files)


def run_tests(ctx: sw.Context) -> dict[str, int]:
    result = ctx.exec([sys.executable, "-m", "unittest", "discover", "-s", "tests", "-t", "."])
    ran = re.search(r"Ran (\d+) tests?", result.stderr)
    count = int(ran.group(1)) if ran else 0
    ctx.annotate(f"{count} tests passed")
    return {"tests": count}


def build_wheel(ctx: sw.Context) -> dict[str, str]:
    project = tomllib.loads((ctx.workdir / "pyproject.toml").read_text(encoding="utf-8"))
    dist = ctx.workdir / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    requires = ctx.output("resolve")["requires"]
    wheel = _wheel.build(ctx.workdir, project["project"], requires, dist)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    ctx.log.info(f"built {wheel.relative_to(ctx.workdir)} sha256={digest}")
    return {"wheel": wheel.name, "sha256": digest}


def publish(ctx: sw.Context) -> dict[str, str]:
    """Verify the wheel restored from the build job's artifacts, then publish (dry run)."""
    built = ctx.output("build")
    wheel = Path(ctx.workdir, "dist", built["wheel"])
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != built["sha256"]:
        raise sw.SparkwingError(f"{wheel.name}: sha256 {digest} differs from the build's")
    headers = _wheel.verify(wheel)
    # Plain config with a default works with no setup; set DEPLOY_TARGET in
    # ~/.config/sparkwing/config.env to change it.
    target = sw.config("DEPLOY_TARGET", "staging")
    # Optional credential: when PUBLISH_TOKEN is in secrets.env its value is masked everywhere.
    token = sw.config("PUBLISH_TOKEN", None)
    auth = f"token {token}" if token else "no token"
    ctx.log.info(f"would upload {wheel.name} ({headers['Version']}) to {target} with {auth}")
    ctx.annotate(f"{wheel.name} verified; target {target}")
    return {"wheel": wheel.name, "target": target, "sha256": digest}
