"""Sparkwing beside the task runners a team already has: `make -j N` and, when importable, doit.

The same DAG for every tool, one root, N-2 parallel jobs and one sink, at the same
parallelism, in one interleaved run (every repetition runs every command once, in a
rotating order, so drift on a noisy machine hits all of them alike; medians reported):

  shell jobs   each job runs `true`:  sparkwing vs `make -j N` (and doit's cmd-actions)
  python jobs  each job is a no-op Python function: sparkwing vs `doit -n N -P thread`
  one job      `sparkwing run one` vs the interpreter floor `sys.executable -c pass`

Sparkwing keeps its whole record (SQLite state, every job's log, events, timings) in a
throwaway SPARKWING_HOME; make and doit keep nothing (doit its task state only). CPU is
user+system time of the whole process tree (os.wait4), so per-job CPU counts the job
processes too. `--scale` adds one run each of a 10,000-job wide DAG and a 10,000-long
chain, printing per-job cost and the peak RSS of the largest process next to the 200-job
figures.

The cost of creating a file is probed in the bench's folder before and after the runs:
sparkwing creates one log file per job, make and doit none. On ext4 without a journal (these
VMs' root filesystem) a file made within about half a minute of a mass deletion (a test
suite's, an earlier bench's clean-up) costs up to a millisecond instead of ~25 us, because
the kernel skips each recently freed inode one by one; the report says so when it sees it.

A report, not a test: exits 0 whether or not a target is met (2 if a command fails).
doit is not a dependency of sparkwing: `pip install doit` to include it.

`--against OTHER/bin/sparkwing` also times another installation (an earlier version's
venv) in the same interleaved run and prints this one's time over that one's.

    python bench/peers.py [--reps 7] [--jobs 200] [--parallel 2] [--scale] [--against S] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHELL_VS_MAKE_TARGET = 3.0  # sparkwing wall time <= 3x make -j N
PY_VS_DOIT_TARGET = 1.0  # sparkwing wall time <= 1.0x doit -n N -P thread
ONE_JOB_TARGET = 8.0  # one-job run <= 8x the interpreter floor
CPU_PER_JOB_TARGET_S = 0.002
SCALE_PER_JOB_TARGET = 1.5  # per-job cost at 10,000 <= 1.5x the cost at 200
SCALE_RSS_TARGET_MB = 300.0
# Creating a small file costs ~25 us on these machines; beyond this the disk is recovering
# from a mass deletion and every sparkwing figure carries that cost once per job.
SLOW_CREATE_S = 150e-6

PIPELINES = '''
"""Benchmark pipelines: every DAG the peers run too."""

import sparkwing as sw

JOBS = {jobs}
SCALE = {scale}


def noop(ctx):
    return None


@sw.pipeline("one")
def one(plan, args, rc):
    plan.job("only", noop)


def fan(plan, n, action):
    root = plan.job("root", action)
    middle = [plan.job(f"job-{{i:05d}}", action).needs(root) for i in range(n - 2)]
    plan.job("sink", action).needs(middle)


def chain(plan, n, action):
    prev = plan.job("job-00000", action)
    for i in range(1, n):
        prev = plan.job(f"job-{{i:05d}}", action).needs(prev)


@sw.pipeline("fan-py")
def fan_py(plan, args, rc):
    fan(plan, JOBS, noop)


@sw.pipeline("fan-sh")
def fan_sh(plan, args, rc):
    fan(plan, JOBS, "true")


@sw.pipeline("scale-wide")
def scale_wide(plan, args, rc):
    fan(plan, SCALE, noop)


@sw.pipeline("scale-chain")
def scale_chain(plan, args, rc):
    chain(plan, SCALE, noop)
'''

DODO = '''
"""doit tasks: the same fan-out as the sparkwing pipelines."""

JOBS = {jobs}
DOIT_CONFIG = {{"verbosity": 0, "dep_file": {db!r}}}


def noop():
    return True


def action():
    return [noop] if {python} else ["true"]


def task_root():
    return {{"actions": action()}}


def task_mid():
    for i in range(JOBS - 2):
        yield {{"name": f"job-{{i:05d}}", "actions": action(), "task_dep": ["root"]}}


def task_sink():
    return {{"actions": action(), "task_dep": ["mid"]}}
'''


def sparkwing_command() -> list[str]:
    """The console script of this interpreter's installation (what users run)."""
    script = Path(sys.executable).parent / "sparkwing"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "sparkwing.cli.main"]


