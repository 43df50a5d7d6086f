"""Postgres state cost, measured against raw psycopg on the same server in the same run.

  appends    events appended one per call through PostgresState.append_events vs raw
             psycopg INSERTs of the same rows (autocommit; each event's data serialised with
             json.dumps on both sides)                               target: rate ratio >= 0.5
  batches    the same with 50 events per call vs executemany        (for information)
  list       `runs list --limit 50` with 100,000 runs stored: PostgresState.list_runs vs
             the same SQL through raw psycopg (rows fetched; and rows fetched plus each
             row's JSON parsed, the least a caller needs to read the same records),
             unfiltered and with each filter                         target: <= 3x
  cli        the whole `sparkwing runs list --limit 50` process vs a Python process that
             imports psycopg and runs the same query                 target: <= 3x

Repetitions are interleaved (store, raw, store, raw, ...) so drift hits both alike; medians are
reported. Uses $SPARKWING_TEST_PG_URL, else starts its own PostgreSQL (initdb + pg_ctl, as the
postgres user when run as root) in a temporary folder and stops it at the end. Each run works
in a database of its own, dropped afterwards. A report, not a test: exits 0 whether or not a
target is met (2 if the server cannot be started or a command fails).

    python bench/postgres.py [--events 14000] [--runs 100000] [--reps 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

APPEND_TARGET = 0.5
LIST_TARGET = 3.0
INSERT_EVENT = (
    "INSERT INTO events (run_id, seq, ts, kind, node_id, data) VALUES (%s, %s, %s, %s, %s, %s)"
)


# -- a server and a database ------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def own_server() -> Iterator[str]:
    """A throwaway PostgreSQL on a free port (fsync off, like the test servers)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    initdb = Path(found[-1]) if found else Path(shutil.which("initdb") or "initdb")
    if not initdb.exists():
        raise SystemExit(
            "no PostgreSQL server found: apt-get install postgresql, or set SPARKWING_TEST_PG_URL"
        )
    pg_ctl = initdb.parent / "pg_ctl"
    tmp = Path(tempfile.mkdtemp(prefix="sw-bench-pg-"))
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_pg:
        shutil.chown(tmp, "postgres")
    data, port = tmp / "data", _free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    try:
        subprocess.run(
            [*as_pg, str(initdb), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"],
            check=True,
            **quiet,  # type: ignore[arg-type]
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c fsync=off"
        subprocess.run(
            [
                *as_pg,
                str(pg_ctl),
                "-D",
                str(data),
                "-l",
                str(tmp / "log"),
                "-w",
                "-o",
                options,
                "start",
            ],
            check=True,
            **quiet,  # type: ignore[arg-type]
        )
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                [*as_pg, str(pg_ctl), "-D", str(data), "-m", "fast", "-w", "stop"],
                check=False,
                **quiet,  # type: ignore[arg-type]
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def given_server(url: str) -> Iterator[str]:
    yield url


@contextmanager
def scratch_database(server: str) -> Iterator[str]:
    import psycopg

    name = f"sw_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- measurements -------------------------------------------------------------------------
def interleave(reps: int, store: Callable[[], float], raw: Callable[[], float]) -> dict[str, Any]:
    """Median seconds of each, alternating which goes first."""
    s_times: list[float] = []
    r_times: list[float] = []
    for rep in range(reps):
        order = [(store, s_times), (raw, r_times)]
        for fn, into in order if rep % 2 == 0 else order[::-1]:
            into.append(fn())
    return {"store": statistics.median(s_times), "raw": statistics.median(r_times)}


def bench_appends(url: str, events: int, reps: int, batch: int) -> dict[str, Any]:
    import psycopg

    from sparkwing.surfaces.state.base import NewEvent, RunRecord
    from sparkwing.surfaces.state.postgres import PostgresState
    from sparkwing.surfaces.state.sql_common import encode_events

    store = PostgresState(url)
    raw = psycopg.connect(url, autocommit=True)
    per_rep = max(1, events // reps)
    rows = [
        NewEvent(
            kind="log",
            ts=f"2026-11-27T03:00:{i % 60:02d}.{i:06d}Z",
            node_id="build",
            data={"i": i, "line": f"compiling module {i} of the project"},
        )
        for i in range(per_rep)
    ]
    counter = {"run": 0, "seq": 0}

    def fresh_run() -> str:
        counter["run"] += 1
        run_id = f"run-20261127-030000-b{counter['run']:05d}"
        store.create_run(RunRecord(run_id=run_id, pipeline="bench"))
        return run_id

    def store_one() -> float:
        run_id = fresh_run()
        start = time.perf_counter()
        for event in rows:
            store.append_events(run_id, [event])
        return time.perf_counter() - start

    def raw_one() -> float:
        # The same rows, serialised the same way (json.dumps of each event's data).
        run_id = fresh_run()
        start = time.perf_counter()
        for seq, event in enumerate(rows, start=1):
            raw.execute(INSERT_EVENT, (run_id, seq, *encode_events([event])[0]))
        return time.perf_counter() - start

    def store_batched() -> float:
        run_id = fresh_run()
        start = time.perf_counter()
        for i in range(0, len(rows), batch):
            store.append_events(run_id, rows[i : i + batch])
        return time.perf_counter() - start

    def raw_batched() -> float:
        run_id = fresh_run()
        start = time.perf_counter()
        with raw.cursor() as cur:
            for i in range(0, len(rows), batch):
                chunk = encode_events(rows[i : i + batch])
                cur.executemany(
                    INSERT_EVENT, [(run_id, i + k + 1, *row) for k, row in enumerate(chunk)]
                )
        return time.perf_counter() - start

    try:
        store_one(), raw_one()  # warm-up: connections, prepared statements
        single = interleave(reps, store_one, raw_one)
        batched = interleave(reps, store_batched, raw_batched)
    finally:
        store.close()
        raw.close()
    return {
        "events_per_rep": per_rep,
        "batch": batch,
        "single": {k: per_rep / v for k, v in single.items()},
        "batched": {k: per_rep / v for k, v in batched.items()},
    }


def seed_runs(url: str, count: int) -> str:
    """Store ``count`` runs, one every 30 s; returns the creation time two days before the last."""
    import psycopg

    from sparkwing.ids import new_run_id
    from sparkwing.surfaces.state.base import RunRecord
    from sparkwing.surfaces.state.postgres import PostgresState
    from sparkwing.surfaces.state.sql_common import run_params

    PostgresState(url).close()  # create the schema
    base = datetime(2026, 1, 1, tzinfo=UTC)
    statuses = ["success"] * 14 + ["failed"] * 3 + ["cancelled", "running", "queued"]
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.cursor() as cur:
            copy_sql = (
                "COPY runs (run_id, pipeline, status, created_at, started_at, finished_at,"
                " heartbeat_at, data) FROM STDIN"
            )
            with cur.copy(copy_sql) as copy:
                for i in range(count):
                    moment = base + timedelta(seconds=30 * i)
                    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                    run = RunRecord(
                        run_id=new_run_id(moment),
                        pipeline=f"pipeline-{i % 20:02d}",
                        status=statuses[i % len(statuses)],
                        created_at=stamp,
                        started_at=stamp,
                        finished_at=stamp,
                        heartbeat_at=stamp,
                        args={"env": "prod", "version": f"1.{i % 100}.0"},
                        git={"sha": f"{i:040x}", "branch": "main", "dirty": False},
                        trigger="cli",
                        profile="shared",
                        profile_source="flag",
                        surfaces={"state": {"type": "postgres", "url_source": "env:DB"}},
                        host=f"runner-{i % 8}",
                        pid=1000 + i,
                        extra={"parallel": 4, "jobs": 12},
                    )
                    copy.write_row(run_params(run))
        conn.execute("ANALYZE runs")
    return (base + timedelta(seconds=30 * count, days=-2)).strftime("%Y-%m-%dT%H:%M:%SZ")


def bench_list(url: str, reps: int, since: str) -> list[dict[str, Any]]:
    import psycopg

    from sparkwing.surfaces.state.postgres import PostgresState
    from sparkwing.surfaces.state.sql_common import list_runs_query, to_pyformat

    store = PostgresState(url)
    raw = psycopg.connect(url, autocommit=True)
    cases: list[tuple[str, dict[str, Any]]] = [
        ("newest 50", {}),
        ("--pipeline", {"pipeline": "pipeline-07"}),
        ("--status failed", {"status": "failed"}),
        ("--since (last 2 days)", {"since": since}),
        ("--pipeline --status", {"pipeline": "pipeline-03", "status": "success"}),
    ]
    results = []
    try:
        for label, filters in cases:
            sql, params = list_runs_query(
                filters.get("pipeline"), filters.get("status"), filters.get("since"), None, 50
            )
            pg_sql = to_pyformat(sql)

            def via_store(filters: dict[str, Any] = filters) -> float:
                start = time.perf_counter()
                page = store.list_runs(limit=50, **filters)
                assert page.runs
                return time.perf_counter() - start

            def via_raw(pg_sql: str = pg_sql, params: list[Any] = params) -> float:
                start = time.perf_counter()
                rows = raw.execute(pg_sql, params).fetchall()  # type: ignore[call-overload]
                assert rows
                return time.perf_counter() - start

            def via_raw_decoded(pg_sql: str = pg_sql, params: list[Any] = params) -> float:
                # What a caller of raw SQL does to read the same records: parse the JSON.
                start = time.perf_counter()
                rows = raw.execute(pg_sql, params).fetchall()  # type: ignore[call-overload]
                assert [json.loads(row[7]) for row in rows[:50]]
                return time.perf_counter() - start

            for _ in range(10):  # warm-up: caches, prepared statements
                via_store(), via_raw(), via_raw_decoded()
            medians = interleave(reps, via_store, via_raw)
            decoded = interleave(reps, via_store, via_raw_decoded)
            results.append(
                {
                    "query": label,
                    **medians,
                    "raw_decoded": decoded["raw"],
                    "ratio": medians["store"] / medians["raw"],
                    "ratio_decoded": decoded["store"] / decoded["raw"],
                }
            )
    finally:
        store.close()
        raw.close()
    return results


RAW_PROCESS = """
import sys, psycopg
from sparkwing.surfaces.state.sql_common import list_runs_query, to_pyformat
sql, params = list_runs_query(None, None, None, None, 50)
with psycopg.connect(sys.argv[1]) as conn:
    rows = conn.execute(to_pyformat(sql), params).fetchall()
    sys.stdout.write("\\n".join(r[0] for r in rows[:50]))
"""


def bench_cli(url: str, reps: int) -> dict[str, Any]:
    """Whole processes: the `sparkwing` console script vs a Python process running the raw
    query (both pay the interpreter start and the psycopg import)."""
    script = Path(sys.executable).parent / "sparkwing"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "sparkwing.cli.main"]
    with tempfile.TemporaryDirectory(prefix="sw-bench-cli-") as tmp:
        profiles = Path(tmp) / "profiles.yaml"
        profiles.write_text(
            'profiles:\n  bench:\n    state: { type: postgres, url_source: "env:SW_BENCH_URL" }\n'
        )
        env = {
            **os.environ,
            "HOME": tmp,
            "SPARKWING_HOME": tmp,
            "SPARKWING_PROFILES": str(profiles),
            "SW_BENCH_URL": url,
        }
        cli = [*command, "runs", "list", "--limit", "50", "--profile", "bench", "-o", "json"]
        raw = [sys.executable, "-c", RAW_PROCESS, url]

        def timed(argv: list[str]) -> Callable[[], float]:
            def run() -> float:
                start = time.perf_counter()
                proc = subprocess.run(argv, env=env, cwd=tmp, capture_output=True, text=True)
                took = time.perf_counter() - start
                if proc.returncode != 0:
                    raise SystemExit(f"{argv[0]} failed: {proc.stderr.strip()}")
                return took

            return run

        timed(cli)(), timed(raw)()
        medians = interleave(reps, timed(cli), timed(raw))
    return {**medians, "ratio": medians["store"] / medians["raw"]}


# -- report -------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def render(doc: dict[str, Any]) -> str:
    a = doc["appends"]
    single, batched = a["single"], a["batched"]
    ratio = single["store"] / single["raw"]
    per_call = f"{a['batch']} events per call"
    lines = [
        f"PostgreSQL {doc['server_version']} ({doc['server']}), Python {doc['python']}",
        "",
        f"event appends, {a['events_per_rep']} events per repetition, median of {doc['reps']}",
        f"  {'':28} {'raw psycopg':>14} {'state store':>14} {'ratio':>7}",
        f"  {'one event per call':28} {single['raw']:>12,.0f}/s {single['store']:>12,.0f}/s "
        f"{ratio:>7.2f}  target >= {APPEND_TARGET}  {verdict(ratio >= APPEND_TARGET)}",
        f"  {per_call:28} {batched['raw']:>12,.0f}/s "
        f"{batched['store']:>12,.0f}/s {batched['store'] / batched['raw']:>7.2f}  (information)",
        "",
        f"runs list --limit 50 with {doc['runs']:,} runs stored, median of {doc['list_reps']}",
        "  (raw SQL: the query and fetch of the rows; + json: also parsing each row's JSON,"
        " as the store must)",
        f"  {'query':24} {'raw SQL':>10} {'+ json':>10} {'store':>10} {'ratio':>7} {'ratio':>7}",
        f"  {'':24} {'':>10} {'':>10} {'':>10} {'to raw':>7} {'to +json':>8}",
    ]
    for row in doc["list"]:
        ok = verdict(row["ratio"] <= LIST_TARGET)
        ok_decoded = verdict(row["ratio_decoded"] <= LIST_TARGET)
        lines.append(
            f"  {row['query']:24} {row['raw'] * 1000:>7.3f} ms {row['raw_decoded'] * 1000:>7.3f} ms"
            f" {row['store'] * 1000:>7.3f} ms {row['ratio']:>6.2f}x {row['ratio_decoded']:>7.2f}x"
            f"  target <= {LIST_TARGET:g}x: {ok} / {ok_decoded}"
        )
    c = doc["cli"]
    lines += [
        "",
        f"whole process, median of {doc['reps']}",
        f"  `sparkwing runs list --limit 50` {c['store'] * 1000:.0f} ms vs python + psycopg "
        f"running the same query {c['raw'] * 1000:.0f} ms: {c['ratio']:.2f}x  "
        f"target <= {LIST_TARGET:g}x  {verdict(c['ratio'] <= LIST_TARGET)}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=14000, help="events appended (default 14000)")
    parser.add_argument("--runs", type=int, default=100_000, help="runs stored (default 100000)")
    parser.add_argument("--reps", type=int, default=7, help="repetitions (default 7)")
    parser.add_argument("--list-reps", type=int, default=200, help="list_runs calls (default 200)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)

    import psycopg

    given = os.environ.get("SPARKWING_TEST_PG_URL")
    with given_server(given) if given else own_server() as server, scratch_database(server) as url:
        with psycopg.connect(url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        doc: dict[str, Any] = {
            "server": "$SPARKWING_TEST_PG_URL" if given else "started by this script",
            "server_version": row[0] if row else "?",
            "python": sys.version.split()[0],
            "reps": args.reps,
            "list_reps": args.list_reps,
            "runs": args.runs,
        }
        doc["appends"] = bench_appends(url, args.events, args.reps, batch=50)
        since = seed_runs(url, args.runs)
        doc["list"] = bench_list(url, args.list_reps, since)
        doc["cli"] = bench_cli(url, args.reps)
    print(json.dumps(doc, indent=2) if args.json else render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
