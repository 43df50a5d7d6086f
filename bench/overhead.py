"""Orchestration overhead of `sparkwing run`, measured against the bare interpreter.

Runs, interleaved in one process and a throwaway project (temporary HOME and
SPARKWING_HOME, the built-in local profile: sqlite state, filesystem cache and logs):

  floor      `sys.executable -c pass`: the interpreter alone (not `python3` on PATH, which
             may be a version-manager shim costing more than the interpreter itself)
  version    `sparkwing --version`                       target <= 4x floor
  run-1      `sparkwing run one`: one no-op job          target <= 15x floor
  run-N      `sparkwing run fanout`: one root, N-2 parallel no-op jobs, one sink
  per job    (run-N - run-1) / (N - 1)                   target < 5 ms

Each repetition runs every command once, in a rotating order, so drift on a noisy machine
hits all of them alike; medians are reported. A report, not a test: it exits 0 whether or
not a target is met (2 if a command itself fails).

    python bench/overhead.py [--reps 7] [--jobs 200] [--parallel N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PER_JOB_TARGET_S = 0.005
RUN_RATIO_TARGET = 15.0
VERSION_RATIO_TARGET = 4.0


def sparkwing_command() -> tuple[list[str], str]:
    """The console script of this interpreter's installation (what users run)."""
    script = Path(sys.executable).parent / "sparkwing"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)], str(script)
    return [sys.executable, "-m", "sparkwing.cli.main"], f"{sys.executable} -m sparkwing.cli.main"


PIPELINES = '''
"""Benchmark pipelines: no-op jobs, so only sparkwing's own work is measured."""

import sparkwing as sw

JOBS = {jobs}


def noop(ctx):
    return None


@sw.pipeline("one")
def one(plan, args, rc):
    plan.job("only", noop)


@sw.pipeline("fanout")
def fanout(plan, args, rc):
    root = plan.job("root", noop)
    middle = [plan.job(f"job-{{i:03d}}", noop).needs(root) for i in range(JOBS - 2)]
    plan.job("sink", noop).needs(middle)
'''


