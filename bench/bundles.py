"""Pipeline bundles: what a run costs when its bundle is built, fetched from the shared cache,
or found in the local bundle cache, for a pipeline with a few real third-party requirements.

Each repetition, in one throwaway project whose user profile puts the cache surface in a
fresh shared folder:

  cold         a new SPARKWING_HOME and an empty shared cache: the bundle is built
               (requirements installed, packed, uploaded)
  remote hit   another new SPARKWING_HOME, same shared cache: fetched, verified, unpacked
               (no install)                                        target <= 0.25x cold
  local hit    that SPARKWING_HOME again: found locally            target <= 0.1x cold
  pip install  for orientation: `pip install --target` of the same requirements into an
               empty folder (what a CI job without bundles pays every time)

The installer's download cache is shared by every repetition (as a CI cache would be) and
filled by a warm-up round. Medians are reported. A report, not a test: it exits 0 whether or
not a target is met (2 if a command itself fails).

    python bench/bundles.py [--reps 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REMOTE_TARGET = 0.25
LOCAL_TARGET = 0.10
REQUIREMENTS = ["requests", "attrs", "packaging", "six==1.16.0"]

PIPELINE = '''
"""Imports its requirements in a job, so every run proves the bundle works."""

import sparkwing as sw


def check(ctx):
    import attrs
    import packaging.version
    import requests
    import six

    return {"requests": requests.__version__, "six": six.__version__}


@sw.pipeline("deps")
def deps(plan, args, rc):
    plan.job("check", check)
'''


def sparkwing_command() -> list[str]:
    script = Path(sys.executable).parent / "sparkwing"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "sparkwing.cli.main"]


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise SystemExit(f"error: {' '.join(argv)} exited {proc.returncode}: {err}")
    return elapsed


class Bench:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.project = base / "project"
        (self.project / ".sparkwing").mkdir(parents=True)
        (self.project / ".sparkwing" / "deps.py").write_text(
            textwrap.dedent(PIPELINE).lstrip(), encoding="utf-8"
        )
        (self.project / ".sparkwing" / "requirements.txt").write_text(
            "\n".join(REQUIREMENTS) + "\n", encoding="utf-8"
        )
        home = base / "home"
        (home / ".config" / "sparkwing").mkdir(parents=True)
        self.profiles = home / ".config" / "sparkwing" / "profiles.yaml"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SPARKWING_")}
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env.update(
            {
                "HOME": str(home),
                "XDG_CONFIG_HOME": str(home / ".config"),
                "PIP_CACHE_DIR": str(base / "download-cache" / "pip"),
                "UV_CACHE_DIR": str(base / "download-cache" / "uv"),
            }
        )
        self.count = 0

    def fresh(self, name: str) -> Path:
        self.count += 1
        return self.base / f"{name}-{self.count}"

    def run(self, sparkwing_home: Path) -> float:
        env = {**self.env, "SPARKWING_HOME": str(sparkwing_home)}
        argv = [*sparkwing_command(), "run", "deps", "--profile", "shared", "-o", "quiet"]
        return timed(argv, self.project, env)

    def repetition(self) -> dict[str, float]:
        shared = self.fresh("shared-cache")
        self.profiles.write_text(
            f'profiles:\n  shared:\n    cache: {{type: filesystem, path: "{shared}"}}\n',
            encoding="utf-8",
        )
        out = {"cold": self.run(self.fresh("machine"))}
        second = self.fresh("machine")
        out["remote hit"] = self.run(second)
        out["local hit"] = self.run(second)
        target = self.fresh("pip-target")
        pip = [sys.executable, "-m", "pip", "install", "-q", "--target", str(target)]
        out["pip install"] = timed(
            [*pip, "--disable-pip-version-check", "--no-input", *REQUIREMENTS],
            self.base,
            self.env,
        )
        return out


def measure(reps: int) -> dict[str, Any]:
    from sparkwing.bundle.installer import choose

    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="sparkwing-bench-bundles-") as tmp:
        bench = Bench(Path(tmp))
        bench.repetition()  # warm-up: fills the download cache and the OS page cache
        for _ in range(reps):
            for name, value in bench.repetition().items():
                samples.setdefault(name, []).append(value)
        sizes = {
            p.name: p.stat().st_size for p in Path(tmp).glob("shared-cache-*/bin/*") if p.is_file()
        }
    medians = {name: statistics.median(values) for name, values in samples.items()}
    cold = medians["cold"]
    checks = [
        {
            "name": "remote hit / cold",
            "value_s": medians["remote hit"],
            "ratio": medians["remote hit"] / cold,
            "target": f"<= {REMOTE_TARGET:g}x",
            "pass": medians["remote hit"] / cold <= REMOTE_TARGET,
        },
        {
            "name": "local hit / cold",
            "value_s": medians["local hit"],
            "ratio": medians["local hit"] / cold,
            "target": f"<= {LOCAL_TARGET:g}x",
            "pass": medians["local hit"] / cold <= LOCAL_TARGET,
        },
    ]
    return {
        "reps": reps,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "interpreter": sys.executable,
        "installer": choose()[0],
        "requirements": REQUIREMENTS,
        "bundle_bytes": max(sizes.values(), default=0),
        "measurements": {
            name: {
                "median_s": medians[name],
                "min_s": min(values),
                "max_s": max(values),
                "samples_s": values,
            }
            for name, values in samples.items()
        },
        "checks": checks,
    }


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def render(doc: dict[str, Any]) -> str:
    lines = [
        f"sparkwing bundles: {doc['reps']} repetitions, medians ({doc['cpus']} CPUs, "
        f"Python {doc['python']}, installer {doc['installer']})",
        f"requirements: {', '.join(doc['requirements'])}; bundle object "
        f"{doc['bundle_bytes'] / 1e6:.1f} MB",
        "",
        f"{'run':<30}{'median':>10}{'min':>10}{'max':>10}",
    ]
    labels = {
        "cold": "cold (build + upload)",
        "remote hit": "remote hit (fetch + unpack)",
        "local hit": "local hit",
        "pip install": "pip install --target (info)",
    }
    for name, m in doc["measurements"].items():
        lines.append(
            f"{labels[name]:<30}{fmt(m['median_s']):>10}{fmt(m['min_s']):>10}{fmt(m['max_s']):>10}"
        )
    lines += ["", f"{'check':<22}{'value':>10}{'ratio':>10}{'target':>10}  result"]
    for c in doc["checks"]:
        lines.append(
            f"{c['name']:<22}{fmt(c['value_s']):>10}{c['ratio']:>9.3f}x{c['target']:>10}  "
            f"{'PASS' if c['pass'] else 'MISS'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    opts = parser.parse_args(argv)
    if opts.reps < 1:
        parser.error("--reps must be >= 1")
    doc = measure(opts.reps)
    print(json.dumps(doc, indent=2) if opts.json else render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
