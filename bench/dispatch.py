"""What dispatching jobs to workers costs: a fan-out of no-op jobs run locally vs the same
run with ``--sw-dispatch`` over ``sparkwing worker`` processes, on one machine sharing a
sqlite state and a filesystem cache and logs (each worker with its own SPARKWING_HOME).

Each repetition runs both, in a rotating order, after one warm-up round of each (which
builds the pipeline's bundle and fills every worker's bundle cache); medians are reported
with their ratio. A report, not a test: it exits 0 whatever the ratio (2 if a run fails).

    python bench/dispatch.py [--jobs 200] [--workers 2] [--worker-parallel 2] [--reps 3] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PIPELINE = """
import sparkwing as sw


def noop(ctx):
    return None


@sw.pipeline("fanout")
def fanout(plan):
    for i in range({jobs}):
        plan.job(f"job-{{i:03d}}", noop)
"""


def sparkwing_command() -> list[str]:
    script = Path(sys.executable).parent / "sparkwing"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "sparkwing.cli.main"]


def machine_env(base: Path, profiles: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARKWING_", "CI"))}
    env.update(
        {
            "HOME": str(base / "home"),
            "SPARKWING_HOME": str(base / "sparkwing-home"),
            "XDG_CONFIG_HOME": str(base / "home" / ".config"),
            "SPARKWING_PROFILES": str(profiles),
            "SPARKWING_PROFILE": "team",
        }
    )
    return env


@contextlib.contextmanager
def workers(tmp: Path, profiles: Path, count: int, parallel: int) -> Iterator[None]:
    procs = []
    for i in range(count):
        folder = tmp / f"worker-{i}"
        folder.mkdir()
        procs.append(
            subprocess.Popen(
                [*sparkwing_command(), "worker", "--parallel", str(parallel), "--poll", "0.2s"],
                cwd=folder,
                env=machine_env(folder, profiles),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            )
        )
    try:
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def timed_run(root: Path, env: dict[str, str], *flags: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [*sparkwing_command(), "run", "fanout", "-o", "quiet", *flags],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        print(
            f"error: sparkwing run fanout {' '.join(flags)} failed:\n{done.stderr}", file=sys.stderr
        )
        sys.exit(2)
    return took


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sparkwing-bench-dispatch-") as raw:
        tmp = Path(raw)
        shared = tmp / "shared"
        profiles = tmp / "profiles.yaml"
        profiles.write_text(
            "profiles:\n  team:\n"
            f"    state: {{type: sqlite, path: {shared / 'state.db'}}}\n"
            f"    cache: {{type: filesystem, path: {shared / 'cache'}}}\n"
            f"    logs: {{type: filesystem, path: {shared / 'logs'}}}\n"
        )
        root = tmp / "runner" / "project"
        (root / ".sparkwing").mkdir(parents=True)
        (root / ".sparkwing" / "bench.py").write_text(PIPELINE.format(jobs=args.jobs))
        env = machine_env(tmp / "runner", profiles)
        samples: dict[str, list[float]] = {"local": [], "dispatched": []}
        with workers(tmp, profiles, args.workers, args.worker_parallel):
            timed_run(root, env)
            timed_run(root, env, "--sw-dispatch")
            for rep in range(args.reps):
                order = ["local", "dispatched"] if rep % 2 == 0 else ["dispatched", "local"]
                for kind in order:
                    flags = ("--sw-dispatch",) if kind == "dispatched" else ()
                    samples[kind].append(timed_run(root, env, *flags))
    local = statistics.median(samples["local"])
    dispatched = statistics.median(samples["dispatched"])
    return {
        "jobs": args.jobs,
        "workers": args.workers,
        "worker_parallel": args.worker_parallel,
        "reps": args.reps,
        "cpus": os.cpu_count(),
        "local_s": local,
        "dispatched_s": dispatched,
        "ratio": dispatched / local,
        "per_dispatched_job_ms": 1000 * dispatched / args.jobs,
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-parallel", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{args.jobs} no-op jobs, {args.workers} workers x {args.worker_parallel} slots, "
        f"{os.cpu_count()} CPUs, median of {args.reps}"
    )
    print(f"  local       {result['local_s']:8.2f} s")
    print(
        f"  dispatched  {result['dispatched_s']:8.2f} s  "
        f"({result['per_dispatched_job_ms']:.0f} ms per job)"
    )
    print(f"  ratio       {result['ratio']:8.1f}x  (dispatched / local)")


if __name__ == "__main__":
    main()