@dataclass
class Measure:
    name: str
    argv: list[str]
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def make_project(base: Path, jobs: int) -> dict[str, str]:
    """Write the project; returns the isolated environment to run sparkwing in."""
    project = base / "project"
    (project / ".sparkwing").mkdir(parents=True)
    (project / ".sparkwing" / "bench.py").write_text(
        textwrap.dedent(PIPELINES).format(jobs=jobs).lstrip(), encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARKWING_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # users' interpreters keep bytecode
    env.update(
        {
            "HOME": str(base / "home"),
            "SPARKWING_HOME": str(base / "sparkwing-home"),
            "XDG_CONFIG_HOME": str(base / "home" / ".config"),
        }
    )
    (base / "home").mkdir()
    return env


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise SystemExit(f"error: {' '.join(argv)} exited {proc.returncode}: {err}")
    return elapsed


def measure(reps: int, jobs: int, parallel: int | None) -> dict[str, Any]:
    cmd, shown = sparkwing_command()
    engine = ["--sw-parallel", str(parallel)] if parallel else []
    with tempfile.TemporaryDirectory(prefix="sparkwing-bench-") as tmp:
        base = Path(tmp)
        env = make_project(base, jobs)
        cwd = base / "project"
        measures = [
            Measure("floor", [sys.executable, "-c", "pass"], []),
            Measure("version", [*cmd, "--version"], []),
            Measure("run-1", [*cmd, "run", "one", *engine], []),
            Measure(f"run-{jobs}", [*cmd, "run", "fanout", *engine], []),
        ]
        path_python = shutil.which("python3", path=env.get("PATH"))
        if path_python and Path(path_python).resolve() != Path(sys.executable).resolve():
            measures.append(Measure("python3 on PATH", [path_python, "-c", "pass"], []))
        for m in measures:  # warm-up: creates the database, fills the OS page cache
            timed(m.argv, cwd, env)
        for rep in range(reps):
            shift = rep % len(measures)
            for m in measures[shift:] + measures[:shift]:
                m.samples.append(timed(m.argv, cwd, env))
    by_name = {m.name: m for m in measures}
    floor = by_name["floor"].median
    run1 = by_name["run-1"].median
    per_job = (by_name[f"run-{jobs}"].median - run1) / (jobs - 1)
    version = by_name["version"].median
    checks = [
        {
            "name": "per-job overhead",
            "value_s": per_job,
            "target": f"< {PER_JOB_TARGET_S * 1000:g} ms",
            "ratio": per_job / PER_JOB_TARGET_S,
            "ratio_of": "target",
            "pass": per_job < PER_JOB_TARGET_S,
        },
        {
            "name": "run (1 job) / floor",
            "value_s": run1,
            "target": f"<= {RUN_RATIO_TARGET:g}x",
            "ratio": run1 / floor,
            "ratio_of": "floor",
            "pass": run1 / floor <= RUN_RATIO_TARGET,
        },
        {
            "name": "--version / floor",
            "value_s": version,
            "target": f"<= {VERSION_RATIO_TARGET:g}x",
            "ratio": version / floor,
            "ratio_of": "floor",
            "pass": version / floor <= VERSION_RATIO_TARGET,
        },
    ]
    return {
        "reps": reps,
        "jobs": jobs,
        "parallel": parallel or os.cpu_count(),
        "cpus": os.cpu_count(),
        "interpreter": sys.executable,
        "python": platform.python_version(),
        "sparkwing": shown,
        "measurements": {
            m.name: {
                "argv": m.argv,
                "median_s": m.median,
                "min_s": min(m.samples),
                "max_s": max(m.samples),
                "samples_s": m.samples,
            }
            for m in measures
        },
        "checks": checks,
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


def render(doc: dict[str, Any]) -> str:
    lines = [
        f"sparkwing overhead: {doc['reps']} interleaved repetitions, medians "
        f"({doc['cpus']} CPUs, --sw-parallel {doc['parallel']})",
        f"interpreter floor: {doc['interpreter']} -c pass (Python {doc['python']})",
        f"sparkwing:         {doc['sparkwing']}",
        "",
        f"{'command':<34}{'median':>11}{'min':>11}{'max':>11}",
    ]
    labels = {
        "floor": "python -c pass (floor)",
        "version": "sparkwing --version",
        "run-1": "sparkwing run one (1 job)",
        f"run-{doc['jobs']}": f"sparkwing run fanout ({doc['jobs']} jobs)",
        "python3 on PATH": "python3 on PATH -c pass (info)",
    }
    for name, m in doc["measurements"].items():
        lines.append(
            f"{labels.get(name, name):<34}{ms(m['median_s']):>11}{ms(m['min_s']):>11}"
            f"{ms(m['max_s']):>11}"
        )
    lines += ["", f"{'check':<24}{'value':>11}{'ratio':>16}{'target':>11}  result"]
    for c in doc["checks"]:
        ratio = f"{c['ratio']:.2f}x {c['ratio_of']}"
        lines.append(
            f"{c['name']:<24}{ms(c['value_s']):>11}{ratio:>16}{c['target']:>11}  "
            f"{'PASS' if c['pass'] else 'MISS'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7, help="repetitions (default 7)")
    parser.add_argument("--jobs", type=int, default=200, help="jobs in the fan-out (default 200)")
    parser.add_argument(
        "--parallel",
        type=int,
        default=None,
        help="pass --sw-parallel N (default: sparkwing's, the CPU count)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    opts = parser.parse_args(argv)
    if opts.reps < 1 or opts.jobs < 3:
        parser.error("--reps must be >= 1 and --jobs >= 3")
    doc = measure(opts.reps, opts.jobs, opts.parallel)
    print(json.dumps(doc, indent=2) if opts.json else render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