@dataclass
class Sample:
    wall: float
    cpu: float
    rss_mb: float


@dataclass
class Measure:
    name: str
    argv: list[str]
    cwd: Path
    samples: list[Sample] = field(default_factory=list)
    env: dict[str, str] | None = None  # instead of the shared one (a baseline's own home)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)


def run_tree(argv: list[str], cwd: Path, env: dict[str, str]) -> Sample:
    """Wall time, CPU and peak RSS of a command and every process it waited for."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    err = proc.stderr.read()  # drained before waiting, so a chatty tool cannot block
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(
            f"error: {' '.join(argv)} exited {proc.returncode}: "
            f"{err.decode(errors='replace').strip()[-2000:]}"
        )
    # ru_maxrss of wait4 covers the process and the descendants it reaped (KiB on Linux).
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def write_projects(base: Path, jobs: int, scale: int) -> tuple[Path, dict[str, str]]:
    project = base / "project"
    (project / ".sparkwing").mkdir(parents=True)
    (project / ".sparkwing" / "bench.py").write_text(
        textwrap.dedent(PIPELINES).format(jobs=jobs, scale=scale).lstrip(), encoding="utf-8"
    )
    targets = [f"job-{i:05d}" for i in range(jobs - 2)]
    make = [".PHONY: root sink " + " ".join(targets), "root:", "\t@true"]
    make += [f"{t}: root\n\t@true" for t in targets]
    make += ["sink: " + " ".join(targets), "\t@true", ""]
    (base / "make").mkdir()
    (base / "make" / "Makefile").write_text("\n".join(make), encoding="utf-8")
    for kind, python in (("doit-py", True), ("doit-sh", False)):
        (base / kind).mkdir()
        (base / kind / "dodo.py").write_text(
            textwrap.dedent(DODO)
            .format(jobs=jobs, python=python, db=str(base / kind / ".doit.db"))
            .lstrip(),
            encoding="utf-8",
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARKWING_")}
    # Users' interpreters keep bytecode: without it every run compiles sparkwing anew and
    # the figures measure the compiler (the warm-up run writes the .pyc files).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        {
            "HOME": str(base / "home"),
            "SPARKWING_HOME": str(base / "sparkwing-home"),
            "XDG_CONFIG_HOME": str(base / "home" / ".config"),
        }
    )
    (base / "home").mkdir()
    return project, env


def create_cost(folder: Path, label: str, n: int = 100) -> float:
    """Seconds to create, write and close one small file in ``folder`` (the median of
    ``n``); the files stay (deleting them would slow the next creations down)."""
    probe = folder / f"create-probe-{label}"
    probe.mkdir()
    times = []
    for i in range(n):
        start = time.perf_counter()
        fd = os.open(probe / f"{i}.ndjson", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(fd, b"{}\n")
        os.close(fd)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def doit_available() -> bool:
    return importlib.util.find_spec("doit") is not None


def measure(
    reps: int, jobs: int, parallel: int, scale: int | None, against: str | None = None
) -> dict[str, Any]:
    sw = sparkwing_command()
    engine = ["--sw-parallel", str(parallel)]
    with tempfile.TemporaryDirectory(prefix="sparkwing-peers-") as tmp:
        base = Path(tmp)
        project, env = write_projects(base, jobs, scale or 3)
        doit = [sys.executable, "-m", "doit", "-n", str(parallel), "-P", "thread"]
        measures = [
            Measure("floor", [sys.executable, "-c", "pass"], project),
            Measure("sparkwing one", [*sw, "run", "one", *engine], project),
            Measure("make shell", ["make", "-s", f"-j{parallel}", "sink"], base / "make"),
            Measure("sparkwing shell", [*sw, "run", "fan-sh", *engine], project),
            Measure("sparkwing python", [*sw, "run", "fan-py", *engine], project),
        ]
        if against:
            # Another installation's console script (an earlier version), in the same
            # interleaved run, with its own SPARKWING_HOME so neither reads the other's state.
            own = {**env, "SPARKWING_HOME": str(base / "against-home")}
            measures += [
                Measure(
                    f"sparkwing {kind} (against)", [against, "run", name, *engine], project, env=own
                )
                for kind, name in (("one", "one"), ("shell", "fan-sh"), ("python", "fan-py"))
            ]
        if doit_available():
            measures += [
                Measure("doit shell", doit, base / "doit-sh"),
                Measure("doit python", doit, base / "doit-py"),
            ]
        creates = {"before": create_cost(base, "before")}
        for m in measures:  # warm-up: creates the database, fills the OS page cache
            run_tree(m.argv, m.cwd, m.env or env)
        for rep in range(reps):
            shift = rep % len(measures)
            for m in measures[shift:] + measures[:shift]:
                m.samples.append(run_tree(m.argv, m.cwd, m.env or env))
        creates["after"] = create_cost(base, "after")
        scaled: dict[str, Sample] = {}
        if scale:
            for name in ("scale-wide", "scale-chain"):
                scaled[name] = run_tree([*sw, "run", name, *engine], project, env)
    doc = report(measures, scaled, jobs, parallel, scale, reps)
    doc["file_create_s"] = creates
    return doc


def report(
    measures: list[Measure],
    scaled: dict[str, Sample],
    jobs: int,
    parallel: int,
    scale: int | None,
    reps: int,
) -> dict[str, Any]:
    by = {m.name: m for m in measures}
    one_wall, one_cpu = by["sparkwing one"].median("wall"), by["sparkwing one"].median("cpu")
    checks: list[dict[str, Any]] = []

    def check(name: str, value: float, base: float, target: float, unit: str = "x") -> None:
        ratio = value / base if base else float("inf")
        text = f"<= {target:g}{unit}"
        checks.append({"name": name, "ratio": ratio, "target": text, "pass": ratio <= target})

    check("shell: sparkwing / make", by["sparkwing shell"].median("wall"),
          by["make shell"].median("wall"), SHELL_VS_MAKE_TARGET)  # fmt: skip
    if "doit python" in by:
        check("python: sparkwing / doit", by["sparkwing python"].median("wall"),
              by["doit python"].median("wall"), PY_VS_DOIT_TARGET)  # fmt: skip
        check("shell: sparkwing / doit", by["sparkwing shell"].median("wall"),
              by["doit shell"].median("wall"), float("inf"))  # fmt: skip
    check("one job / floor", one_wall, by["floor"].median("wall"), ONE_JOB_TARGET)
    per_job: dict[str, dict[str, float]] = {}
    for kind in ("shell", "python"):
        m = by[f"sparkwing {kind}"]
        per_job[kind] = {
            "wall_s": (m.median("wall") - one_wall) / (jobs - 1),
            "cpu_s": (m.median("cpu") - one_cpu) / (jobs - 1),
            "rss_mb": m.median("rss_mb"),
        }
        cpu = per_job[kind]["cpu_s"]
        checks.append(
            {
                "name": f"{kind}: CPU per job",
                "ratio": cpu / CPU_PER_JOB_TARGET_S,
                "value_ms": cpu * 1000,
                "target": f"<= {CPU_PER_JOB_TARGET_S * 1000:g} ms",
                "pass": cpu <= CPU_PER_JOB_TARGET_S,
            }
        )
    scale_doc: dict[str, Any] = {}
    if scale:
        base_cost = per_job["python"]["wall_s"]
        for name, s in scaled.items():
            cost = (s.wall - one_wall) / (scale - 1)
            scale_doc[name] = {"wall_s": s.wall, "per_job_s": cost, "rss_mb": s.rss_mb}
            check(f"{name}: per job vs {jobs}", cost, base_cost, SCALE_PER_JOB_TARGET)
            checks.append(
                {
                    "name": f"{name}: peak RSS",
                    "ratio": s.rss_mb / SCALE_RSS_TARGET_MB,
                    "value_mb": s.rss_mb,
                    "target": f"<= {SCALE_RSS_TARGET_MB:g} MB",
                    "pass": s.rss_mb <= SCALE_RSS_TARGET_MB,
                }
            )
    against = {
        kind: {
            "wall_ratio": by[f"sparkwing {kind}"].median("wall")
            / by[f"sparkwing {kind} (against)"].median("wall"),
            "cpu_ratio": by[f"sparkwing {kind}"].median("cpu")
            / by[f"sparkwing {kind} (against)"].median("cpu"),
        }
        for kind in ("one", "shell", "python")
        if f"sparkwing {kind} (against)" in by
    }
    return {
        "reps": reps,
        "jobs": jobs,
        "against": against,
        "parallel": parallel,
        "doit": doit_available(),
        "measurements": {
            m.name: {
                "argv": m.argv,
                "wall_median_s": m.median("wall"),
                "wall_min_s": min(s.wall for s in m.samples),
                "cpu_median_s": m.median("cpu"),
                "rss_median_mb": m.median("rss_mb"),
            }
            for m in measures
        },
        "per_job": per_job,
        "scale": {"jobs": scale, "runs": scale_doc} if scale else None,
        "checks": checks,
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


def render(doc: dict[str, Any]) -> str:
    lines = [
        f"sparkwing vs peers: {doc['jobs']}-job fan-out, parallelism {doc['parallel']}, "
        f"{doc['reps']} interleaved repetitions, medians"
        + ("" if doc["doit"] else "  (doit not importable: pip install doit)"),
        "",
        f"{'command':<20}{'wall':>11}{'min':>11}{'cpu':>11}{'peak rss':>11}",
    ]
    for name, m in doc["measurements"].items():
        lines.append(
            f"{name:<20}{ms(m['wall_median_s']):>11}{ms(m['wall_min_s']):>11}"
            f"{ms(m['cpu_median_s']):>11}{m['rss_median_mb']:>8.1f} MB"
        )
    lines += ["", "per job (run-N minus run-1, over N-1):"]
    for kind, p in doc["per_job"].items():
        lines.append(f"  {kind:<8} wall {ms(p['wall_s']):>9}   cpu {ms(p['cpu_s']):>9}")
    if doc["scale"]:
        lines += ["", f"scale ({doc['scale']['jobs']} jobs, one run each):"]
        for name, s in doc["scale"]["runs"].items():
            lines.append(
                f"  {name:<12} wall {ms(s['wall_s']):>9}   per job {ms(s['per_job_s']):>9}   "
                f"peak rss {s['rss_mb']:.1f} MB"
            )
    if doc["against"]:
        lines += ["", "this installation / the one given with --against (below 1: faster):"]
        for kind, r in doc["against"].items():
            lines.append(f"  {kind:<8} wall {r['wall_ratio']:>6.2f}x   cpu {r['cpu_ratio']:>6.2f}x")
    creates = doc.get("file_create_s") or {}
    if creates:
        lines += [
            "",
            "file creation in the bench's folder: "
            + ", ".join(f"{when} {seconds * 1e6:.0f} us" for when, seconds in creates.items()),
        ]
        if max(creates.values()) > SLOW_CREATE_S:
            lines += [
                "  slow: this disk is still recovering from a mass deletion (ext4 without a",
                "  journal skips recently freed inodes one by one); sparkwing pays it once per",
                "  job (its log file), make nothing. Re-run after half a minute of quiet.",
            ]
    lines += ["", f"{'check':<34}{'ratio':>10}{'target':>12}  result"]
    for c in doc["checks"]:
        lines.append(
            f"{c['name']:<34}{c['ratio']:>9.2f}x{c['target']:>12}  "
            f"{'PASS' if c['pass'] else 'MISS'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--reps", type=int, default=7, help="repetitions (default 7)")
    parser.add_argument("--jobs", type=int, default=200, help="jobs in the fan-out (default 200)")
    parser.add_argument("--parallel", type=int, default=2, help="parallelism of every tool")
    parser.add_argument(
        "--scale",
        nargs="?",
        type=int,
        const=10_000,
        default=None,
        help="also run a wide DAG and a chain of this many jobs (default 10000)",
    )
    parser.add_argument(
        "--against",
        metavar="SPARKWING",
        help="also time another installation's sparkwing script (e.g. an earlier version's "
        "venv/bin/sparkwing) in the same interleaved run, for a before/after comparison",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    opts = parser.parse_args(argv)
    if opts.reps < 1 or opts.jobs < 3 or opts.parallel < 1:
        parser.error("--reps and --parallel must be >= 1, --jobs >= 3")
    doc = measure(opts.reps, opts.jobs, opts.parallel, opts.scale, opts.against)
    print(json.dumps(doc, indent=2) if opts.json else render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
