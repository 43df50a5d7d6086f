"""Server time of the dashboard's pages with a big history, against the store reads behind them.

Builds a throwaway profile (sqlite state, filesystem logs) holding 100,000 finished runs, one
run with a 60-job DAG, and one job with a 200,000-line log; serves ``sparkwing dashboard``'s
app on a loopback port (uvicorn, in this process) and times, interleaved:

  runs page        GET /runs (the newest 50)         vs  state.list_runs(limit=50)
  runs, old page   GET /runs?cursor=...  (deep)      vs  list_runs(limit=50, cursor=...)
  runs, filtered   GET /runs?branch=rare (scans a bounded number of records) vs list_runs
  run page         GET /runs/{id} (60-job DAG)       vs  get_run + get_plan + list_nodes
  log page         GET /runs/{id}/jobs/{job}/log     vs  logs.read(tail=1000)

Each row prints the median server time (request sent to last byte, over loopback), the
direct store read, their ratio and the page's size; the log page must stay far smaller than
the log (it never holds more than a page of lines). A report, not a test: it exits 0.

    python bench/dashboard.py [--runs 100000] [--lines 200000] [--reps 9] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGET_MS = {"runs page": 100, "runs, old page": 100, "runs, filtered": 300, "run page": 150}
LOG_TARGET_MS = 300


def _iso(i: int) -> str:
    seconds = 1_700_000_000 + i * 7
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".000000Z"


def populate(root: Path, runs: int, lines: int) -> tuple[Any, str, str]:
    """The profile, the big run's id, and the id of a run deep in history."""
    from sparkwing.conf.resolved import ResolvedProfile
    from sparkwing.surfaces.logs.base import LogRecord
    from sparkwing.surfaces.logs.filesystem import FilesystemLogs
    from sparkwing.surfaces.spec import SurfaceSpec
    from sparkwing.surfaces.state.base import NodeRecord, RunRecord
    from sparkwing.surfaces.state.sqlite import SqliteState

    profile = ResolvedProfile(
        name="bench",
        source="flag",
        state=SurfaceSpec(type="sqlite", path=str(root / "state.db")),
        cache=SurfaceSpec(type="filesystem", path=str(root / "cache")),
        logs=SurfaceSpec(type="filesystem", path=str(root / "logs")),
        secrets=SurfaceSpec(type="none"),
    )
    state = SqliteState(root / "state.db")
    started = time.perf_counter()
    ids = []
    for i in range(runs):
        run_id = f"run-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(1_700_000_000 + i * 7))}-{i:06d}"
        ids.append(run_id)
        state.create_run(
            RunRecord(
                run_id=run_id,
                pipeline=f"pipe-{i % 7}",
                status="failed" if i % 13 == 0 else "success",
                created_at=_iso(i),
                started_at=_iso(i),
                finished_at=_iso(i + 3),
                git={"sha": f"{i:040x}", "branch": "rare" if i % 5000 == 0 else "main"},
                trigger="cli",
                surfaces={"logs": {"type": "filesystem", "path": str(root / "logs")}},
            )
        )
    big = ids[-1]
    jobs = [{"id": f"job-{j:02d}", "needs": [f"job-{j // 3:02d}"] if j else []} for j in range(60)]
    state.save_plan(big, {"jobs": jobs})
    state.upsert_nodes(
        [
            NodeRecord(
                run_id=big,
                node_id=str(job["id"]),
                status="success",
                attempt=1,
                needs=list(job["needs"]),
                started_at=_iso(runs + k),
                finished_at=_iso(runs + k + 2),
                output={"k": k},
            )
            for k, job in enumerate(jobs)
        ]
    )
    state.close()
    logs = FilesystemLogs(root / "logs")
    batch = 20_000
    for start in range(0, lines, batch):
        logs.append(
            big,
            "job-00",
            [
                LogRecord(_iso(runs + i // 100), f"log line {i} " + "x" * 60)
                for i in range(start, min(start + batch, lines))
            ],
        )
    print(
        f"stored {runs:,} runs and a {lines:,}-line log in {time.perf_counter() - started:.0f}s",
        file=sys.stderr,
    )
    return profile, big, ids[len(ids) // 2]


def median_ms(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    samples, result = [], None
    for _ in range(reps):
        begin = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - begin) * 1000)
    return statistics.median(samples), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()

    import httpx

    from sparkwing.controller.server import serve_in_thread
    from sparkwing.dashboard.app import local_app
    from sparkwing.dashboard.auth import OneTimeLogin
    from sparkwing.dashboard.source import ProfileSource
    from sparkwing.surfaces.logs.base import LogQuery

    with tempfile.TemporaryDirectory(prefix="sw-bench-dashboard-") as tmp:
        profile, big, middle = populate(Path(tmp), opts.runs, opts.lines)
        login = OneTimeLogin("bench")
        source = ProfileSource(profile, None)
        app = local_app(source, login)
        server = serve_in_thread(app, access_log=False)
        client = httpx.Client(base_url=server.url, timeout=120)
        client.get(f"/?token={login.value}")
        direct = ProfileSource(profile, None).open()
        run = direct.state.get_run(big)
        assert run is not None
        logs = direct.logs_of(run)
        log_path = Path(tmp) / "logs" / big / "job-00.ndjson"
        cases: list[tuple[str, str, Callable[[], Any]]] = [
            ("runs page", "/runs", lambda: direct.state.list_runs(limit=50)),
            (
                "runs, old page",
                f"/runs?cursor={middle}",
                lambda: direct.state.list_runs(limit=50, cursor=middle),
            ),
            ("runs, filtered", "/runs?branch=rare", lambda: direct.state.list_runs(limit=50)),
            (
                "run page",
                f"/runs/{big}",
                lambda: (
                    direct.state.get_run(big),
                    direct.state.get_plan(big),
                    direct.state.list_nodes(big),
                ),
            ),
            (
                "log page",
                f"/runs/{big}/jobs/job-00/log",
                lambda: logs.read(big, "job-00", LogQuery(tail=1000)),
            ),
        ]
        rows = []
        for name, path, baseline in cases:
            client.get(path)  # warm

            def fetch(path: str = path) -> httpx.Response:
                answer = client.get(path)
                answer.raise_for_status()
                return answer

            page_ms, answer = median_ms(fetch, opts.reps)
            store_ms, _ = median_ms(baseline, opts.reps)
            target = LOG_TARGET_MS if name == "log page" else TARGET_MS[name]
            rows.append(
                {
                    "page": name,
                    "path": path,
                    "server_ms": round(page_ms, 1),
                    "store_ms": round(store_ms, 1),
                    "ratio": round(page_ms / store_ms, 1) if store_ms else None,
                    "bytes": len(answer.content),
                    "target_ms": target,
                    "pass": page_ms <= target,
                }
            )
        log_bytes = log_path.stat().st_size
        client.close()
        server.stop()
    if opts.json:
        print(json.dumps({"runs": opts.runs, "log_lines": opts.lines, "rows": rows}, indent=2))
        return 0
    print(f"{opts.runs:,} runs stored; log of {opts.lines:,} lines ({log_bytes / 1e6:.1f} MB)")
    print(f"{'page':<16}{'server':>10}{'store':>10}{'ratio':>8}{'page size':>12}  target")
    for row in rows:
        verdict = "PASS" if row["pass"] else "MISS"
        print(
            f"{row['page']:<16}{row['server_ms']:>8.1f}ms{row['store_ms']:>8.1f}ms"
            f"{row['ratio'] or 0:>7.1f}x{row['bytes'] / 1000:>10.0f}kB  "
            f"<= {row['target_ms']} ms {verdict}"
        )
    log_row = rows[-1]
    share = log_row["bytes"] / log_bytes
    print(f"log page holds {share:.1%} of the log's bytes (one page of 1,000 lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
