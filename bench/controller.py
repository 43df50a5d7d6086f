"""Cost of going through a controller, measured against its own backing store used directly.

Starts `sparkwing controller serve` (a separate process, as deployed) on a free loopback
port over a throwaway profile (sqlite state, filesystem cache and logs), then, interleaved:

  cache      put_file + get_file of one 64 MiB artifact: through the controller's HTTP
             cache vs the same FilesystemCache folder opened directly   target ratio >= 0.6
             (each side then deletes the object, untimed)
  logs       appending log lines in batches (as the engine flushes them): through the
             controller vs FilesystemLogs on the same folder           target ratio >= 0.5

A ratio is direct time / controller time (1.0: the controller costs nothing). Medians of
interleaved repetitions (the order rotates each time); a report, not a test: it exits 0
whether or not a target is met. The machine's load moves the cache ratio most (the
controller side needs two busy processes at once): run it two or three times.

    python bench/controller.py [--reps 7] [--mib 64] [--lines 20000] [--batch 1000] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CACHE_TARGET = 0.6
LOGS_TARGET = 0.5


def sparkwing_command() -> list[str]:
    script = Path(sys.executable).parent / "sparkwing"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "sparkwing.cli.main"]


def start_controller(base: Path) -> tuple[subprocess.Popen[str], str, str, dict[str, str]]:
    """The controller process, its url, an admin token, and the environment it runs in."""
    folder, data = base / "controller", base / "data"
    (folder / ".sparkwing").mkdir(parents=True)
    (folder / ".sparkwing" / "sparkwing.yaml").write_text(
        "profiles:\n  bench:\n"
        f'    state: {{type: sqlite, path: "{data}/state.db"}}\n'
        f'    cache: {{type: filesystem, path: "{data}/cache"}}\n'
        f'    logs: {{type: filesystem, path: "{data}/logs"}}\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARKWING_")}
    env.update(
        HOME=str(base / "home"),
        XDG_CONFIG_HOME=str(base / "home" / ".config"),
        SPARKWING_CONTROLLER_KEY=base64.b64encode(os.urandom(32)).decode(),
    )
    cmd = [*sparkwing_command(), "-C", str(folder)]
    create = ["controller", "token", "create", "--name", "bench", "--scope", "admin"]
    token = subprocess.run(
        [*cmd, *create, "--profile", "bench"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    proc = subprocess.Popen(
        [*cmd, "controller", "serve", "--profile", "bench", "--port", "0", "--no-access-log"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if select.select([proc.stdout], [], [], 1)[0]:
            line = proc.stdout.readline()
            if "listening on " in line:
                return proc, line.split("listening on ", 1)[1].strip(), token, env
    proc.kill()
    raise SystemExit("error: the controller did not start")


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


Phases = dict[str, float]


def measure(reps: int, mib: int, lines: int, batch: int) -> dict[str, Any]:
    from sparkwing.surfaces.cache.filesystem import FilesystemCache
    from sparkwing.surfaces.logs.base import LogRecord
    from sparkwing.surfaces.logs.filesystem import FilesystemLogs
    from sparkwing.surfaces.open import open_cache, open_logs
    from sparkwing.surfaces.spec import SurfaceSpec

    with tempfile.TemporaryDirectory(prefix="sparkwing-bench-controller-") as tmp:
        base = Path(tmp)
        proc, url, token, _ = start_controller(base)
        try:
            spec = SurfaceSpec(type="controller", url=url, token=token)
            remote_cache, remote_logs = open_cache(spec), open_logs(spec)
            direct_cache = FilesystemCache(base / "data" / "cache")
            direct_logs = FilesystemLogs(base / "data" / "logs")
            artifact = base / "artifact.bin"
            with artifact.open("wb") as fh:
                for _ in range(mib):
                    fh.write(os.urandom(1 << 20))
            records = [
                LogRecord(ts=f"2026-11-27T03:00:{i % 60:02d}.000000Z", msg=f"line {i} " + "x" * 80)
                for i in range(batch)
            ]
            counter = iter(range(10**9))

            def cache_round(cache: Any) -> Callable[[], Phases]:
                def run() -> Phases:
                    key = f"bin/bench-{next(counter)}"
                    fetched = base / "fetched.bin"  # replaced each round, by either side
                    put = timed(lambda: cache.put_file(key, artifact))
                    get = timed(lambda: cache.get_file(key, fetched))
                    assert fetched.stat().st_size == mib << 20
                    cache.delete(key)  # cleanup, untimed on both sides: not part of put+get
                    return {"put": put, "get": get}

                return run

            def logs_round(logs: Any) -> Callable[[], Phases]:
                def run() -> Phases:
                    run_id = f"run-bench-{next(counter)}"

                    def append() -> None:
                        for _ in range(max(1, lines // batch)):
                            logs.append(run_id, "job", records)
                        logs.flush()

                    return {"append": timed(append)}

                return run

            cases = {
                "cache direct": cache_round(direct_cache),
                "cache controller": cache_round(remote_cache),
                "logs direct": logs_round(direct_logs),
                "logs controller": logs_round(remote_logs),
            }
            samples: dict[str, list[float]] = {name: [] for name in cases}
            phases: dict[str, dict[str, list[float]]] = {name: {} for name in cases}
            for fn in cases.values():  # warm-up: connections, page cache, imports
                fn()
            names = list(cases)
            for rep in range(reps):
                shift = rep % len(names)
                for name in names[shift:] + names[:shift]:
                    got = cases[name]()
                    samples[name].append(sum(got.values()))
                    for phase, seconds in got.items():
                        phases[name].setdefault(phase, []).append(seconds)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    med = {name: statistics.median(s) for name, s in samples.items()}
    phase_med = {
        name: {phase: statistics.median(s) for phase, s in got.items()}
        for name, got in phases.items()
    }
    appended = max(1, lines // batch) * batch
    cache_ratio = med["cache direct"] / med["cache controller"]
    logs_ratio = med["logs direct"] / med["logs controller"]
    return {
        "reps": reps,
        "mib": mib,
        "lines": appended,
        "batch": batch,
        "cpus": os.cpu_count(),
        "samples_s": samples,
        "median_s": med,
        "phase_median_s": phase_med,
        "cache_mib_per_s": {
            "direct": 2 * mib / med["cache direct"],
            "controller": 2 * mib / med["cache controller"],
        },
        "log_lines_per_s": {
            "direct": appended / med["logs direct"],
            "controller": appended / med["logs controller"],
        },
        "checks": [
            {
                "name": f"cache put+get {mib} MiB",
                "ratio": cache_ratio,
                "target": CACHE_TARGET,
                "pass": cache_ratio >= CACHE_TARGET,
            },
            {
                "name": f"log append ({batch}/batch)",
                "ratio": logs_ratio,
                "target": LOGS_TARGET,
                "pass": logs_ratio >= LOGS_TARGET,
            },
        ],
    }


def render(doc: dict[str, Any]) -> str:
    med = doc["median_s"]
    cache, logs = doc["cache_mib_per_s"], doc["log_lines_per_s"]
    lines = [
        f"sparkwing controller vs its backing store: {doc['reps']} interleaved repetitions, "
        f"medians ({doc['cpus']} CPUs, loopback)",
        "",
        f"{'measurement':<38}{'direct':>16}{'controller':>16}",
        f"{'cache put+get ' + str(doc['mib']) + ' MiB (time)':<38}"
        f"{med['cache direct'] * 1000:>13.0f} ms{med['cache controller'] * 1000:>13.0f} ms",
        *(
            f"{'  ' + phase + ' (time)':<38}{direct * 1000:>13.0f} ms"
            f"{doc['phase_median_s']['cache controller'][phase] * 1000:>13.0f} ms"
            for phase, direct in doc["phase_median_s"]["cache direct"].items()
        ),
        f"{'cache throughput':<38}{cache['direct']:>11.0f} MiB/s{cache['controller']:>11.0f} MiB/s",
        f"{'log append ' + str(doc['lines']) + ' lines (time)':<38}"
        f"{med['logs direct'] * 1000:>13.0f} ms{med['logs controller'] * 1000:>13.0f} ms",
        f"{'log lines per second':<38}{logs['direct']:>16,.0f}{logs['controller']:>16,.0f}",
        "",
        f"{'check (direct / controller)':<38}{'ratio':>8}{'target':>10}  result",
    ]
    for c in doc["checks"]:
        lines.append(
            f"{c['name']:<38}{c['ratio']:>8.2f}{'>= ' + str(c['target']):>10}  "
            f"{'PASS' if c['pass'] else 'MISS'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7, help="repetitions (default 7)")
    parser.add_argument("--mib", type=int, default=64, help="artifact size in MiB (default 64)")
    parser.add_argument("--lines", type=int, default=20_000, help="log lines per round")
    parser.add_argument("--batch", type=int, default=1000, help="log lines per append")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    opts = parser.parse_args(argv)
    if min(opts.reps, opts.mib, opts.lines, opts.batch) < 1:
        parser.error("every count must be at least 1")
    doc = measure(opts.reps, opts.mib, opts.lines, opts.batch)
    print(json.dumps(doc, indent=2) if opts.json else render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
