"""Postgres-specific state behaviour on a real server: concurrent first migrations, schema
versions, memo races across processes, dropped connections, clear connection errors and
index use by ``list_runs``."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sparkwing.errors import ConfigError, SchemaVersionError, StorageError
from sparkwing.surfaces.open import open_state
from sparkwing.surfaces.secrets.env import EnvSecrets
from sparkwing.surfaces.spec import SurfaceSpec
from sparkwing.surfaces.state import sql_common, sql_schema
from sparkwing.surfaces.state.base import NewEvent, NodeRecord, RunRecord
from sparkwing.surfaces.state.postgres import PostgresState
from tests.conftest import Cli, ProjectFiles, sparkwing_command
from tests.pgutil import connect, fresh_database, terminate_state_connections
from tests.servers import server

LATEST = sql_schema.latest_version()
# The versions a fresh database is stamped with (each helper's migration has its number).
VERSIONS = [version for version, _ in sql_schema.MIGRATIONS]
RUN = "run-20260301-120000-abcd"


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database("surfaces") as url:
        yield url


def _location(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}{parts.path}"


def _versions(url: str) -> list[int]:
    with connect(url) as conn:
        rows = conn.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def _start_together(script: str, count: int, tmp: Path, *args: str) -> list[tuple[int, str, str]]:
    """Run ``count`` copies of ``script``, released at once by a start file; (code, out, err)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp), str(i), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    try:
        deadline = time.monotonic() + 60
        while sum(1 for _ in tmp.glob("ready-*")) < count:
            assert all(p.poll() is None for p in procs), "a child exited before the start"
            assert time.monotonic() < deadline, "children never became ready"
            time.sleep(0.005)
        (tmp / "start").touch()
        return [(p.wait(60), *p.communicate()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()


_READY = """
import json, sys, time
from pathlib import Path
tmp, index = Path(sys.argv[1]), int(sys.argv[2])
(tmp / f"ready-{index}").touch()
while not (tmp / "start").exists():
    time.sleep(0.001)
"""

MIGRATE_CHILD = _READY + textwrap.dedent(
    """
    from sparkwing.surfaces.state.base import RunRecord
    from sparkwing.surfaces.state.postgres import PostgresState
    store = PostgresState(sys.argv[3])
    run_id = f"run-20260301-120000-p{index:03d}"
    store.create_run(RunRecord(run_id=run_id, pipeline="race", status="success"))
    print(json.dumps(store.migrated))
    store.close()
    """
)


def test_eight_processes_on_an_empty_database_migrate_it_exactly_once(
    pg_url: str, tmp_path: Path
) -> None:
    results = _start_together(MIGRATE_CHILD, 8, tmp_path, pg_url)
    assert [(code, err) for code, _, err in results] == [(0, "")] * 8
    migrated = sorted((json.loads(out) for _, out, _ in results), key=len)
    assert migrated == [[]] * 7 + [VERSIONS]
    assert _versions(pg_url) == VERSIONS
    store = PostgresState(pg_url)
    try:
        assert store.migrated == []
        assert len(store.list_runs(pipeline="race").runs) == 8
    finally:
        store.close()


def _stamp(url: str, version: int) -> None:
    with connect(url) as conn:
        conn.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (%s, %s)",
            (version, "2030-01-01T00:00:00Z"),
        )


def test_a_newer_database_is_refused_with_the_documented_text(
    pg_url: str, project: ProjectFiles, cli: Cli
) -> None:
    PostgresState(pg_url).close()
    _stamp(pg_url, 99)
    expected = (
        f"state database {_location(pg_url)} has schema version 99, newer than this "
        f"sparkwing supports ({LATEST}); upgrade sparkwing"
    )
    with pytest.raises(SchemaVersionError) as info:
        PostgresState(pg_url)
    assert str(info.value) == expected
    project.yaml(
        """
        profiles:
          pg:
            state: { type: postgres, url_source: "env:STATE_URL" }
        """
    )
    code, out, err = cli("runs", "list", "--profile", "pg", env={"STATE_URL": pg_url})
    assert (code, out, err) == (2, "", f"error: {expected}\n")
    assert _versions(pg_url) == [*VERSIONS, 99]


def test_an_older_database_is_migrated_keeping_its_data(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Version 1 alone: events written before the per-run counter existed.
    monkeypatch.setattr(sql_schema, "MIGRATIONS", sql_schema.MIGRATIONS[:1])
    with connect(pg_url) as conn:
        conn.execute(sql_schema.SCHEMA_VERSION_DDL)
        for statement in sql_schema.MIGRATIONS[0][1]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (1, '2026-01-01T00:00:00Z')")
        params = sql_common.run_params(RunRecord(run_id=RUN, pipeline="p", created_at="2026"))
        conn.execute(sql_common.to_pyformat(sql_common.INSERT_RUN), params)
        for seq in (1, 2, 3):
            conn.execute("INSERT INTO events VALUES (%s, %s, 't', 'old', NULL, '{}')", (RUN, seq))
    monkeypatch.undo()
    extra = (LATEST + 1, ["CREATE INDEX IF NOT EXISTS test_events_kind_idx ON events (kind)"])
    monkeypatch.setattr(sql_schema, "MIGRATIONS", [*sql_schema.MIGRATIONS, extra])
    store = PostgresState(pg_url)
    try:
        assert store.migrated == [*VERSIONS[1:], LATEST + 1]
        got = store.get_run(RUN)
        assert got is not None and got.pipeline == "p"
        # The counter was seeded from the events already there: no seq is reused.
        assert store.append_events(RUN, [NewEvent(kind="new", ts="t")]) == [4]
        assert [e.kind for e in store.list_events(RUN)] == ["old"] * 3 + ["new"]
    finally:
        store.close()
    assert _versions(pg_url) == [*VERSIONS, LATEST + 1]
    with connect(pg_url) as conn:
        found = conn.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'test_events_kind_idx'")
        assert found.fetchone() is not None


MEMO_CHILD = _READY + textwrap.dedent(
    """
    from sparkwing.surfaces.state.postgres import PostgresState
    url, counter, lease = sys.argv[3], Path(sys.argv[4]), float(sys.argv[5])
    store = PostgresState(url)
    holder = f"h{index}"
    led = False
    while True:
        claim = store.memo.acquire("race/key", holder, lease)
        if claim.state == "leader":
            led = True
            with counter.open("a") as fh:  # the job's side effect
                fh.write(holder + "\\n")
            (tmp / f"leading-{index}").touch()
            time.sleep(float(sys.argv[6]))
            store.memo.complete("race/key", holder, f"result-of-{holder}")
        elif claim.state == "done":
            print(json.dumps({"led": led, "result": claim.result}))
            break
        else:
            time.sleep(0.05)
    store.close()
    """
)


def test_eight_processes_racing_on_one_memo_key_run_the_job_once(
    pg_url: str, tmp_path: Path
) -> None:
    PostgresState(pg_url).close()
    counter = tmp_path / "counter"
    results = _start_together(MEMO_CHILD, 8, tmp_path, pg_url, str(counter), "30", "0.3")
    assert [(code, err) for code, _, err in results] == [(0, "")] * 8
    leaders = counter.read_text().split()
    assert len(leaders) == 1
    answers = [json.loads(out) for _, out, _ in results]
    assert sum(a["led"] for a in answers) == 1
    assert {a["result"] for a in answers} == {f"result-of-{leaders[0]}"}


def test_killing_the_memo_leader_lets_a_waiter_finish_after_its_lease(
    pg_url: str, tmp_path: Path
) -> None:
    PostgresState(pg_url).close()
    counter = tmp_path / "counter"
    (tmp_path / "start").touch()  # no barrier here: each child starts at once
    child = [sys.executable, "-c", MEMO_CHILD, str(tmp_path)]
    # The first leader holds a 1 s lease and never finishes; it is killed while leading.
    leader = subprocess.Popen([*child, "0", pg_url, str(counter), "1", "600"])
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "leading-0").exists():
            assert leader.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        waiters = [
            subprocess.Popen(
                [*child, str(i), pg_url, str(counter), "30", "0.1"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(1, 4)
        ]
        leader.send_signal(signal.SIGKILL)
        leader.wait()
        results = [(w.wait(60), *w.communicate()) for w in waiters]
    finally:
        if leader.poll() is None:
            leader.kill()
    assert [(code, err) for code, _, err in results] == [(0, "")] * 3
    first, second = counter.read_text().split()
    assert first == "h0" and second != "h0"
    answers = [json.loads(out) for _, out, _ in results]
    assert sum(a["led"] for a in answers) == 1
    assert {a["result"] for a in answers} == {f"result-of-{second}"}


def test_dropped_connections_are_retried_without_losing_a_record(pg_url: str) -> None:
    store = PostgresState(pg_url)
    killed = 0
    stop = threading.Event()

    def cut() -> None:
        # A dozen times, at moments unrelated to the writer's: some land mid-statement.
        nonlocal killed
        for _ in range(12):
            if stop.wait(random.uniform(0.02, 0.08)):
                return
            killed += terminate_state_connections(pg_url)

    cutter = threading.Thread(target=cut)
    try:
        store.create_run(RunRecord(run_id=RUN, pipeline="p", status="running"))
        cutter.start()
        for i in range(150):
            store.append_events(
                RUN, [NewEvent(kind="tick", ts="t", data={"i": i, "k": k}) for k in range(2)]
            )
            store.upsert_nodes([NodeRecord(run_id=RUN, node_id=f"n{i % 20}", attempt=i)])
            store.update_run(RUN, extra={"i": i})
            store.heartbeat(RUN, f"beat-{i}")
            if i % 10 == 0:  # and between operations: the next one meets a dead connection
                killed += terminate_state_connections(pg_url)
        stop.set()
        cutter.join()
        assert killed > 0
        events = store.list_events(RUN)
        assert [e.seq for e in events] == list(range(1, 301))
        assert [(e.data["i"], e.data["k"]) for e in events] == [
            (i, k) for i in range(150) for k in range(2)
        ]
        nodes = store.list_nodes(RUN)
        assert [(n.node_id, n.attempt) for n in nodes] == [
            (f"n{j}", 140 + j) for j in range(10)
        ] + [(f"n{j}", 120 + j) for j in range(10, 20)]
        got = store.get_run(RUN)
        assert got is not None and got.extra == {"i": 149} and got.heartbeat_at == "beat-149"
    finally:
        stop.set()
        if cutter.is_alive():
            cutter.join()
        store.close()


DROP_PIPELINE = """
import os, time
import psycopg
import sparkwing as sw


def cut(ctx):
    with psycopg.connect(os.environ["ADMIN_URL"], autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'sparkwing-state'"
        ).fetchall()
    ctx.log.info(f"terminated {sum(1 for r in rows if r[0])}")
    return {"terminated": sum(1 for r in rows if r[0])}


def after(ctx):
    ctx.log.info("still recording")
    return ctx.output("cut")


@sw.pipeline("drop")
def drop(plan, args, rc):
    first = plan.job("cut", cut)
    middle = [plan.job(f"m{i}", after).needs(first) for i in range(5)]
    plan.job("last", after).needs(middle)
"""


def test_a_run_survives_its_connections_being_cut_mid_run(
    pg_url: str, project: ProjectFiles, cli: Cli
) -> None:
    project.write("drop.py", DROP_PIPELINE)
    project.yaml(
        """
        profiles:
          pg:
            state: { type: postgres, url_source: "env:STATE_URL" }
        """
    )
    env = {"STATE_URL": pg_url, "ADMIN_URL": pg_url}
    code, out, err = cli("run", "drop", "--profile", "pg", "-o", "json", env=env)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["run"]["status"] == "success"
    nodes = {n["node_id"]: n for n in doc["nodes"]}
    assert nodes["cut"]["output"]["terminated"] >= 1
    assert sorted(nodes) == ["cut", "last", "m0", "m1", "m2", "m3", "m4"]
    assert all(n["status"] == "success" for n in nodes.values())
    store = PostgresState(pg_url)
    try:
        events = store.list_events(doc["run"]["run_id"])
    finally:
        store.close()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].kind == "run_started" and events[-1].kind == "run_finished"
    code, out, err = cli("runs", "logs", "--profile", "pg", "--job", "last", env=env)
    assert code == 0 and "still recording" in out


def _auth_rule_present(url: str) -> bool:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_hba_file_rules"
            " WHERE 'sparkwing_auth_test' = ANY(user_name) AND auth_method = 'scram-sha-256'"
        ).fetchone()
    return bool(row and row[0])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_errors_are_one_line_naming_the_host_never_the_password(
    project: ProjectFiles, cli: Cli
) -> None:
    base = server("postgres")
    from urllib.parse import urlsplit

    port = urlsplit(base).port
    password = "Pa55-w0rd-XYZZY"
    cases = [
        (f"postgresql://postgres:{password}@127.0.0.1:{_free_port()}/sw", "Connection refused")
    ]
    if not _auth_rule_present(base):
        msg = "server lacks the password rule for sparkwing_auth_test (start it with scripts/test)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
    else:
        with connect(base) as conn:
            conn.execute(
                "DO $$ BEGIN CREATE ROLE sparkwing_auth_test LOGIN; "
                "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
            )
            conn.execute("ALTER ROLE sparkwing_auth_test PASSWORD 'the-right-one'")
        cases.append(
            (
                f"postgresql://sparkwing_auth_test:{password}@127.0.0.1:{port}/postgres",
                'password authentication failed for user "sparkwing_auth_test"',
            )
        )
    project.yaml(
        """
        profiles:
          pg:
            state: { type: postgres, url_source: "env:STATE_URL" }
        """
    )
    for url, why in cases:
        where = _location(url)
        with pytest.raises(StorageError) as info:
            PostgresState(url)
        assert str(info.value) == f"cannot connect to state database {where}: {why}"
        code, out, err = cli("runs", "list", "--profile", "pg", env={"STATE_URL": url})
        assert (code, out) == (2, "")
        assert err == f"error: cannot connect to state database {where}: {why}\n"
        assert password not in err
    with pytest.raises(ConfigError) as bad:
        PostgresState(f"postgresql//u:{password}@host")
    assert password not in str(bad.value)


def test_list_runs_filters_are_served_by_indexes(pg_url: str) -> None:
    store = PostgresState(pg_url)
    try:
        rows = []
        for i in range(4000):
            run = RunRecord(
                run_id=f"run-20260301-{i // 60:04d}{i % 60:02d}-abcd",
                pipeline=f"pipe-{i % 7}",
                status=("success", "failed", "running", "cancelled", "queued")[i % 5],
                created_at=f"2026-03-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
            )
            rows.append(sql_common.run_params(run))
        with connect(pg_url) as conn:
            with conn.cursor() as cur:
                cur.executemany(sql_common.to_pyformat(sql_common.INSERT_RUN), rows)
            conn.execute("ANALYZE runs")
            cases: list[dict[str, Any]] = [
                {},
                {"pipeline": "pipe-3"},
                {"status": "failed"},
                {"pipeline": "pipe-3", "status": "failed"},
                {"since": "2026-03-01T01:00:00Z"},
                {"pipeline": "pipe-7", "since": "2026-03-01T00:30:00Z"},
                {"status": "queued", "cursor": "run-20260301-003000-abcd"},
            ]
            for case in cases:
                sql, params = sql_common.list_runs_query(
                    case.get("pipeline"),
                    case.get("status"),
                    case.get("since"),
                    case.get("cursor"),
                    50,
                )
                plan = "\n".join(
                    r[0]
                    for r in conn.execute(
                        "EXPLAIN " + sql_common.to_pyformat(sql), params
                    ).fetchall()
                )
                assert "Seq Scan" not in plan, (case, plan)
                assert "Index" in plan, (case, plan)
        page = store.list_runs(pipeline="pipe-3", status="failed", limit=50)
        assert len(page.runs) == 50 and {(r.pipeline, r.status) for r in page.runs} == {
            ("pipe-3", "failed")
        }
    finally:
        store.close()


def test_open_state_resolves_url_and_url_source(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SW_TEST_STATE_URL", pg_url)
    monkeypatch.setenv("SWSECRET_STATE_DSN", pg_url)
    specs = [
        (SurfaceSpec(type="postgres", url=pg_url), None),
        (SurfaceSpec(type="postgres", url_source="env:SW_TEST_STATE_URL"), None),
        (SurfaceSpec(type="postgres", url_source="STATE_DSN"), EnvSecrets(prefix="SWSECRET_")),
    ]
    for spec, secrets in specs:
        store = open_state(spec, secrets=secrets)
        try:
            assert isinstance(store, PostgresState)
            assert store.describe() == f"postgres:{_location(pg_url)}"
            store.create_run(
                RunRecord(
                    run_id=f"run-20260301-12000{len(store.list_runs().runs)}-ab12", pipeline="p"
                )
            )
        finally:
            store.close()
    monkeypatch.delenv("SW_TEST_STATE_URL")
    with pytest.raises(ConfigError, match="environment variable SW_TEST_STATE_URL is not set"):
        open_state(SurfaceSpec(type="postgres", url_source="env:SW_TEST_STATE_URL"))
    with pytest.raises(ConfigError, match="no secrets store"):
        open_state(SurfaceSpec(type="postgres", url_source="STATE_DSN"))


def test_a_forked_child_uses_connections_of_its_own(pg_url: str) -> None:
    store = PostgresState(pg_url)
    try:
        store.create_run(RunRecord(run_id=RUN, pipeline="p"))
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                got = store.get_run(RUN)
                store.append_events(RUN, [NewEvent(kind="from-child", ts="t")])
                code = 0 if got is not None else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The parent's own connections were left alone by the child.
        assert store.append_events(RUN, [NewEvent(kind="from-parent", ts="t")]) == [2]
        assert [e.kind for e in store.list_events(RUN)] == ["from-child", "from-parent"]
    finally:
        store.close()


MEMO_PIPELINE = """
import os, time
from pathlib import Path
import sparkwing as sw


def build(ctx):
    with Path(os.environ["MEMO_COUNTER"]).open("a") as fh:  # the counted side effect
        fh.write(ctx.run_id + "\\n")
    time.sleep(0.5)
    return {"built_by": ctx.run_id}


@sw.pipeline("memo")
def memo(plan, args, rc):
    plan.job("build", build).memoize(lambda ctx: "one-key-for-all")
"""


def test_eight_runs_racing_on_one_memo_key_execute_the_job_once(
    pg_url: str, project: ProjectFiles, cli: Cli, tmp_path: Path
) -> None:
    project.write("memo.py", MEMO_PIPELINE)
    project.yaml(
        """
        profiles:
          pg:
            state: { type: postgres, url_source: "env:STATE_URL" }
        """
    )
    counter = tmp_path / "counter"
    env = {**cli.env, "STATE_URL": pg_url, "MEMO_COUNTER": str(counter)}
    command = [*sparkwing_command(), "run", "memo", "--profile", "pg", "-o", "json"]
    procs = [
        subprocess.Popen(command, cwd=cli.cwd, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    docs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8
    (leader,) = counter.read_text().split()
    statuses = sorted(d["nodes"][0]["status"] for d in docs)
    assert statuses == ["cached"] * 7 + ["success"]
    assert {d["nodes"][0]["output"]["built_by"] for d in docs} == {leader}


def test_one_handle_shared_by_many_threads(pg_url: str) -> None:
    # The first thread in uses the handle's own connection; the others, meanwhile, the pool.
    store = PostgresState(pg_url, pool_size=3)
    try:
        store.create_run(RunRecord(run_id=RUN, pipeline="p"))
        barrier = threading.Barrier(6)

        def work(w: int) -> list[int]:
            barrier.wait()
            seqs = []
            for i in range(30):
                event = NewEvent(kind="t", ts="t", data={"w": w, "i": i})
                seqs += store.append_events(RUN, [event])
                store.upsert_nodes([NodeRecord(run_id=RUN, node_id=f"w{w}", attempt=i)])
            return seqs

        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(work, range(6)))
        assert sorted(s for seqs in results for s in seqs) == list(range(1, 181))
        for w, seqs in enumerate(results):
            assert seqs == sorted(seqs)
            got = [store.list_events(RUN, after_seq=s - 1, limit=1)[0].data for s in seqs]
            assert got == [{"w": w, "i": i} for i in range(30)]
        assert sorted((n.node_id, n.attempt) for n in store.list_nodes(RUN)) == [
            (f"w{w}", 29) for w in range(6)
        ]
    finally:
        store.close()
